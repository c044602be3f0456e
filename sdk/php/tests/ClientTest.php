<?php

declare(strict_types=1);

namespace Grconnect\Tests;

use Grconnect\Client;
use Grconnect\ErrorCode;
use Grconnect\Exception\ApiException;
use Grconnect\Status;
use PHPUnit\Framework\TestCase;

final class ClientTest extends TestCase
{
    private static ?FakeGrconnect $fake = null;

    public static function setUpBeforeClass(): void
    {
        self::$fake = new FakeGrconnect();
    }

    public static function tearDownAfterClass(): void
    {
        self::$fake?->stop();
        self::$fake = null;
    }

    /** @param array<string, list<array<string, mixed>>> $rules */
    private function serve(array $rules): FakeGrconnect
    {
        return self::$fake->reset($rules);
    }

    private static function client(FakeGrconnect $fake, mixed ...$options): Client
    {
        return new Client($fake->url, FakeGrconnect::API_KEY, ...$options);
    }

    public function testTheVersionIsComposers(): void
    {
        $composer = json_decode((string) file_get_contents(__DIR__ . '/../composer.json'), true, 512, JSON_THROW_ON_ERROR);
        self::assertSame($composer['version'], Client::VERSION);
    }

    public function testTheConstructorChecksItsArguments(): void
    {
        foreach (['', 'grconnect.example.com', 'ftp://x', 'https://x/?a=1'] as $base) {
            try {
                new Client($base, 'k');
                self::fail("accepted {$base}");
            } catch (\InvalidArgumentException) {
            }
        }
        $this->expectException(\InvalidArgumentException::class);
        new Client('https://x', ' ');
    }

    public function testRequestsCarryTheKeyAndTheUserAgent(): void
    {
        $fake = $this->serve(['GET /api/v1/connections/con_1' => [FakeGrconnect::json(200, [
            'id' => 'con_1', 'status' => 'active', 'account' => ['email' => 'a@example.com', 'company_name' => 'Acme'],
            'connected_at' => '2030-01-02T03:04:05.123456789Z', 'expires_at' => null,
        ])]]);
        $conn = self::client($fake, userAgent: 'billing/1.2')->connection('con_1');
        self::assertSame('con_1', $conn->id);
        self::assertTrue($conn->is(Status::Active));
        self::assertSame('Acme', $conn->account->companyName);
        self::assertSame('2030-01-02T03:04:05.123456+00:00', $conn->connectedAt?->format('Y-m-d\TH:i:s.uP'));
        self::assertNull($conn->expiresAt);
        self::assertSame('billing/1.2 grconnect-php/' . Client::VERSION, $fake->last()['headers']['user-agent']);
        try {
            (new Client($fake->url, 'grc_wrong'))->connection('con_1');
            self::fail('a wrong key was accepted');
        } catch (ApiException $e) {
            self::assertTrue($e->is(ErrorCode::Unauthorized));
        }
    }

    public function testTheSecondTokenCallIsServedFromTheCache(): void
    {
        $fake = $this->serve([
            'POST /api/v1/connections/con_1/token' => [FakeGrconnect::token('access-1'), FakeGrconnect::token('access-3')],
            'POST /api/v1/connections/con_2/token' => [FakeGrconnect::token('access-2')],
        ]);
        $gc = self::client($fake);
        $first = $gc->token('con_1');
        $second = $gc->token('con_1');
        self::assertSame('access-1', $first->accessToken);
        self::assertSame($first, $second);
        self::assertGreaterThan(new \DateTimeImmutable(), $first->expiresAt);
        self::assertSame(1, $fake->count('POST /api/v1/connections/con_1/token'));
        self::assertSame('access-2', $gc->token('con_2')->accessToken);
        $gc->forgetToken('con_1');
        self::assertSame('access-3', $gc->token('con_1')->accessToken);
    }

    public function testATokenInsideTheMarginIsAskedAgain(): void
    {
        $fake = $this->serve(['POST /api/v1/connections/con_1/token' => [FakeGrconnect::token('short', 30)]]);
        $gc = self::client($fake); // margin 60 s
        for ($i = 0; $i < 3; $i++) {
            self::assertSame('short', $gc->token('con_1')->accessToken);
        }
        self::assertSame(3, $fake->count('POST /api/v1/connections/con_1/token'));
        $narrow = self::client($fake, tokenMargin: 10);
        $narrow->token('con_1');
        $narrow->token('con_1');
        self::assertSame(4, $fake->count('POST /api/v1/connections/con_1/token'));
    }

