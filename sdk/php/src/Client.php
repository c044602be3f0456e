<?php

declare(strict_types=1);

namespace Grconnect;

use Grconnect\Exception\ApiException;
use Grconnect\Exception\TransportException;

/**
 * Calls one grconnect installation with one API key.
 *
 *     $gc = new Grconnect\Client('https://grconnect.example.com', getenv('GRCONNECT_API_KEY'));
 *     $token = $gc->token('con_…'); // before every GetResponse request: it is cached
 *
 * Tokens are cached in the TokenCache (by default in memory, for as long as the Client
 * lives) until shortly before they expire. PHP runs one request at a time in a process,
 * so a Client never has two token requests for a connection in flight.
 */
final class Client
{
    /** The SDK's version, in step with grconnect's releases (composer.json says the same). */
    public const VERSION = '0.3.0';

    /** The methods whose repetition does what one call does: only these are sent again after a transport failure. */
    public const IDEMPOTENT_METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'];

    /** Added to a Retry-After, so the call comes back after the limit has reset (seconds). */
    private const RETRY_PAD = 0.1;

    private readonly string $base;
    private readonly string $apiKey;
    private readonly string $userAgent;
    private readonly TokenCache $tokens;
    private ?\CurlHandle $curl = null;

    /** The first pause between transport retries in seconds (doubled each time); tests shorten it. */
    public float $retryBackoff = 0.25;

    /**
     * @param string      $baseUrl      grconnect's address, like https://grconnect.example.com (a trailing /api/v1 is accepted)
     * @param string      $apiKey       an API key made on the dashboard or with `grconnect apikey create`
     * @param float       $timeout      seconds each HTTP attempt may take
     * @param string|null $userAgent    names the calling application; it goes before the SDK's own product token
     * @param int         $retries      how often a call that failed in transport (no answer) is sent again; only
     *                                  idempotent calls (GET, HEAD, PUT, DELETE, OPTIONS, and the token call) ever are
     * @param int         $tokenMargin  seconds before expiresAt when a cached token stops being served from the cache
     * @param float       $maxRetryWait the longest Retry-After (seconds) the proxy waits out on a 429; a longer one is returned at once
     */
    public function __construct(
        string $baseUrl,
        string $apiKey,
        private readonly float $timeout = 30.0,
        ?string $userAgent = null,
        private readonly int $retries = 2,
        private readonly int $tokenMargin = 60,
        private readonly float $maxRetryWait = 60.0,
        ?TokenCache $tokenCache = null,
    ) {
        $parts = parse_url(trim($baseUrl));
        if ($parts === false || !in_array($parts['scheme'] ?? '', ['http', 'https'], true) || ($parts['host'] ?? '') === ''
            || isset($parts['query']) || isset($parts['fragment'])) {
            throw new \InvalidArgumentException("base URL \"{$baseUrl}\": give an absolute http(s) URL like https://grconnect.example.com");
        }
        if (trim($apiKey) === '') {
            throw new \InvalidArgumentException('the API key is empty');
        }
        $base = rtrim(trim($baseUrl), '/');
        if (!str_ends_with($base, '/api/v1')) {
            $base .= '/api/v1';
        }
        $this->base = $base;
        $this->apiKey = trim($apiKey);
        $own = 'grconnect-php/' . self::VERSION;
        $this->userAgent = $userAgent !== null && trim($userAgent) !== '' ? trim($userAgent) . ' ' . $own : $own;
        $this->tokens = $tokenCache ?? new MemoryTokenCache();
    }

    public function __destruct()
    {
        if ($this->curl !== null) {
            curl_close($this->curl);
        }
    }

    // --- tokens ----------------------------------------------------------------

