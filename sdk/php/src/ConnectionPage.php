<?php

declare(strict_types=1);

namespace Grconnect;

/** One page of connections; $nextCursor is null on the last. */
final class ConnectionPage
{
    /** @param list<Connection> $connections */
    public function __construct(
        public readonly array $connections,
        public readonly ?string $nextCursor,
    ) {
    }
}
