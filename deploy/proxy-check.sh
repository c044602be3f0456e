#!/usr/bin/env bash
# proxy-check.sh tries docs/deploy.md's reverse-proxy recipes: it runs grconnect with
# GRCONNECT_TRUSTED_PROXIES=127.0.0.1,::1 behind nginx and behind Caddy, each
# configured with the proxy block of docs/examples/nginx.conf and
# docs/examples/Caddyfile (on plain http, without the TLS parts), and checks that
# grconnect sees the client's address (not the proxy's, not one the client made
# up in X-Forwarded-For) and keeps the proxy's request ID. Needs nginx, caddy,
# curl, go. The client calls from 127.0.0.2, an address the proxies do not trust.
#
# Usage: deploy/proxy-check.sh
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$(mktemp -d /tmp/grconnect-proxy.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -5 "$work/grconnect.log" >&2; exit 1; }

(cd "$src" && go build -o "$work/grconnect" .)
GRCONNECT_ADDR=127.0.0.1:18081 GRCONNECT_BASE_URL=https://connect.example.com GRCONNECT_DATABASE="$work/data/grconnect.db" \
	GRCONNECT_TRUSTED_PROXIES=127.0.0.1,::1 GRCONNECT_LOG_FORMAT=json GRCONNECT_LOG_LEVEL=debug \
	"$work/grconnect" serve >"$work/grconnect.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18081/readyz >/dev/null && break; sleep 0.1; done

# nginx: the example's "location /" block inside a plain-http server.
mkdir -p "$work/nginx"
awk '/^    location \/ \{/,/^    \}/' "$src/deploy/nginx.conf" | sed 's/8080/18081/' >"$work/nginx/location.conf"
grep -q proxy_pass "$work/nginx/location.conf" || fail "no location block in deploy/nginx.conf"
cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $work/nginx; proxy_temp_path $work/nginx;
    server {
        listen 127.0.0.1:18082;
        client_max_body_size 32m;
        include $work/nginx/location.conf;
    }
}
CONF
nginx -t -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>/dev/null || fail "nginx refuses the configuration"
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)

# Caddy: the example's site block, on plain http.
sed -e 's/^connect.example.com {/http:\/\/127.0.0.1:18083 {/' -e 's/8080/18081/' \
	-e '/^\tlog {/,/^\t}/d' "$src/deploy/Caddyfile" >"$work/Caddyfile"
caddy validate --config "$work/Caddyfile" --adapter caddyfile >/dev/null 2>&1 || fail "caddy refuses the configuration"
XDG_DATA_HOME=$work XDG_CONFIG_HOME=$work caddy run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
pids+=($!)
for port in 18082 18083; do
	for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
done

check() { # name port id-pattern
	local hdr
	hdr=$(curl -s -D - -o /dev/null --interface 127.0.0.2 -H 'X-Forwarded-For: 203.0.113.9' "http://127.0.0.1:$2/login?via=$1")
	local id
	id=$(printf '%s' "$hdr" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-request-id"{print $2}')
	[[ $id =~ $3 ]] || fail "$1: X-Request-Id '$id' is not the proxy's"
	sleep 0.2
	local line
	line=$(grep "\"request_id\":\"$id\"" "$work/grconnect.log" | grep '"route":"/login"' || true)
	[[ -n $line ]] || fail "$1: no log line with the proxy's request ID $id"
	[[ $line == *'"ip":"127.0.0.2"'* ]] || fail "$1: grconnect logged $(grep -o '"ip":"[^"]*"' <<<"$line"), want the client 127.0.0.2"
	echo "$1: client address 127.0.0.2 (not the proxy's, not the made-up 203.0.113.9); request ID $id kept"
}
check nginx 18082 '^[0-9a-f]{32}$'
check caddy 18083 '^[0-9a-f-]{36}$'
# Without a proxy, a made-up X-Forwarded-For or X-Request-Id is not believed.
hdr=$(curl -s -D - -o /dev/null --interface 127.0.0.2 -H 'X-Forwarded-For: 203.0.113.9' -H 'X-Request-Id: made-up-by-the-client' http://127.0.0.1:18081/login)
grep -qi 'x-request-id: made-up' <<<"$hdr" && fail "a client's own X-Request-Id was kept"
echo "direct: the client's own X-Request-Id is replaced"
echo OK
