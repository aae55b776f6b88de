#!/usr/bin/env bash
# bench-cluster.sh: pelm bench against a three-node JetStream cluster (R3)
# served by 1, 2 and 3 `pelm serve` processes, on this machine.
#
# For each count it starts a fresh cluster, the processes, and one
# `pelm bench --nats-url` whose load is spread over --memories memories;
# then it reads each process's CPU counter (process_cpu_seconds_total) and
# request counter (pelm_requests_total) from its /metrics before and after
# the bench, and prints CPU-seconds per request, per process and in all.
# Every process, server and file is its own, under one temporary directory.
#
# Usage: tools/benchcluster/bench-cluster.sh [counts] [-- pelm bench flags]
#   counts defaults to "1 2 3"; the bench flags default to
#   --memories 32 --preload 3200 --rates 1000 --duration 60s --no-echo
# Environment: KEEP=1 keeps the directory (logs, bench-<n>.json); IDLE=<s>
# (default 10) is the idle window whose CPU is printed before each bench;
# PELM_ENV="K=V ..." is added to the processes' environment (GOMAXPROCS=1).
set -euo pipefail
cd "$(dirname "$0")/../.."

counts="1 2 3"
IDLE=${IDLE:-10}
if [ $# -gt 0 ] && [ "$1" != "--" ]; then counts=$1; shift; fi
[ "${1:-}" = "--" ] && shift
bench_flags=("$@")
if [ ${#bench_flags[@]} -eq 0 ]; then
  bench_flags=(--memories 32 --preload 3200 --rates 1000 --duration 60s --no-echo)
fi

dir=$(mktemp -d /tmp/pelm-bench-cluster.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-}" = 1 ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

echo "building pelm and nats-server into $dir" >&2
go build -o "$dir/pelm" ./cmd/pelm
go build -o "$dir/nats-server" github.com/nats-io/nats-server/v2

base=$((21000 + RANDOM % 5000))
urls="nats://127.0.0.1:$base,nats://127.0.0.1:$((base + 1)),nats://127.0.0.1:$((base + 2))"

start_cluster() { # $1: run directory
  local routes="nats://127.0.0.1:$((base + 10)), nats://127.0.0.1:$((base + 11)), nats://127.0.0.1:$((base + 12))"
  for i in 0 1 2; do
    cat >"$1/n$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:$((base + i))
http: 127.0.0.1:$((base + 20 + i))
jetstream { store_dir: "$1/n$i" }
cluster { name: pelm-bench, listen: 127.0.0.1:$((base + 10 + i)), routes: [$routes] }
EOF
    "$dir/nats-server" -c "$1/n$i.conf" >"$1/n$i.log" 2>&1 &
    pids+=($!)
  done
  for i in 0 1 2; do
    until curl -sf "http://127.0.0.1:$((base + 20 + i))/healthz" >/dev/null; do sleep 0.2; done
  done
}

owned_ok() { # $1: processes, then their metrics ports
  local n=$1 total=0 least=999 o
  shift
  for port in "$@"; do
    o=$(metric "$port" pelm_partitions_owned)
    o=${o%.*}
    total=$((total + o))
    [ "$o" -lt "$least" ] && least=$o
  done
  [ "$total" -eq 17 ] && [ "$least" -ge $((17 / n)) ]
}

metric() { # $1: metrics port, $2: metric name: the sum of its series
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.3f", s }'
}

printf '%-10s %-8s %12s %10s %14s\n' processes process requests cpu_s cpu_us_per_req
for n in $counts; do
  run="$dir/run$n"
  mkdir -p "$run"
  start_cluster "$run"
  procs=()
  for k in $(seq 1 "$n"); do
    port=$((base + 30 + k))
    env ${PELM_ENV:-} "$dir/pelm" serve --nats-url "$urls" --replicas 3 --http-listen "127.0.0.1:$port" \
      --log-level warn >"$run/pelm$k.log" 2>&1 &
    pids+=($!)
    procs+=("$port")
  done
  for port in "${procs[@]}"; do
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
  done
  # Every process serves its share before the load starts: the 17
  # partitions (16 and the catch-all) owned, at least 17/n each.
  until owned_ok "$n" "${procs[@]}"; do sleep 0.5; done
  sleep 2
  declare -A cpu0 req0 idle0
  for port in "${procs[@]}"; do idle0[$port]=$(metric "$port" process_cpu_seconds_total); done
  sleep "$IDLE"
  for port in "${procs[@]}"; do
    cpu0[$port]=$(metric "$port" process_cpu_seconds_total)
    req0[$port]=$(metric "$port" pelm_requests_total)
    printf 'idle: processes=%s process=%s %.1f ms CPU per s\n' "$n" "$((port - base - 30))" \
      "$(echo "(${cpu0[$port]} - ${idle0[$port]}) * 1000 / $IDLE" | bc -l)" >&2
  done
  "$dir/pelm" bench --nats-url "$urls" --json "$dir/bench-$n.json" --plot "" --quiet "${bench_flags[@]}" >"$dir/bench-$n.txt"
  total_req=0 total_cpu=0
  for port in "${procs[@]}"; do
    cpu=$(echo "$(metric "$port" process_cpu_seconds_total) - ${cpu0[$port]}" | bc -l)
    req=$(echo "$(metric "$port" pelm_requests_total) - ${req0[$port]}" | bc -l)
    per=$(echo "if ($req > 0) $cpu * 1000000 / $req else 0" | bc -l)
    printf '%-10s %-8s %12.0f %10.2f %14.1f\n' "$n" "$((port - base - 30))" "$req" "$cpu" "$per"
    total_req=$(echo "$total_req + $req" | bc -l)
    total_cpu=$(echo "$total_cpu + $cpu" | bc -l)
  done
  printf '%-10s %-8s %12.0f %10.2f %14.1f\n' "$n" all "$total_req" "$total_cpu" "$(echo "$total_cpu * 1000000 / $total_req" | bc -l)"
  cat "$dir/bench-$n.txt" >&2
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  unset cpu0 req0
done
