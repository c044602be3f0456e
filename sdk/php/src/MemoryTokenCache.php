<?php

declare(strict_types=1);

namespace Grconnect;

/** Keeps tokens in the process's memory, for as long as the object lives. */
final class MemoryTokenCache implements TokenCache
{
    /** @var array<string, Token> */
    private array $tokens = [];

    public function get(string $connectionId): ?Token
    {
        return $this->tokens[$connectionId] ?? null;
    }

    public function set(string $connectionId, Token $token): void
    {
        $this->tokens[$connectionId] = $token;
    }

    public function delete(string $connectionId): void
    {
        unset($this->tokens[$connectionId]);
    }
}
