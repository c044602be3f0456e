#!/usr/bin/env bash
# container-check.sh runs grconnect the way the Dockerfile's image does, on a
# machine without a Docker engine: it builds the binary with the Dockerfile's
# command, lays out the image's files (certificates, time zones, /tmp, /data owned
# by 65532, the binary) in a directory, and runs grconnect there with chroot as user
# 65532 with the image's environment. It checks that the binary is static, that the
# server becomes ready, that the image's HEALTHCHECK command passes, that the
# database and the generated key land in /data with mode 0600 and the user's
# ownership, that a backup made beside the running server (docker exec) verifies,
# and that SIGTERM stops it cleanly. Needs root (chroot), go and curl.
#
# Usage: deploy/container-check.sh [port]   (default 18080)
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port=${1:-18080}
root=$(mktemp -d /tmp/grconnect-image.XXXXXX)
pid=""
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait "$pid" || true; fi
	rm -rf "$root"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [[ -f $root/log ]] && tail -20 "$root/log" >&2; exit 1; }

# The Dockerfile's build stage (its RUN lines, with the build arguments it documents).
version=v0.0.0-container-check
commit=$(git -C "$src" rev-parse HEAD 2>/dev/null || echo unknown)
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
(cd "$src" && CGO_ENABLED=0 go build -trimpath -buildvcs=false \
	-ldflags="-s -w -X github.com/grconnect/grconnect/services/infra/buildinfo.version=${version} -X github.com/grconnect/grconnect/services/infra/buildinfo.commit=${commit} -X github.com/grconnect/grconnect/services/infra/buildinfo.date=${date}" \
	-o "$root/out/grconnect" .)
"$root/out/grconnect" version | grep -q "grconnect ${version}" || fail "the binary does not know its version"
if ldd "$root/out/grconnect" >/dev/null 2>&1; then fail "the binary is dynamically linked"; fi
echo "static binary, $(du -h "$root/out/grconnect" | cut -f1), $("$root/out/grconnect" version | head -1)"

# The image: the final stage's COPY lines.
img=$root/image
mkdir -p "$img/etc/ssl/certs" "$img/usr/share" "$img/usr/local/bin" "$img/data" "$img/tmp"
cp /etc/ssl/certs/ca-certificates.crt "$img/etc/ssl/certs/"
cp -r /usr/share/zoneinfo "$img/usr/share/"
cp "$root/out/grconnect" "$img/usr/local/bin/grconnect"
chmod 1777 "$img/tmp"
chown 65532:65532 "$img/data" && chmod 0700 "$img/data"

# The image's ENV, USER and ENTRYPOINT; the port moved off 8080 to stay out of the way.
chroot=$(command -v chroot) || fail "no chroot"
run() {
	env -i GRCONNECT_ADDR=":$port" GRCONNECT_DATABASE=/data/grconnect.db GRCONNECT_LOG_FORMAT=json TMPDIR=/tmp \
		GRCONNECT_BASE_URL="http://localhost:$port" \
		"$chroot" --userspec=65532:65532 "$img" /usr/local/bin/grconnect "$@"
}
# exec: the process signalled below is grconnect itself, as PID 1 in a container.
(exec env -i GRCONNECT_ADDR=":$port" GRCONNECT_DATABASE=/data/grconnect.db GRCONNECT_LOG_FORMAT=json TMPDIR=/tmp \
	GRCONNECT_BASE_URL="http://localhost:$port" \
	"$chroot" --userspec=65532:65532 "$img" /usr/local/bin/grconnect serve) >"$root/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	if run healthcheck >/dev/null 2>&1; then break; fi
	kill -0 "$pid" 2>/dev/null || fail "serve exited"
	sleep 0.1
done
run healthcheck >/dev/null || fail "the HEALTHCHECK command does not pass"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz") == 200 ]] || fail "/readyz is not 200"
head -1 "$root/log" | grep -q '^{' || fail "the log is not JSON"
echo "ready; HEALTHCHECK passes; log lines are JSON"

for f in grconnect.db secret.key; do
	[[ $(stat -c '%u %a' "$img/data/$f") == "65532 600" ]] || fail "/data/$f is $(stat -c '%u %a' "$img/data/$f"), want 65532 600"
done
echo "/data/grconnect.db and /data/secret.key: owner 65532, mode 0600"

# docker exec grconnect grconnect backup --to /data/backup.db; grconnect verify --from …
run backup --to /data/backup.db >/dev/null || fail "backup beside the running server"
run verify --from /data/backup.db >/dev/null || fail "verify of the backup"
echo "backup beside the running server verifies"

kill -0 "$pid" 2>/dev/null || fail "serve exited early"
kill -TERM "$pid"
wait "$pid" || fail "serve did not stop cleanly on SIGTERM"
pid=""
grep -q '"msg":"stopped"' "$root/log" || fail "no clean stop in the log"
echo "SIGTERM: stopped cleanly"
echo "OK"
