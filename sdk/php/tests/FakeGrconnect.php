<?php

declare(strict_types=1);

namespace Grconnect\Tests;

/**
 * grconnect's API played by PHP's built-in web server (tests/Fake/router.php) on a loopback
 * port, with canned replies keyed "METHOD path" or "METHOD path?query"; it logs every request.
 */
final class FakeGrconnect
{
    public const API_KEY = 'grc_test_key';

    public readonly string $url;
    private readonly string $dir;
    /** @var resource */
    private $process;

    public function __construct()
    {
        $this->dir = sys_get_temp_dir() . '/grconnect-php-fake-' . bin2hex(random_bytes(6));
        mkdir($this->dir);
        $this->reset([]);
        $probe = stream_socket_server('tcp://127.0.0.1:0');
        $port = (int) substr(strrchr(stream_socket_get_name($probe, false), ':'), 1);
        fclose($probe);
        $this->url = "http://127.0.0.1:{$port}";
        $env = ['GRCONNECT_FAKE_DIR' => $this->dir, 'PHP_CLI_SERVER_WORKERS' => '4', 'PATH' => (string) getenv('PATH')];
        $this->process = proc_open(
            [PHP_BINARY, '-S', "127.0.0.1:{$port}", __DIR__ . '/Fake/router.php'],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', "{$this->dir}/server.log", 'w']],
            $pipes,
            null,
            $env,
        );
        $deadline = microtime(true) + 10;
        while (($s = @fsockopen('127.0.0.1', $port, $errno, $errstr, 0.2)) === false) {
            if (microtime(true) > $deadline) {
                throw new \RuntimeException('the fake server did not start: ' . file_get_contents("{$this->dir}/server.log"));
            }
            usleep(20_000);
        }
        fclose($s);
    }

    /**
     * Forgets every request and answers by $rules from now on.
     *
     * @param array<string, list<array<string, mixed>>> $rules
     */
    public function reset(array $rules): self
    {
        file_put_contents("{$this->dir}/rules.json", json_encode((object) $rules, JSON_THROW_ON_ERROR));
        file_put_contents("{$this->dir}/requests.jsonl", '');
        @unlink("{$this->dir}/counts.json");
        return $this;
    }

    /** @param array<string, mixed> $doc */
    public static function json(int $status, array $doc, array $headers = []): array
    {
        return ['status' => $status, 'body' => json_encode($doc, JSON_THROW_ON_ERROR), 'headers' => ['X-Request-Id' => 'req_header'] + $headers];
    }

    public static function error(int $status, string $code, string $message = 'Something is wrong.', int $retryAfter = 0, array $extra = []): array
    {
        $error = ['code' => $code, 'message' => $message, 'request_id' => "req_{$code}"] + $extra;
        $headers = [];
        if ($retryAfter > 0) {
            $error['retry_after'] = $retryAfter;
            $headers['Retry-After'] = (string) $retryAfter;
        }
        return self::json($status, ['error' => $error], $headers);
    }

    public static function token(string $token, int $expiresIn = 3600): array
    {
        return self::json(200, ['access_token' => $token, 'token_type' => 'Bearer', 'expires_at' => gmdate('Y-m-d\TH:i:s.123456789\Z', time() + $expiresIn)]);
    }

    /** @return list<array{method: string, path: string, query: string, headers: array<string, string>, body: string}> */
    public function requests(): array
    {
        $lines = file("{$this->dir}/requests.jsonl", FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) ?: [];
        return array_map(static fn (string $l): array => json_decode($l, true, 512, JSON_THROW_ON_ERROR), $lines);
    }

    public function count(string $methodAndPath): int
    {
        return count(array_filter($this->requests(), static fn (array $r): bool => "{$r['method']} {$r['path']}" === $methodAndPath));
    }

    /** @return array{method: string, path: string, query: string, headers: array<string, string>, body: string} */
    public function last(): array
    {
        $all = $this->requests();
        return $all[count($all) - 1];
    }

    public function stop(): void
    {
        proc_terminate($this->process);
        proc_close($this->process);
        array_map('unlink', glob("{$this->dir}/*") ?: []);
        rmdir($this->dir);
    }
}
