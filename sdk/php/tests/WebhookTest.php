<?php

declare(strict_types=1);

namespace Grconnect\Tests;

use Grconnect\Exception\WebhookVerificationException;
use Grconnect\Webhook;
use PHPUnit\Framework\TestCase;

final class WebhookTest extends TestCase
{
    // The Standard Webhooks specification's published test vector (the reference libraries' signing test).
    private const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    private const MSG_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
    private const TIMESTAMP = 1614265330;
    private const BODY = '{"test": 2432232314}';
    private const SIGNATURE = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';
    private const WRONG = 'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=';

    /** @param array<string, string|null> $changes */
    private static function vector(array $changes = []): array
    {
        $h = array_merge(['webhook-id' => self::MSG_ID, 'webhook-timestamp' => (string) self::TIMESTAMP, 'webhook-signature' => self::SIGNATURE], $changes);
        return array_filter($h, static fn (?string $v): bool => $v !== null);
    }

    private static function sign(string $secret, string $id, int $ts, string $body): array
    {
        $key = base64_decode(substr($secret, 6), true);
        return ['webhook-id' => $id, 'webhook-timestamp' => (string) $ts, 'webhook-signature' => 'v1,' . base64_encode(hash_hmac('sha256', "{$id}.{$ts}.{$body}", $key, true))];
    }

    private static function reason(string $secret, array $headers, string $body, ?int $now = self::TIMESTAMP): string
    {
        try {
            Webhook::verify($secret, $headers, $body, $now);
            return '';
        } catch (WebhookVerificationException $e) {
            self::assertNotSame('', $e->getMessage());
            return $e->reason;
        }
    }

    public function testTheSpecificationsVector(): void
    {
        self::assertSame(self::SIGNATURE, self::sign(self::SECRET, self::MSG_ID, self::TIMESTAMP, self::BODY)['webhook-signature']);
        self::assertSame('', self::reason(self::SECRET, self::vector(), self::BODY));
        self::assertSame('', self::reason(substr(self::SECRET, 6), self::vector(), self::BODY));
        // Today the vector's timestamp is years old.
        self::assertSame('timestamp_too_old', self::reason(self::SECRET, self::vector(), self::BODY, null));
    }

    public function testRefusals(): void
    {
        $other = 'whsec_' . base64_encode('another secret of thirty-two b!!');
        $wrong = self::WRONG;
        $server = ['HTTP_WEBHOOK_ID' => self::MSG_ID, 'HTTP_WEBHOOK_TIMESTAMP' => (string) self::TIMESTAMP, 'HTTP_WEBHOOK_SIGNATURE' => self::SIGNATURE];
        $t = self::TIMESTAMP;
        $cases = [
            'several signatures, one matches' => [self::SECRET, self::vector(['webhook-signature' => "{$wrong} v1a," . substr($wrong, 3) . ' ' . self::SIGNATURE . ' v1,bm90IGJhc2U2NA']), self::BODY, $t, ''],
            'header names in any case, list values' => [self::SECRET, ['Webhook-Id' => [self::MSG_ID], 'WEBHOOK-TIMESTAMP' => (string) $t, 'webhook-signature' => self::SIGNATURE], self::BODY, $t, ''],
            '$_SERVER' => [self::SECRET, $server, self::BODY, $t, ''],
            'tampered body' => [self::SECRET, self::vector(), '{"test": 2432232315}', $t, 'no_matching_signature'],
            're-encoded body' => [self::SECRET, self::vector(), '{"test":2432232314}', $t, 'no_matching_signature'],
            'wrong secret' => [$other, self::vector(), self::BODY, $t, 'no_matching_signature'],
            'only other schemes and wrong v1' => [self::SECRET, self::vector(['webhook-signature' => "{$wrong} v2," . substr(self::SIGNATURE, 3)]), self::BODY, $t, 'no_matching_signature'],
            'tampered id' => [self::SECRET, self::vector(['webhook-id' => 'msg_other']), self::BODY, $t, 'no_matching_signature'],
            'five minutes old passes' => [self::SECRET, self::vector(), self::BODY, $t + 300, ''],
            'five minutes ahead passes' => [self::SECRET, self::vector(), self::BODY, $t - 300, ''],
            'stale timestamp' => [self::SECRET, self::vector(), self::BODY, $t + 301, 'timestamp_too_old'],
            'future timestamp' => [self::SECRET, self::vector(), self::BODY, $t - 301, 'timestamp_too_new'],
            'timestamp not a number' => [self::SECRET, self::vector(['webhook-timestamp' => '2021-02-25T15:02:10Z']), self::BODY, $t, 'invalid_timestamp'],
            'timestamp with a sign' => [self::SECRET, self::vector(['webhook-timestamp' => '+1614265330']), self::BODY, $t, 'invalid_timestamp'],
            'missing id' => [self::SECRET, self::vector(['webhook-id' => null]), self::BODY, $t, 'missing_header'],
            'missing timestamp' => [self::SECRET, self::vector(['webhook-timestamp' => null]), self::BODY, $t, 'missing_header'],
            'missing signature' => [self::SECRET, self::vector(['webhook-signature' => null]), self::BODY, $t, 'missing_header'],
            'secret not base64' => ['whsec_not*base64', self::vector(), self::BODY, $t, 'invalid_secret'],
            'empty secret' => ['', self::vector(), self::BODY, $t, 'invalid_secret'],
        ];
        foreach ($cases as $name => [$secret, $headers, $body, $now, $want]) {
            self::assertSame($want, self::reason($secret, $headers, $body, $now), $name);
        }
    }

    public function testAFreshDeliveryAgainstTheClock(): void
    {
        $secret = 'whsec_' . base64_encode('0123456789abcdef0123456789abcdef');
        $body = '{"type":"connection.created","connection":{"id":"con_1"}}';
        self::assertSame('', self::reason($secret, self::sign($secret, 'whd_1', time(), $body), $body, null));
        self::assertSame('timestamp_too_old', self::reason($secret, self::sign($secret, 'whd_1', time() - 600, $body), $body, null));
        self::assertSame('no_matching_signature', self::reason($secret, self::sign($secret, 'whd_1', time(), $body), $body . ' ', null));
    }
}
