<?php

declare(strict_types=1);

namespace Grconnect\Exception;

use Grconnect\ErrorCode;

/**
 * An error answer of grconnect's API.
 *
 * $errorCode is the API's code (one of ErrorCode's values, or a newer one: it is carried
 * as the server sent it); $status the HTTP status; $requestId the request's ID in
 * grconnect's logs; $retryAfter the seconds to wait before trying again (429, 503).
 * getMessage() adds the code, status and request ID to $detail, the API's own message.
 */
final class ApiException extends \RuntimeException implements GrconnectException
{
    /**
     * @param array<string, string>                                         $fields    each bad input field (invalid_input)
     * @param array{id: string, name: string, health: string}|null          $app       the app that is the cause
     * @param array{method: string, path: string, body: array<string, string>}|null $reconnect the call that makes a reconnect link
     */
    public function __construct(
        public readonly int $status,
        public readonly string $errorCode,
        public readonly string $detail,
        public readonly string $requestId = '',
        public readonly ?int $retryAfter = null,
        public readonly array $fields = [],
        public readonly ?array $app = null,
        public readonly ?array $reconnect = null,
        public readonly string $body = '',
    ) {
        parent::__construct(
            sprintf('%s (HTTP %d): %s%s', $errorCode, $status, $detail, $requestId !== '' ? " [request {$requestId}]" : ''),
            $status,
        );
    }

    /** Whether the code is $code: `$e->is(ErrorCode::NeedsReconnect)`. */
    public function is(ErrorCode $code): bool
    {
        return $this->errorCode === $code->value;
    }

    /** The code as an ErrorCode, or null for a code this SDK does not know. */
    public function knownCode(): ?ErrorCode
    {
        return ErrorCode::tryFrom($this->errorCode);
    }
}
