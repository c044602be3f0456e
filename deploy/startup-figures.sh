#!/usr/bin/env bash
# startup-figures.sh measures what a new user notices first: how long a cold build
# takes, how big the binary is, how fast `grconnect serve` is ready on a fresh
# database, and how much memory it holds while idle.
#
# Usage: deploy/startup-figures.sh [source dir]   (default: the repository root)
# Needs go, curl and Linux /proc. A cold build needs only the module cache.
set -euo pipefail

src=${1:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
bin=/tmp/grconnect-fig
runs=${RUNS:-5}
idle_seconds=${IDLE_SECONDS:-3}

work=$(mktemp -d)
pid=""
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

now_ns() { date +%s%N; }

# median prints the median of its numeric arguments.
median() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# free_port prints a loopback port nothing listens on.
free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
}

# Cold build: an empty build cache, so the standard library and every dependency
# compile from source.
gocache="$work/gocache"
mkdir -p "$gocache"
echo "building $src (cold cache)..." >&2
start=$(now_ns)
(cd "$src" && GOCACHE="$gocache" CGO_ENABLED=0 go build -o "$bin" .)
end=$(now_ns)
build_s=$(awk -v ns=$((end - start)) 'BEGIN { printf "%.1f", ns / 1e9 }')
size_mib=$(awk -v b="$(stat -c %s "$bin")" 'BEGIN { printf "%.1f", b / 1048576 }')

ready_ms=()
rss_mb=()
for i in $(seq 1 "$runs"); do
	port=$(free_port)
	db="$work/run$i/data/grconnect.db"
	log="$work/run$i.log"
	start=$(now_ns)
	GRCONNECT_DATABASE="$db" "$bin" serve --addr "127.0.0.1:$port" >"$log" 2>&1 &
	pid=$!
	until curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$port/readyz"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "run $i: grconnect exited before it was ready:" >&2
			cat "$log" >&2
			exit 1
		fi
		if (($(now_ns) - start > 30000000000)); then
			echo "run $i: /readyz not 200 within 30 s" >&2
			cat "$log" >&2
			exit 1
		fi
	done
	end=$(now_ns)
	ready_ms+=("$(((end - start) / 1000000))")

	sleep "$idle_seconds"
	rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	rss_mb+=("$(awk -v kb="$rss_kb" 'BEGIN { printf "%.1f", kb / 1024 }')")

	kill "$pid"
	wait "$pid" || true
	pid=""
	echo "run $i: ready in ${ready_ms[-1]} ms, idle RSS ${rss_mb[-1]} MB" >&2
done

echo "cold build:        ${build_s} s (CGO_ENABLED=0, empty GOCACHE)"
echo "binary size:       ${size_mib} MiB ($bin)"
echo "exec to /readyz:   $(median "${ready_ms[@]}") ms median of $runs (fresh database each; runs: ${ready_ms[*]})"
echo "idle RSS:          $(median "${rss_mb[@]}") MB median after ${idle_seconds} s (runs: ${rss_mb[*]})"
