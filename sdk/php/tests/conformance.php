<?php

declare(strict_types=1);

// The SDK conformance scenario, run by sdk/conformance against a real grconnect.
//
// It talks to the Go driver one line at a time (its requests on stdout, the answers on
// stdin) and exits non-zero, saying why on stderr, when the SDK misbehaves.

require __DIR__ . '/bootstrap.php';

use Grconnect\Client;
use Grconnect\ErrorCode;
use Grconnect\Exception\ApiException;
use Grconnect\Exception\WebhookVerificationException;
use Grconnect\Status;
use Grconnect\Webhook;

function ask(string $request): string
{
    fwrite(STDOUT, $request . "\n");
    fflush(STDOUT);
    $answer = trim((string) fgets(STDIN));
    if ($answer === '' || str_starts_with($answer, 'error')) {
        throw new RuntimeException('the driver could not do ' . strtok($request, ' ') . ": {$answer}");
    }
    return $answer;
}

function check(bool $ok, string $what): void
{
    if (!$ok) {
        throw new RuntimeException("conformance: {$what}");
    }
}

function expectApiError(callable $call, string $want): ApiException
{
    try {
        $call();
    } catch (ApiException $e) {
        return $e;
    }
    throw new RuntimeException("conformance: no error; want {$want}");
}

try {
    $ref = (string) getenv('GRCONNECT_CUSTOMER_REF');
    $appId = (string) getenv('GRCONNECT_APP_ID');
    $gc = new Client((string) getenv('GRCONNECT_URL'), (string) getenv('GRCONNECT_API_KEY'), userAgent: 'sdk-conformance');

    // A connect session, completed by a customer through the simulated consent.
    $session = $gc->createConnectSession($appId, $ref);
    check($session->id !== '' && str_starts_with($session->url, 'http') && $session->expiresAt > new DateTimeImmutable(), "connect session {$session->id}");
    ask("consent {$session->url}");

    $conns = iterator_to_array($gc->connections(customerRef: $ref), false);
    check(count($conns) === 1, count($conns) . " connections of {$ref}; want 1");
    $conn = $gc->connection($conns[0]->id);
    check($conn->is(Status::Active) && $conn->appId === $appId && $conn->account->email === getenv('GRCONNECT_ACCOUNT_EMAIL'), "connection {$conn->id} is {$conn->status}");

    // Two tokens, the second from the cache.
    $first = $gc->token($conn->id);
    $second = $gc->token($conn->id);
    check($first->accessToken !== '' && $first->accessToken === $second->accessToken, 'the two tokens differ');
    check($first->expiresAt->getTimestamp() > time() + 60, 'token expires ' . $first->expiresAt->format(DATE_RFC3339));
    check(ask("token-requests {$conn->id}") === '1', 'the second token call was not served from the cache');

    // A GetResponse call through the proxy.
    $res = $gc->proxy($conn->id, 'GET', '/from-fields');
    check($res->status === 200 && isset($res->json()[0]['fromFieldId']), "GET /from-fields: {$res->status} " . substr($res->body, 0, 200));

    // GetResponse answers 429 with Retry-After: 1; the SDK waits it out once.
    ask("arm-429 {$conn->id}");
    $start = microtime(true);
    $res = $gc->proxy($conn->id, 'GET', '/from-fields');
    $waited = microtime(true) - $start;
    check($res->status === 200, "GET /from-fields after a 429: {$res->status} " . substr($res->body, 0, 200));
    check($waited >= 1.0, sprintf('answered after %.2f s; the 429 asked for 1 s', $waited));
    check(ask("proxy-requests {$conn->id}") === '3', 'the 429 was not sent again exactly once');

    // An error with its code: a disconnected connection has no token.
    check($gc->disconnect($conn->id)->is(Status::Disconnected), 'disconnect');
    $e = expectApiError(fn () => $gc->token($conn->id), 'disconnected');
    check($e->is(ErrorCode::Disconnected) && $e->status === 409 && $e->requestId !== '', "token after disconnect: {$e->getMessage()}");
    $e = expectApiError(fn () => $gc->connection('con_doesnotexist'), 'not_found');
    check($e->errorCode === 'not_found' && $e->status === 404, "unknown connection: {$e->getMessage()}");

    // A real delivery verifies; a tampered copy does not.
    $hook = json_decode(ask("webhook {$conn->id}"), true, 512, JSON_THROW_ON_ERROR);
    $body = base64_decode($hook['body'], true);
    Webhook::verify($hook['secret'], $hook['headers'], $body);
    $tampered = preg_replace('/' . preg_quote($ref, '/') . '/', 'mallory', $body, 1);
    check($tampered !== $body, 'the delivery does not name the customer');
    try {
        Webhook::verify($hook['secret'], $hook['headers'], $tampered);
        check(false, 'a tampered delivery verified');
    } catch (WebhookVerificationException $e) {
        check($e->reason === 'no_matching_signature', "tampered delivery: {$e->reason}");
    }

    fwrite(STDOUT, "done\n");
} catch (Throwable $e) {
    fwrite(STDERR, get_class($e) . ': ' . $e->getMessage() . "\n" . $e->getTraceAsString() . "\n");
    exit(1);
}
