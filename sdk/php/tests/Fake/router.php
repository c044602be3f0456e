<?php

declare(strict_types=1);

// The router of `php -S` playing grconnect's API for the SDK's tests (see FakeGrconnect).
// Each request is logged; its reply is the next one of the first rule keyed
// "METHOD path?query" or "METHOD path" (the last reply repeats).

$dir = (string) getenv('GRCONNECT_FAKE_DIR');
$lock = fopen("{$dir}/lock", 'c');
flock($lock, LOCK_EX);

$method = $_SERVER['REQUEST_METHOD'];
$uri = $_SERVER['REQUEST_URI'];
$path = (string) parse_url($uri, PHP_URL_PATH);
$query = (string) parse_url($uri, PHP_URL_QUERY);
$headers = array_change_key_case(getallheaders(), CASE_LOWER);
$body = (string) file_get_contents('php://input');
file_put_contents("{$dir}/requests.jsonl", json_encode(['method' => $method, 'path' => $path, 'query' => $query, 'headers' => $headers, 'body' => $body]) . "\n", FILE_APPEND);

$reply = ['status' => 404, 'body' => '{"error":{"code":"not_found","message":"no rule for this request"}}'];
if (($headers['authorization'] ?? '') !== 'Bearer grc_test_key') {
    $reply = ['status' => 401, 'body' => '{"error":{"code":"unauthorized","message":"Send a valid API key.","request_id":"req_unauthorized"}}'];
} else {
    $rules = json_decode((string) file_get_contents("{$dir}/rules.json"), true);
    $counts = json_decode((string) (@file_get_contents("{$dir}/counts.json") ?: '{}'), true);
    foreach (["{$method} {$path}?{$query}", "{$method} {$path}"] as $key) {
        if (isset($rules[$key])) {
            $n = $counts[$key] ?? 0;
            $counts[$key] = $n + 1;
            $reply = $rules[$key][min($n, count($rules[$key]) - 1)];
            file_put_contents("{$dir}/counts.json", json_encode($counts));
            break;
        }
    }
}
flock($lock, LOCK_UN);

if (isset($reply['sleep'])) {
    usleep((int) ($reply['sleep'] * 1_000_000));
}
http_response_code($reply['status'] ?? 200);
header('Content-Type: ' . ($reply['type'] ?? 'application/json'));
foreach ($reply['headers'] ?? [] as $name => $value) {
    header("{$name}: {$value}");
}
echo $reply['body'] ?? '';