    /**
     * A usable access token for the connection: from the cache while it is valid beyond the token
     * margin, else from grconnect, which refreshes it first when it is about to expire. Call it
     * before every GetResponse request: it is cheap.
     *
     * @throws ApiException       grconnect refused (needs_reconnect, disconnected, not_found, …)
     * @throws TransportException no answer
     */
    public function token(string $connectionId): Token
    {
        self::requireId('connection', $connectionId);
        $cached = $this->tokens->get($connectionId);
        if ($cached !== null && time() < $cached->expiresAt->getTimestamp() - $this->tokenMargin) {
            return $cached;
        }
        // Asking for a token twice is harmless, so it is retried like an idempotent call.
        $token = Token::fromArray($this->call('POST', '/connections/' . rawurlencode($connectionId) . '/token', idempotent: true));
        $this->tokens->set($connectionId, $token);
        return $token;
    }

    /**
     * Drops the connection's cached token, so the next token() asks grconnect. Call it when
     * GetResponse refused the token (HTTP 401); refresh() and disconnect() forget it themselves.
     */
    public function forgetToken(string $connectionId): void
    {
        $this->tokens->delete($connectionId);
    }

    // --- the proxy ---------------------------------------------------------------

    /**
     * Sends a GetResponse API call through grconnect's proxy, which adds the connection's access
     * token (and refreshes it once on a 401). GetResponse's answer is returned as it is, also a
     * 4xx or 5xx; grconnect's own refusals (no such connection, needs_reconnect, …) throw.
     *
     * A 429 with a Retry-After (GetResponse's or grconnect's own pacing) is waited out once, up to
     * $maxRetryWait, and the call sent again; a second 429 is returned (or thrown, when it is
     * grconnect's). A call that failed in transport is sent again only when its method is idempotent.
     *
     * @param string                $path    the GetResponse API path below /v3, like /from-fields
     * @param array<string, mixed>  $query   query parameters
     * @param mixed                 $json    a body sent encoded as JSON (unless $body is given)
     * @param string|null           $body    a body sent as it is (as application/json unless $headers names another Content-Type)
     * @param array<string, string> $headers extra request headers
     *
     * @throws ApiException       grconnect refused the call
     * @throws TransportException no answer
     */
    public function proxy(
        string $connectionId,
        string $method,
        string $path,
        array $query = [],
        mixed $json = null,
        ?string $body = null,
        array $headers = [],
    ): ProxyResponse {
        self::requireId('connection', $connectionId);
        $method = strtoupper(trim($method)) ?: 'GET';
        if (!str_starts_with($path, '/')) {
            $path = '/' . $path;
        }
        if ($path === '/' || str_contains($path, '://')) {
            throw new \InvalidArgumentException("proxy path \"{$path}\": give a GetResponse API path like /from-fields");
        }
        if ($body === null && $json !== null) {
            $body = json_encode($json, \JSON_THROW_ON_ERROR | \JSON_UNESCAPED_SLASHES | \JSON_UNESCAPED_UNICODE);
        }
        // GetResponse's API takes JSON only.
        if ($body !== null && !array_filter(array_keys($headers), static fn (string $k): bool => strcasecmp($k, 'Content-Type') === 0)) {
            $headers['Content-Type'] = 'application/json';
        }
        $route = '/connections/' . rawurlencode($connectionId) . '/proxy' . $path;
        $idempotent = in_array($method, self::IDEMPOTENT_METHODS, true);
        $waited = false;
        while (true) {
            [$status, $responseHeaders, $responseBody] = $this->send($method, $route, $query, $body, $headers, $idempotent);
            if ($status === 429 && !$waited) {
                $wait = self::retryAfter($responseHeaders);
                if ($wait !== null && $wait <= $this->maxRetryWait) {
                    $waited = true;
                    usleep((int) (($wait + self::RETRY_PAD) * 1_000_000));
                    continue;
                }
            }
            if ($status >= 400 && ($error = self::parseEnvelope($status, $responseHeaders, $responseBody)) !== null) {
                throw $error;
            }
            return new ProxyResponse($status, $responseHeaders, $responseBody);
        }
    }

    // --- connect sessions --------------------------------------------------------

