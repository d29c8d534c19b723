#!/bin/bash
# Where the gateway's CPU goes at a fixed rate, counted per request: `perf stat` of the gateway
# (task-clock, context switches, page faults and the syscalls of the request path) while three sinks and
# loadgen run on CPU 1 and the gateway alone on CPU 0. Needs perf and tracepoint access (root).
#   benches/syscalls.sh [gateway binary, default target/release/otlp-gateway]
#   RATE=200000 SECS=5 (defaults; 100-span requests, so RATE/100 requests a second)
# docs/benchmarks.md, "Where the CPU goes at 200k spans/s", has its figures.
set -u
B=$(realpath "${1:-target/release/otlp-gateway}")
RATE=${RATE:-200000}; SECS=${SECS:-5}
. "$(dirname "$(realpath "$0")")/gateway-yaml.sh"
D=$(mktemp -d); cd "$D" || exit 1
gateway_yaml 23
taskset -c 1 "$B" sink --listen 127.0.0.1:23401,127.0.0.1:23402,127.0.0.1:23403 >/dev/null 2>&1 & S=$!
sleep 0.3; "$B" run --config gw.yaml --cores 0 2>gw.log & G=$!; sleep 1
taskset -c 1 "$B" loadgen --target 127.0.0.1:23317 --duration $((SECS + 2)) --cpu 1 --rate "$RATE" \
  >lg.log 2>/dev/null & L=$!
sleep 1
EVENTS=task-clock,context-switches,page-faults
for s in io_uring_enter membarrier sendmsg recvfrom; do EVENTS=$EVENTS,syscalls:sys_enter_$s; done
perf stat -x, -e "$EVENTS" -p $G -- sleep "$SECS" 2>stat.csv
wait $L; kill $G; kill -9 $S; wait 2>/dev/null
REQUESTS=$((RATE * SECS / 100))
awk -F, -v r=$REQUESTS -v spans=$((RATE * SECS)) '
  $3 == "task-clock" { printf "gateway CPU: %.1f ms, %.3f µs per span\n", $1, $1 * 1000 / spans; next }
  { printf "%-36s %10d  %6.2f per request\n", $3, $1, $1 / r }' stat.csv
sed -n 1,3p lg.log; cd / && rm -rf "$D"
