<?php

declare(strict_types=1);

namespace Grconnect;

/** A single-use connect link for one customer: send them to $url. */
final class ConnectSession
{
    public function __construct(
        public readonly string $id,
        public readonly string $url,
        public readonly \DateTimeImmutable $expiresAt,
    ) {
    }

    /** @param array<string, mixed> $doc */
    public static function fromArray(array $doc): self
    {
        return new self((string) $doc['id'], (string) $doc['url'], Time::parse($doc['expires_at'] ?? null));
    }
}