    /**
     * Makes a single-use connect link for one customer; send them to its url. With $connectionId
     * it is a reconnect link that renews that connection ($appId and $customerRef may then be
     * left out). $returnUrl must be on one of the app's return origins.
     */
    public function createConnectSession(
        ?string $appId = null,
        ?string $customerRef = null,
        ?string $returnUrl = null,
        ?string $connectionId = null,
        ?int $ttlSeconds = null,
        bool $allowTransfer = false,
        ?string $maxDomain = null,
    ): ConnectSession {
        $payload = array_filter([
            'app_id' => $appId,
            'customer_ref' => $customerRef,
            'return_url' => $returnUrl,
            'connection_id' => $connectionId,
            'ttl_seconds' => $ttlSeconds,
            'max_domain' => $maxDomain,
        ], static fn (mixed $v): bool => $v !== null && $v !== '' && $v !== 0);
        if ($allowTransfer) {
            $payload['allow_transfer'] = true;
        }
        return ConnectSession::fromArray($this->call('POST', '/connect-sessions', payload: $payload));
    }

    /** Revokes an unused connect link. */
    public function revokeConnectSession(string $sessionId): void
    {
        self::requireId('connect session', $sessionId);
        $this->call('DELETE', '/connect-sessions/' . rawurlencode($sessionId), idempotent: true);
    }

    // --- connections -------------------------------------------------------------

    /** One connection: account, status, expiry, last refresh, last error. */
    public function connection(string $connectionId): Connection
    {
        self::requireId('connection', $connectionId);
        return Connection::fromArray($this->call('GET', '/connections/' . rawurlencode($connectionId), idempotent: true));
    }

    /** One page of connections ($cursor from the previous page's nextCursor). */
    public function connectionsPage(
        ?string $customerRef = null,
        ?string $status = null,
        ?string $appId = null,
        ?int $limit = null,
        ?string $cursor = null,
    ): ConnectionPage {
        $query = array_filter(
            ['customer_ref' => $customerRef, 'status' => $status, 'app_id' => $appId, 'limit' => $limit, 'cursor' => $cursor],
            static fn (mixed $v): bool => $v !== null && $v !== '' && $v !== 0,
        );
        $doc = $this->call('GET', '/connections', query: $query, idempotent: true);
        $connections = array_map(static fn (array $c): Connection => Connection::fromArray($c), $doc['connections'] ?? []);
        $next = $doc['next_cursor'] ?? null;
        return new ConnectionPage(array_values($connections), is_string($next) && $next !== '' ? $next : null);
    }

    /**
     * Every connection the filters match, fetched page after page as the loop goes on:
     * `foreach ($gc->connections(status: 'needs_reconnect') as $conn) …`
     *
     * @return \Generator<int, Connection>
     */
    public function connections(?string $customerRef = null, ?string $status = null, ?string $appId = null, ?int $pageSize = null): \Generator
    {
        $cursor = null;
        do {
            $page = $this->connectionsPage($customerRef, $status, $appId, $pageSize, $cursor);
            yield from $page->connections;
            $cursor = $page->nextCursor;
        } while ($cursor !== null);
    }

    /** Has grconnect refresh the tokens now (it always asks GetResponse); the cached token is forgotten. */
    public function refresh(string $connectionId): Connection
    {
        self::requireId('connection', $connectionId);
        $this->forgetToken($connectionId);
        return Connection::fromArray($this->call('POST', '/connections/' . rawurlencode($connectionId) . '/refresh'));
    }

    /** Erases the connection's tokens at grconnect; the record stays, disconnected. */
    public function disconnect(string $connectionId): Connection
    {
        self::requireId('connection', $connectionId);
        $this->forgetToken($connectionId);
        return Connection::fromArray($this->call('DELETE', '/connections/' . rawurlencode($connectionId), idempotent: true));
    }

    // --- HTTP ----------------------------------------------------------------------

