<?php

declare(strict_types=1);

namespace Grconnect\Tests;

use Grconnect\Client;
use Grconnect\Exception\ApiException;
use Grconnect\Exception\TransportException;
use PHPUnit\Framework\TestCase;

final class ProxyTest extends TestCase
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
        $gc = new Client($fake->url, FakeGrconnect::API_KEY, ...$options);
        $gc->retryBackoff = 0.02;
        return $gc;
    }

    private static function getResponse429(?string $retryAfter): array
    {
        return ['status' => 429, 'body' => '{"httpStatus":429,"code":1015,"message":"Too many requests"}', 'headers' => $retryAfter === null ? [] : ['Retry-After' => $retryAfter]];
    }

    public function testTheProxySendsTheCallAndReturnsGetResponsesAnswer(): void
    {
        $fake = $this->serve([
            'GET /api/v1/connections/con_1/proxy/from-fields' => [FakeGrconnect::json(200, [['fromFieldId' => 'V', 'email' => 'a@example.com']])],
            'GET /api/v1/connections/con_1/proxy/contacts/abc' => [['status' => 404, 'body' => '{"httpStatus":404,"code":1013,"message":"Resource not found"}', 'headers' => ['X-RateLimit-Remaining' => '79']]],
            'POST /api/v1/connections/con_1/proxy/contacts' => [['status' => 202, 'body' => '']],
        ]);
        $gc = self::client($fake);
        $res = $gc->proxy('con_1', 'GET', '/from-fields', query: ['fields' => 'email']);
        self::assertTrue($res->ok());
        self::assertSame('V', $res->json()[0]['fromFieldId']);
        self::assertSame(['GET', '/api/v1/connections/con_1/proxy/from-fields', 'fields=email'], [$fake->last()['method'], $fake->last()['path'], $fake->last()['query']]);
        // GetResponse's error is an answer, not an exception.
        $res = $gc->proxy('con_1', 'GET', 'contacts/abc');
        self::assertSame([404, '79', 1013], [$res->status, $res->header('X-RateLimit-Remaining'), $res->json()['code']]);
        // A JSON body goes out encoded, with its content type.
        self::assertSame(202, $gc->proxy('con_1', 'post', '/contacts', json: ['email' => 'b@example.com'])->status);
        self::assertSame(['POST', 'application/json', '{"email":"b@example.com"}'], [$fake->last()['method'], $fake->last()['headers']['content-type'], $fake->last()['body']]);
    }

    public function testGrconnectsOwnRefusalsThrow(): void
    {
        $fake = $this->serve(['GET /api/v1/connections/con_1/proxy/from-fields' => [FakeGrconnect::error(409, 'needs_reconnect', 'The customer must approve access again.')]]);
        $this->expectExceptionObject(new ApiException(409, 'needs_reconnect', 'The customer must approve access again.', 'req_needs_reconnect'));
        self::client($fake)->proxy('con_1', 'GET', '/from-fields');
    }

    public function testA429IsWaitedOutOnce(): void
    {
        $fake = $this->serve(['POST /api/v1/connections/con_1/proxy/contacts' => [self::getResponse429('1'), FakeGrconnect::json(200, [])]]);
        $start = microtime(true);
        $res = self::client($fake)->proxy('con_1', 'POST', '/contacts', body: '{"email":"x@example.com"}');
        self::assertSame(200, $res->status);
        self::assertGreaterThanOrEqual(1.0, microtime(true) - $start);
        self::assertSame(['{"email":"x@example.com"}', 'application/json'], [$fake->last()['body'], $fake->last()['headers']['content-type']]);
        // A 429 means the call was not made, so even a POST is sent again.
        self::assertSame(2, $fake->count('POST /api/v1/connections/con_1/proxy/contacts'));
    }

    public function testA429IsWaitedOutOnlyOnce(): void
    {
        $fake = $this->serve([
            'GET /api/v1/connections/con_1/proxy/from-fields' => [self::getResponse429('1')],
            'GET /api/v1/connections/con_2/proxy/from-fields' => [FakeGrconnect::error(429, 'rate_limited', 'Wait.', 1)],
        ]);
        $gc = self::client($fake);
        self::assertSame(429, $gc->proxy('con_1', 'GET', '/from-fields')->status);
        self::assertSame(2, $fake->count('GET /api/v1/connections/con_1/proxy/from-fields'));
        try {
            $gc->proxy('con_2', 'GET', '/from-fields');
            self::fail('no error');
        } catch (ApiException $e) {
            self::assertSame(['rate_limited', 1], [$e->errorCode, $e->retryAfter]);
        }
        self::assertSame(2, $fake->count('GET /api/v1/connections/con_2/proxy/from-fields'));
    }

    public function testNoWaitBeyondTheMaximumOrWithoutRetryAfter(): void
    {
        $fake = $this->serve([
            'GET /api/v1/connections/con_1/proxy/from-fields?long=1' => [self::getResponse429('120')],
            'GET /api/v1/connections/con_1/proxy/from-fields' => [self::getResponse429(null)],
        ]);
        $gc = self::client($fake, maxRetryWait: 5.0);
        $start = microtime(true);
        self::assertSame(429, $gc->proxy('con_1', 'GET', '/from-fields', query: ['long' => 1])->status);
        self::assertSame(429, $gc->proxy('con_1', 'GET', '/from-fields')->status);
        self::assertLessThan(0.5, microtime(true) - $start);
        self::assertSame(2, $fake->count('GET /api/v1/connections/con_1/proxy/from-fields'));
    }

    public function testTransportFailuresAreRetriedForIdempotentCallsOnly(): void
    {
        // The first answer of each comes too late for the client's timeout: no answer.
        $late = ['status' => 200, 'body' => '{}', 'sleep' => 0.6];
        $rules = [];
        foreach (['GET', 'PUT', 'DELETE', 'POST', 'PATCH'] as $m) {
            $rules["{$m} /api/v1/connections/con_1/proxy/contacts/x"] = [$late, FakeGrconnect::json(200, ['ok' => true])];
        }
        $rules['POST /api/v1/connect-sessions'] = [$late, FakeGrconnect::json(201, ['id' => 'lnk_1', 'url' => 'u', 'expires_at' => '2030-01-01T00:00:00Z'])];
        $rules['POST /api/v1/connections/con_1/token'] = [$late, FakeGrconnect::token('t')];
        $fake = $this->serve($rules);
        $gc = self::client($fake, timeout: 0.3);
        foreach (['GET', 'PUT', 'DELETE'] as $m) {
            self::assertSame(200, $gc->proxy('con_1', $m, '/contacts/x')->status, $m);
            self::assertSame(2, $fake->count("{$m} /api/v1/connections/con_1/proxy/contacts/x"), $m);
        }
        foreach (['POST', 'PATCH'] as $m) {
            try {
                $gc->proxy('con_1', $m, '/contacts/x');
                self::fail("{$m}: no error");
            } catch (TransportException $e) {
                self::assertStringContainsString('no answer within', $e->getMessage());
            }
            self::assertSame(1, $fake->count("{$m} /api/v1/connections/con_1/proxy/contacts/x"), $m);
        }
        // Creating a connect session is not idempotent; asking for a token is.
        try {
            $gc->createConnectSession('app_1', 'c');
            self::fail('connect session: no error');
        } catch (TransportException) {
        }
        self::assertSame(1, $fake->count('POST /api/v1/connect-sessions'));
        self::assertSame('t', $gc->token('con_1')->accessToken);
        self::assertSame(2, $fake->count('POST /api/v1/connections/con_1/token'));
    }

    public function testRedirectsAreNotFollowed(): void
    {
        $fake = $this->serve(['GET /api/v1/connections/con_1' => [['status' => 302, 'body' => '', 'headers' => ['Location' => '/api/v1/elsewhere']]]]);
        try {
            self::client($fake)->connection('con_1');
            self::fail('no error');
        } catch (ApiException $e) {
            self::assertSame([302, 'unexpected_response'], [$e->status, $e->errorCode]);
        }
        self::assertSame(0, $fake->count('GET /api/v1/elsewhere'));
    }
}