    public function testTokenStringIsTheTokenAndDumpsHideIt(): void
    {
        $fake = $this->serve(['POST /api/v1/connections/con_1/token' => [FakeGrconnect::token('secret-access-token-abcd')]]);
        $token = self::client($fake)->token('con_1');
        self::assertSame('secret-access-token-abcd', (string) $token);
        $dump = print_r($token, true);
        self::assertStringNotContainsString('secret', $dump);
        self::assertStringContainsString('abcd', $dump);
    }

    public function testDisconnectForgetsTheTokenAndTheNextTokenCallFailsWithItsCode(): void
    {
        $fake = $this->serve([
            'POST /api/v1/connections/con_1/token' => [
                FakeGrconnect::token('live'),
                FakeGrconnect::error(409, 'disconnected', 'This connection is disconnected.'),
            ],
            'DELETE /api/v1/connections/con_1' => [FakeGrconnect::json(200, ['id' => 'con_1', 'status' => 'disconnected', 'expires_at' => null])],
        ]);
        $gc = self::client($fake);
        $gc->token('con_1');
        self::assertTrue($gc->disconnect('con_1')->is(Status::Disconnected));
        try {
            $gc->token('con_1');
            self::fail('no error');
        } catch (ApiException $e) {
            self::assertSame(['disconnected', 409, 'req_disconnected', 'This connection is disconnected.'], [$e->errorCode, $e->status, $e->requestId, $e->detail]);
            self::assertSame(ErrorCode::Disconnected, $e->knownCode());
            self::assertStringContainsString('disconnected (HTTP 409)', $e->getMessage());
        }
    }

    public function testEmptyIdsAreRefusedBeforeAnyRequest(): void
    {
        $fake = $this->serve([]);
        $gc = self::client($fake);
        foreach ([fn () => $gc->token(''), fn () => $gc->disconnect(' '), fn () => $gc->proxy('con_1', 'GET', 'https://evil.example/x')] as $call) {
            try {
                $call();
                self::fail('accepted');
            } catch (\InvalidArgumentException) {
            }
        }
        self::assertSame([], $fake->requests());
    }

    public function testErrorsCarryTheApisFields(): void
    {
        $cases = [
            [409, ['code' => 'needs_reconnect', 'message' => 'm', 'request_id' => 'r1', 'reconnect' => ['method' => 'POST', 'path' => '/api/v1/connect-sessions', 'body' => ['connection_id' => 'con_1']]], [],
                fn (ApiException $e) => self::assertSame(['connection_id' => 'con_1'], $e->reconnect['body'] ?? null)],
            [409, ['code' => 'app_credentials_rejected', 'message' => 'm', 'request_id' => 'r2', 'app' => ['id' => 'app_1', 'name' => 'Acme', 'health' => 'credentials_rejected']], [],
                fn (ApiException $e) => self::assertSame('Acme', $e->app['name'] ?? null)],
            [503, ['code' => 'getresponse_unavailable', 'message' => 'm', 'request_id' => 'r3', 'retry_after' => 30], ['Retry-After' => '30'],
                fn (ApiException $e) => self::assertSame(30, $e->retryAfter)],
            [403, ['code' => 'insufficient_scope', 'message' => 'm', 'request_id' => 'r4', 'scope' => 'tokens:read'], [], fn (ApiException $e) => self::assertNull($e->retryAfter)],
            [429, ['code' => 'refresh_too_soon', 'message' => 'm', 'request_id' => 'r5'], ['Retry-After' => '12'], fn (ApiException $e) => self::assertSame(12, $e->retryAfter)],
            [400, ['code' => 'invalid_input', 'message' => 'm', 'request_id' => 'r6', 'fields' => ['status' => 'Use one of …']], [],
                fn (ApiException $e) => self::assertSame(['status' => 'Use one of …'], $e->fields)],
            [418, ['code' => 'brand_new_code', 'message' => 'm', 'request_id' => 'r7'], [], fn (ApiException $e) => self::assertNull($e->knownCode())],
        ];
        $rules = [];
        foreach ($cases as $i => [$status, $error, $headers]) {
            $rules["POST /api/v1/connections/con_{$i}/refresh"] = [FakeGrconnect::json($status, ['error' => $error], $headers)];
        }
        $gc = self::client($this->serve($rules));
        foreach ($cases as $i => [$status, $error, , $check]) {
            try {
                $gc->refresh("con_{$i}");
                self::fail("{$error['code']}: no error");
            } catch (ApiException $e) {
                self::assertSame([$status, $error['code'], 'm', $error['request_id']], [$e->status, $e->errorCode, $e->detail, $e->requestId]);
                self::assertSame($error['code'], json_decode($e->body, true)['error']['code']);
                $check($e);
            }
        }
    }

