#!/bin/sh
# Measures a real restart: seeds a data directory of N instances (4 tags, 4
# metadata pairs each; a Raft snapshot plus a log tail of 1,000 entries),
# starts `muster serve` on a fresh copy of it, and reports the seconds until
# /v1/health answers and the resident memory (VmRSS) once startup settled,
# minus that of the same binary on an empty data directory.
#
#   scripts/measure-restart.sh [instances] [work-dir] [settle-seconds]
#
# Ports 17410 (HTTP) and 17411 (Raft) must be free (or set MUSTER_HTTP_ADDR and
# MUSTER_RAFT_ADDR; the seed records the Raft address). Needs curl and bc.
set -eu
N=${1:-1000000}
W=${2:-/tmp/muster-restart}
SETTLE=${3:-15}
HTTP=${MUSTER_HTTP_ADDR:-127.0.0.1:17410}
RAFT=${MUSTER_RAFT_ADDR:-127.0.0.1:17411}
mkdir -p "$W"
(cd "$(dirname "$0")/.." && go build -o "$W/muster" ./cmd/muster)
# The seed records the Raft address, so it is part of the seed's name. A seed
# is written under a temporary name and renamed once complete, so an
# interrupted one is never reused.
SEED="$W/seed-$N-$(echo "$RAFT" | tr -c 'A-Za-z0-9\n' _)"
if [ ! -d "$SEED" ]; then
	rm -rf "$SEED.partial"
	"$W/muster" seed-data-dir --data-dir "$SEED.partial" --instances "$N" --raft-addr "$RAFT"
	mv "$SEED.partial" "$SEED"
fi

# run DIR: starts the server on DIR, prints "seconds-to-health rss-kB".
run() {
	start=$(date +%s.%N)
	"$W/muster" serve --data-dir "$1" --http-addr "$HTTP" --raft-addr "$RAFT" --log-level warn &
	pid=$!
	trap 'kill "$pid" 2>/dev/null' EXIT INT TERM # run is a subshell: this is its own trap
	until curl -sf "http://$HTTP/v1/health" >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || { echo "server exited" >&2; exit 1; }
		sleep 0.02
	done
	ready=$(date +%s.%N)
	sleep "$SETTLE"
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
	kill "$pid"
	wait "$pid" || true
	trap - EXIT INT TERM
	echo "$(echo "$ready - $start" | bc) $rss $hwm"
}

rm -rf "$W/empty" "$W/run"
mkdir -p "$W/empty"
sync
set -- $(run "$W/empty")
empty_s=$1 empty_rss=$2
cp -a "$SEED" "$W/run"
sync # the copy's writeback would otherwise slow the server's first fsync
set -- $(run "$W/run")
full_s=$1 full_rss=$2 full_hwm=$3
echo "empty data dir: ready in ${empty_s} s, VmRSS ${empty_rss} kB"
echo "$N instances: ready in ${full_s} s, VmRSS ${full_rss} kB (peak ${full_hwm} kB)"
echo "RSS per instance: $(( (full_rss - empty_rss) * 1024 / N )) B"
