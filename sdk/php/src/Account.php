<?php

declare(strict_types=1);

namespace Grconnect;

/** The GetResponse account behind a connection. */
final class Account
{
    public function __construct(
        public readonly string $id = '',
        public readonly string $email = '',
        public readonly string $name = '',
        public readonly string $companyName = '',
    ) {
    }
}
