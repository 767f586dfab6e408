#!/usr/bin/env bash
# compare-etcd.sh: muster bench vs the same scenarios against etcd.
#
# Installs Debian's etcd-server if etcd is missing (needs root for apt-get),
# starts etcd and `muster serve` on loopback ports, each in its own process
# and temporary data directory (both durable: every write fsync'd), runs
# register, heartbeat and lookup on both sides with a load generator in its
# own process (`muster bench --addr`, `etcd-bench`), prints both and the
# ratios, and cleans up.
#
#   scripts/compare-etcd.sh                      # 64 clients, 1,000 instances, 10 s each
#   CONCURRENCY=32 INSTANCES=5000 DURATION=20s scripts/compare-etcd.sh
#   RUNS=3 scripts/compare-etcd.sh               # each scenario 3 times, muster then etcd each time;
#                                                # the ratios are the medians of the runs
set -euo pipefail

CONCURRENCY=${CONCURRENCY:-64}
INSTANCES=${INSTANCES:-1000}
DURATION=${DURATION:-10s}
# Register runs last: the instances and leases it makes expire 120 s later,
# on both sides, and would otherwise do so during the other scenarios.
SCENARIOS=${SCENARIOS:-"heartbeat lookup register"}
RUNS=${RUNS:-1}
ETCD_PORT=${ETCD_PORT:-23790}
MUSTER_PORT=${MUSTER_PORT:-27410}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
etcd_pid=
muster_pid=
cleanup() {
	for pid in $etcd_pid $muster_pid; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

if ! command -v etcd >/dev/null; then
	echo "installing etcd-server (apt-get)..." >&2
	sudo=; [[ $(id -u) -ne 0 ]] && sudo=sudo
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >/dev/null
fi
# Debian's package starts a system etcd on 2379: ours uses its own ports.

echo "building muster and etcd-bench..." >&2
(cd "$root" && go build -o "$work/muster" ./cmd/muster)
(cd "$root/bench" && go build -o "$work/etcd-bench" .)

etcd --name bench --data-dir "$work/etcd" \
	--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
	--initial-cluster "bench=http://127.0.0.1:$((ETCD_PORT + 1))" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 100); do
	if curl -fsS "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1; then break; fi
	sleep 0.1
done
curl -fsS "http://127.0.0.1:$ETCD_PORT/health" >/dev/null || { cat "$work/etcd.log" >&2; exit 1; }
"$work/muster" serve --data-dir "$work/muster-data" --http-addr "127.0.0.1:$MUSTER_PORT" \
	--raft-addr "127.0.0.1:$((MUSTER_PORT + 1))" --log-level warn >"$work/muster.log" 2>&1 &
muster_pid=$!
for _ in $(seq 100); do
	if curl -fsS "http://127.0.0.1:$MUSTER_PORT/v1/health" >/dev/null 2>&1; then break; fi
	sleep 0.1
done
curl -fsS "http://127.0.0.1:$MUSTER_PORT/v1/health" >/dev/null || { cat "$work/muster.log" >&2; exit 1; }
echo "etcd $(etcd --version | head -1 | awk '{print $3}') on 127.0.0.1:$ETCD_PORT, muster on 127.0.0.1:$MUSTER_PORT; $CONCURRENCY clients, $INSTANCES instances, $DURATION per scenario" >&2

field() { python3 -c 'import json,sys; r=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(r[sys.argv[1]])' "$1"; }

printf '%-10s %-4s %-7s %12s %9s %9s %9s %7s\n' SCENARIO RUN SIDE OPS/S P50_MS P99_MS MAX_MS ERRORS
declare -A ops p99
for s in $SCENARIOS; do
	for r in $(seq "$RUNS"); do
		m=$("$work/muster" bench -o json --addr "http://127.0.0.1:$MUSTER_PORT" --namespace "cmp-$s-$r" --scenario "$s" --concurrency "$CONCURRENCY" --instances "$INSTANCES" --duration "$DURATION")
		e=$("$work/etcd-bench" -o json -endpoints "127.0.0.1:$ETCD_PORT" -scenario "$s" -concurrency "$CONCURRENCY" -instances "$INSTANCES" -duration "$DURATION")
		for side in muster etcd; do
			j=$m; [[ $side == etcd ]] && j=$e
			printf '%-10s %-4s %-7s %12.0f %9.2f %9.2f %9.2f %7d\n' "$s" "$r" "$side" \
				"$(field ops_per_s <<<"$j")" "$(field p50_ms <<<"$j")" "$(field p99_ms <<<"$j")" "$(field max_ms <<<"$j")" "$(field errors <<<"$j")"
		done
		ops[$s]+="$(python3 -c "print($(field ops_per_s <<<"$m") / $(field ops_per_s <<<"$e"))") "
		p99[$s]+="$(python3 -c "print($(field p99_ms <<<"$e") / max($(field p99_ms <<<"$m"), 1e-9))") "
	done
done
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
echo
printf '%-10s %16s %16s   %s\n' SCENARIO 'OPS/S muster/etcd' 'P99 etcd/muster' '(medians; each run)'
for s in $SCENARIOS; do
	# shellcheck disable=SC2086 # the lists are space-separated on purpose
	printf '%-10s %15.2fx %15.2fx   %s\n' "$s" "$(median ${ops[$s]})" "$(median ${p99[$s]})" \
		"$(python3 -c 'import sys; print(" ".join("%.2fx" % float(x) for x in sys.argv[1:]))' ${ops[$s]})"
done
