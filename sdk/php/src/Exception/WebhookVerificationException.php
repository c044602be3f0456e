<?php

declare(strict_types=1);

namespace Grconnect\Exception;

/**
 * A webhook failed verification; $reason says why: missing_header, invalid_timestamp,
 * timestamp_too_old, timestamp_too_new, invalid_secret or no_matching_signature.
 * Answer such a request with 400 or 401 and do not act on it.
 */
final class WebhookVerificationException extends \RuntimeException implements GrconnectException
{
    public function __construct(public readonly string $reason, string $message)
    {
        parent::__construct($message);
    }
}
