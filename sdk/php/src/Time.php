<?php

declare(strict_types=1);

namespace Grconnect;

/** @internal Parses the API's RFC 3339 times ("2030-01-02T03:04:05.123456789Z"). */
final class Time
{
    public static function parse(mixed $value): \DateTimeImmutable
    {
        if (!is_string($value) || $value === '') {
            throw new \UnexpectedValueException('a required time is missing');
        }
        // PHP keeps microseconds: cut nanoseconds to six digits.
        $value = preg_replace('/(\.\d{6})\d+/', '$1', $value) ?? $value;
        try {
            return new \DateTimeImmutable($value);
        } catch (\Exception) {
            throw new \UnexpectedValueException("not an RFC 3339 time: {$value}");
        }
    }

    public static function parseOptional(mixed $value): ?\DateTimeImmutable
    {
        return $value === null || $value === '' ? null : self::parse($value);
    }
}
