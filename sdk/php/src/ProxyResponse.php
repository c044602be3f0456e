<?php

declare(strict_types=1);

namespace Grconnect;

/** GetResponse's answer through the proxy, whatever its status. */
final class ProxyResponse
{
    /** @param array<string, list<string>> $headers by lower-case name */
    public function __construct(
        public readonly int $status,
        public readonly array $headers,
        public readonly string $body,
    ) {
    }

    public function ok(): bool
    {
        return $this->status >= 200 && $this->status < 300;
    }

    /** A header's first value, or null. */
    public function header(string $name): ?string
    {
        return $this->headers[strtolower($name)][0] ?? null;
    }

    /** The body decoded as JSON (objects as arrays). */
    public function json(): mixed
    {
        return json_decode($this->body, true, 512, \JSON_THROW_ON_ERROR);
    }
}