    /**
     * Sends a call and returns its decoded JSON object; an error answer throws ApiException.
     *
     * @param array<string, mixed> $query
     *
     * @return array<string, mixed>
     */
    private function call(string $method, string $route, array $query = [], ?array $payload = null, bool $idempotent = false): array
    {
        $headers = [];
        $body = null;
        if ($payload !== null) {
            $body = json_encode((object) $payload, \JSON_THROW_ON_ERROR | \JSON_UNESCAPED_SLASHES | \JSON_UNESCAPED_UNICODE);
            $headers['Content-Type'] = 'application/json';
        }
        [$status, $responseHeaders, $responseBody] = $this->send($method, $route, $query, $body, $headers, $idempotent);
        if ($status < 200 || $status > 299) {
            throw self::parseEnvelope($status, $responseHeaders, $responseBody) ?? new ApiException(
                $status,
                ErrorCode::UnexpectedResponse->value,
                "grconnect answered HTTP {$status} without its error envelope",
                $responseHeaders['x-request-id'][0] ?? '',
                self::retryAfter($responseHeaders),
                body: $responseBody,
            );
        }
        if ($responseBody === '') {
            return [];
        }
        try {
            $doc = json_decode($responseBody, true, 512, \JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            $doc = null;
        }
        if (!is_array($doc)) {
            throw new ApiException($status, ErrorCode::UnexpectedResponse->value, 'the answer is not the JSON this call expects',
                $responseHeaders['x-request-id'][0] ?? '', body: $responseBody);
        }
        return $doc;
    }

    /**
     * Sends a request, again after a transport failure when it is idempotent.
     *
     * @param array<string, mixed>  $query
     * @param array<string, string> $headers
     *
     * @return array{0: int, 1: array<string, list<string>>, 2: string}
     */
    private function send(string $method, string $route, array $query, ?string $body, array $headers, bool $idempotent): array
    {
        $url = $this->base . $route;
        if ($query !== []) {
            $url .= (str_contains($url, '?') ? '&' : '?') . self::queryString($query);
        }
        $attempts = 1 + ($idempotent ? max(0, $this->retries) : 0);
        for ($attempt = 0; ; $attempt++) {
            if ($attempt > 0) {
                usleep((int) ($this->retryBackoff * 2 ** ($attempt - 1) * (0.75 + mt_rand() / mt_getrandmax() * 0.5) * 1_000_000));
            }
            try {
                return $this->attempt($method, $url, $route, $body, $headers);
            } catch (TransportException $e) {
                if ($attempt + 1 >= $attempts) {
                    throw $e;
                }
            }
        }
    }

    /**
     * @param array<string, string> $headers
     *
     * @return array{0: int, 1: array<string, list<string>>, 2: string}
     */
    private function attempt(string $method, string $url, string $route, ?string $body, array $headers): array
    {
        // One handle for the Client's life keeps the connection to grconnect open between calls.
        if ($this->curl === null) {
            $this->curl = curl_init();
        } else {
            curl_reset($this->curl);
        }
        $h = $this->curl;
        $lines = ['Authorization: Bearer ' . $this->apiKey, 'User-Agent: ' . $this->userAgent, 'Expect:'];
        $hasAccept = false;
        foreach ($headers as $name => $value) {
            if (preg_match('/[\r\n]/', $name . $value) === 1) {
                throw new \InvalidArgumentException("header {$name} holds a line break");
            }
            $hasAccept = $hasAccept || strcasecmp($name, 'Accept') === 0;
            $lines[] = "{$name}: {$value}";
        }
        if (!$hasAccept) {
            $lines[] = 'Accept: application/json';
        }
        $responseHeaders = [];
        curl_setopt_array($h, [
            \CURLOPT_URL => $url,
            \CURLOPT_RETURNTRANSFER => true,
            \CURLOPT_FOLLOWLOCATION => false,
            \CURLOPT_TIMEOUT_MS => (int) ($this->timeout * 1000),
            \CURLOPT_CONNECTTIMEOUT_MS => (int) (min($this->timeout, 10.0) * 1000),
            \CURLOPT_HTTPHEADER => $lines,
            \CURLOPT_HEADERFUNCTION => static function ($ch, string $line) use (&$responseHeaders): int {
                if (str_starts_with($line, 'HTTP/')) {
                    $responseHeaders = []; // a new header block (after 100 Continue)
                } elseif (str_contains($line, ':')) {
                    [$name, $value] = explode(':', $line, 2);
                    $responseHeaders[strtolower(trim($name))][] = trim($value);
                }
                return strlen($line);
            },
        ]);
        if ($method === 'HEAD') {
            curl_setopt($h, \CURLOPT_NOBODY, true);
        } elseif ($method !== 'GET') {
            curl_setopt($h, \CURLOPT_CUSTOMREQUEST, $method);
        }
        if ($body !== null || in_array($method, ['POST', 'PUT', 'PATCH'], true)) {
            curl_setopt($h, \CURLOPT_POSTFIELDS, $body ?? '');
        }
        $result = curl_exec($h);
        if ($result === false) {
            $path = explode('?', $route, 2)[0];
            $why = curl_errno($h) === \CURLE_OPERATION_TIMEDOUT ? "no answer within {$this->timeout} s" : curl_error($h);
            throw new TransportException("{$method} {$path}: {$why}");
        }
        return [(int) curl_getinfo($h, \CURLINFO_RESPONSE_CODE), $responseHeaders, (string) $result];
    }

    /** @param array<string, list<string>> $headers */
    private static function parseEnvelope(int $status, array $headers, string $body): ?ApiException
    {
        try {
            $doc = json_decode($body, true, 512, \JSON_THROW_ON_ERROR);
        } catch (\JsonException) {
            return null;
        }
        $e = is_array($doc) ? ($doc['error'] ?? null) : null;
        if (!is_array($e) || !is_string($e['code'] ?? null) || $e['code'] === '') {
            return null; // GetResponse's answers, passed through by the proxy, never have it
        }
        $retry = $e['retry_after'] ?? null;
        return new ApiException(
            status: $status,
            errorCode: $e['code'],
            detail: is_string($e['message'] ?? null) ? $e['message'] : '',
            requestId: is_string($e['request_id'] ?? null) && $e['request_id'] !== '' ? $e['request_id'] : ($headers['x-request-id'][0] ?? ''),
            retryAfter: is_int($retry) && $retry > 0 ? $retry : self::retryAfter($headers),
            fields: is_array($e['fields'] ?? null) ? $e['fields'] : [],
            app: is_array($e['app'] ?? null) ? $e['app'] : null,
            reconnect: is_array($e['reconnect'] ?? null) ? $e['reconnect'] : null,
            body: $body,
        );
    }

    /**
     * Retry-After (delta seconds or an HTTP date) in seconds, or null.
     *
     * @param array<string, list<string>> $headers
     */
    private static function retryAfter(array $headers): ?int
    {
        $value = trim($headers['retry-after'][0] ?? '');
        if ($value === '') {
            return null;
        }
        if (ctype_digit($value)) {
            return (int) $value;
        }
        $when = strtotime($value);
        return $when === false ? null : max(0, $when - time());
    }

    /** @param array<string, mixed> $query */
    private static function queryString(array $query): string
    {
        $pairs = [];
        foreach ($query as $key => $value) {
            foreach (is_array($value) ? $value : [$value] as $v) {
                $v = is_bool($v) ? ($v ? 'true' : 'false') : (string) $v;
                $pairs[] = rawurlencode((string) $key) . '=' . rawurlencode($v);
            }
        }
        return implode('&', $pairs);
    }

    private static function requireId(string $what, string $id): void
    {
        if (trim($id) === '') {
            throw new \InvalidArgumentException("the {$what} ID is empty");
        }
    }
}