    public function testAnAnswerWithoutTheEnvelope(): void
    {
        $fake = $this->serve(['GET /api/v1/connections/con_1' => [['status' => 502, 'type' => 'text/html', 'body' => '<html>Bad gateway</html>', 'headers' => ['X-Request-Id' => 'r8']]]]);
        try {
            self::client($fake)->connection('con_1');
            self::fail('no error');
        } catch (ApiException $e) {
            self::assertSame([502, 'unexpected_response', 'r8'], [$e->status, $e->errorCode, $e->requestId]);
        }
    }

    public function testConnectionsPagesThroughEveryConnection(): void
    {
        $page = static fn (array $ids, ?string $next): array => [FakeGrconnect::json(200, [
            'connections' => array_map(static fn (string $id): array => ['id' => $id, 'status' => 'active'], $ids),
            'next_cursor' => $next,
        ])];
        $q = 'customer_ref=cust%207&status=active&limit=2';
        $fake = $this->serve([
            "GET /api/v1/connections?{$q}" => $page(['con_1', 'con_2'], 'c2'),
            "GET /api/v1/connections?{$q}&cursor=c2" => $page(['con_3', 'con_4'], 'c4'),
            "GET /api/v1/connections?{$q}&cursor=c4" => $page(['con_5'], null),
            'GET /api/v1/connections' => [FakeGrconnect::error(400, 'invalid_input', 'unexpected query')],
        ]);
        $gc = self::client($fake);
        $ids = [];
        foreach ($gc->connections(customerRef: 'cust 7', status: 'active', pageSize: 2) as $conn) {
            $ids[] = $conn->id;
        }
        self::assertSame(['con_1', 'con_2', 'con_3', 'con_4', 'con_5'], $ids);
        self::assertSame(3, $fake->count('GET /api/v1/connections'));
        // Stopping early fetches no further page.
        foreach ($gc->connections(customerRef: 'cust 7', status: 'active', pageSize: 2) as $conn) {
            break;
        }
        self::assertSame(4, $fake->count('GET /api/v1/connections'));
        $last = $gc->connectionsPage(customerRef: 'cust 7', status: 'active', limit: 2, cursor: 'c4');
        self::assertSame(['con_5'], array_map(static fn ($c) => $c->id, $last->connections));
        self::assertNull($last->nextCursor);
        try {
            iterator_to_array($gc->connections());
            self::fail('no error');
        } catch (ApiException $e) {
            self::assertTrue($e->is(ErrorCode::InvalidInput));
        }
    }

    public function testConnectSessionsSendOnlyWhatIsGiven(): void
    {
        $fake = $this->serve([
            'POST /api/v1/connect-sessions' => [FakeGrconnect::json(201, ['id' => 'lnk_1', 'url' => 'https://gc.example/connect/abc', 'expires_at' => '2030-01-02T03:04:05Z'])],
            'DELETE /api/v1/connect-sessions/lnk_1' => [['status' => 204]],
        ]);
        $gc = self::client($fake);
        $s = $gc->createConnectSession('app_1', 'cust-7', ttlSeconds: 3600, allowTransfer: true);
        self::assertSame(['lnk_1', 'https://gc.example/connect/abc', '2030'], [$s->id, $s->url, $s->expiresAt->format('Y')]);
        $req = $fake->last();
        self::assertSame(['POST', '/api/v1/connect-sessions', 'application/json'], [$req['method'], $req['path'], $req['headers']['content-type']]);
        self::assertSame(['app_id' => 'app_1', 'customer_ref' => 'cust-7', 'ttl_seconds' => 3600, 'allow_transfer' => true], json_decode($req['body'], true));
        $gc->createConnectSession(connectionId: 'con_1');
        self::assertSame('{"connection_id":"con_1"}', $fake->last()['body']);
        $gc->revokeConnectSession('lnk_1');
        self::assertSame(['DELETE', '/api/v1/connect-sessions/lnk_1'], [$fake->last()['method'], $fake->last()['path']]);
    }
}
