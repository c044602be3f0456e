<?php

declare(strict_types=1);

namespace Grconnect;

/** One customer's connected GetResponse account. It never holds a token. */
final class Connection
{
    public function __construct(
        public readonly string $id,
        public readonly string $appId,
        public readonly string $customerRef,
        /** One of Status's values. */
        public readonly string $status,
        public readonly Account $account,
        public readonly string $maxDomain = '',
        /** When the access token expires; null once disconnected. */
        public readonly ?\DateTimeImmutable $expiresAt = null,
        public readonly ?\DateTimeImmutable $lastRefreshAt = null,
        public readonly string $lastError = '',
        public readonly int $failureCount = 0,
        public readonly ?\DateTimeImmutable $nextAttemptAt = null,
        public readonly ?\DateTimeImmutable $connectedAt = null,
        public readonly ?\DateTimeImmutable $disconnectedAt = null,
        /** Where GetResponse's webhooks for this account go, when the server offers it. */
        public readonly string $eventsUrl = '',
    ) {
    }

    /** @param array<string, mixed> $doc */
    public static function fromArray(array $doc): self
    {
        $acc = is_array($doc['account'] ?? null) ? $doc['account'] : [];
        $s = static fn (mixed $v): string => is_string($v) ? $v : '';
        return new self(
            id: $s($doc['id'] ?? null),
            appId: $s($doc['app_id'] ?? null),
            customerRef: $s($doc['customer_ref'] ?? null),
            status: $s($doc['status'] ?? null),
            account: new Account($s($acc['id'] ?? null), $s($acc['email'] ?? null), $s($acc['name'] ?? null), $s($acc['company_name'] ?? null)),
            maxDomain: $s($doc['max_domain'] ?? null),
            expiresAt: Time::parseOptional($doc['expires_at'] ?? null),
            lastRefreshAt: Time::parseOptional($doc['last_refresh_at'] ?? null),
            lastError: $s($doc['last_error'] ?? null),
            failureCount: (int) ($doc['failure_count'] ?? 0),
            nextAttemptAt: Time::parseOptional($doc['next_attempt_at'] ?? null),
            connectedAt: Time::parseOptional($doc['connected_at'] ?? null),
            disconnectedAt: Time::parseOptional($doc['disconnected_at'] ?? null),
            eventsUrl: $s($doc['events_url'] ?? null),
        );
    }

    public function is(Status $status): bool
    {
        return $this->status === $status->value;
    }
}
