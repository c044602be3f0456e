<?php

declare(strict_types=1);

namespace Grconnect;

use Grconnect\Exception\WebhookVerificationException;

/** Verification of grconnect's webhooks (Standard Webhooks, standardwebhooks.com). */
final class Webhook
{
    /** How far webhook-timestamp may be from the receiver's clock, either way (seconds). */
    public const TOLERANCE = 300;

    /**
     * Checks a webhook grconnect sent; throws WebhookVerificationException if it fails.
     *
     * As the Standard Webhooks specification defines it: the HMAC-SHA256 of
     * "<webhook-id>.<webhook-timestamp>.<body>" keyed with the secret ("whsec_<base64 key>",
     * shown once when the app's webhook was set) must match one of the "v1,<base64>" signatures
     * in webhook-signature (compared in constant time), and webhook-timestamp must be within five
     * minutes of now.
     *
     *     Grconnect\Webhook::verify($secret, getallheaders(), file_get_contents('php://input'));
     *
     * Use webhook-id (the same for every attempt of one delivery) to act on each delivery once.
     *
     * @param array<string, string|list<string>> $headers the request's headers, names in any case (or $_SERVER)
     * @param string                             $body    the raw request body, exactly as received
     * @param int|null                           $now     the Unix time to check the timestamp against (tests)
     *
     * @throws WebhookVerificationException
     */
    public static function verify(string $secret, array $headers, string $body, ?int $now = null): void
    {
        $key = self::key($secret);
        $id = self::header($headers, 'webhook-id');
        $stamp = self::header($headers, 'webhook-timestamp');
        $signatures = self::header($headers, 'webhook-signature');
        foreach (['webhook-id' => $id, 'webhook-timestamp' => $stamp, 'webhook-signature' => $signatures] as $name => $value) {
            if ($value === '') {
                throw new WebhookVerificationException('missing_header', "the {$name} header is missing");
            }
        }
        if (!ctype_digit($stamp)) {
            throw new WebhookVerificationException('invalid_timestamp', "webhook-timestamp \"{$stamp}\" is not Unix seconds");
        }
        $sent = (int) $stamp;
        $now ??= time();
        if ($now - $sent > self::TOLERANCE) {
            throw new WebhookVerificationException('timestamp_too_old', 'webhook-timestamp is more than 5 minutes in the past');
        }
        if ($sent - $now > self::TOLERANCE) {
            throw new WebhookVerificationException('timestamp_too_new', 'webhook-timestamp is more than 5 minutes in the future');
        }
        $expected = hash_hmac('sha256', "{$id}.{$stamp}.{$body}", $key, true);
        foreach (preg_split('/\s+/', $signatures, -1, \PREG_SPLIT_NO_EMPTY) ?: [] as $entry) {
            [$version, $signature] = array_pad(explode(',', $entry, 2), 2, '');
            if ($version !== 'v1' || $signature === '') {
                continue; // another scheme (v1a) or a malformed entry
            }
            $given = base64_decode($signature, true);
            if ($given !== false && hash_equals($expected, $given)) {
                return;
            }
        }
        throw new WebhookVerificationException('no_matching_signature', 'no v1 signature in webhook-signature matches the body and the secret');
    }

    /** Decodes a "whsec_<base64>" secret (the prefix may be left out). */
    private static function key(string $secret): string
    {
        $encoded = trim($secret);
        if (str_starts_with($encoded, 'whsec_')) {
            $encoded = substr($encoded, 6);
        }
        $key = preg_match('#^[A-Za-z0-9+/]+={0,2}$#', $encoded) === 1 ? base64_decode($encoded, true) : false;
        if ($key === false || $key === '') {
            throw new WebhookVerificationException('invalid_secret', 'the secret is not whsec_ followed by base64');
        }
        return $key;
    }

    /**
     * A header's value whatever the case of its name; $_SERVER's form (HTTP_WEBHOOK_ID) works too.
     *
     * @param array<string, string|list<string>> $headers
     */
    private static function header(array $headers, string $name): string
    {
        $server = 'HTTP_' . strtoupper(str_replace('-', '_', $name));
        foreach ($headers as $k => $v) {
            if (strcasecmp((string) $k, $name) === 0 || $k === $server) {
                return trim((string) (is_array($v) ? ($v[0] ?? '') : $v));
            }
        }
        return '';
    }
}
