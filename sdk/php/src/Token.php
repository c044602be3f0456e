<?php

declare(strict_types=1);

namespace Grconnect;

/**
 * A connection's GetResponse access token. (string) $token is the access token itself;
 * var_dump and print_r show only its last four characters.
 */
final class Token implements \Stringable
{
    public function __construct(
        public readonly string $accessToken,
        public readonly string $tokenType,
        public readonly \DateTimeImmutable $expiresAt,
    ) {
    }

    /** @param array<string, mixed> $doc */
    public static function fromArray(array $doc): self
    {
        return new self((string) $doc['access_token'], (string) ($doc['token_type'] ?? 'Bearer'), Time::parse($doc['expires_at']));
    }

    public function __toString(): string
    {
        return $this->accessToken;
    }

    /** @return array<string, string> */
    public function __debugInfo(): array
    {
        return [
            'accessToken' => '…' . substr($this->accessToken, -4),
            'tokenType' => $this->tokenType,
            'expiresAt' => $this->expiresAt->format(\DATE_RFC3339),
        ];
    }
}
