<?php

declare(strict_types=1);

namespace Grconnect;

/**
 * Where a Client keeps tokens between calls. The default, MemoryTokenCache, lives as
 * long as the Client (a long-running worker keeps it; under PHP-FPM it is one request's).
 * An implementation over APCu or Redis shares tokens across requests; it must keep
 * them as secret as the API key.
 */
interface TokenCache
{
    public function get(string $connectionId): ?Token;

    public function set(string $connectionId, Token $token): void;

    public function delete(string $connectionId): void;
}
