#!/bin/bash
# A/B of gateway binaries, interleaved: each round runs every binary in turn on CPU 0 while
# three sinks and loadgen (from the first binary) run on CPU 1, and prints loadgen's spans/s and
# p99, the gateway's CPU per span (/proc/PID/stat, in clock ticks) and the reschedule IPIs CPU 0
# took per request (RES in /proc/interrupts; assumes loadgen's 100-span requests). Use it for
# before/after figures.
#   benches/ab.sh ROUNDS SECS "LOADGEN FLAGS" OLD_BINARY NEW_BINARY [...]
#   e.g. benches/ab.sh 4 6 "--compression gzip --rate 1000000" /tmp/gw-old target/release/otlp-gateway
# Full load when FLAGS has no --rate. Copy a binary aside before rebuilding the other.
set -u
[ $# -ge 4 ] || { sed -n 2,7p "$0" >&2; exit 64; }
ROUNDS=$1; SECS=$2; FLAGS=$3; shift 3
BINS=(); for b in "$@"; do BINS+=("$(realpath "$b")"); done
. "$(dirname "$(realpath "$0")")/gateway-yaml.sh"
D=$(mktemp -d); cd "$D" || exit 1
gateway_yaml 31
HZ=$(getconf CLK_TCK)
taskset -c 1 "${BINS[0]}" sink --listen 127.0.0.1:31401,127.0.0.1:31402,127.0.0.1:31403 >/dev/null 2>&1 & S=$!
for r in $(seq "$ROUNDS"); do for B in "${BINS[@]}"; do
  "$B" run --config gw.yaml --cores 0 2>gw.log & P=$!; sleep 1.2
  T0=$(awk '{print $14+$15}' /proc/$P/stat); R0=$(awk '/RES:/ {print $2}' /proc/interrupts)
  # shellcheck disable=SC2086 # FLAGS is a list of loadgen flags
  taskset -c 1 "${BINS[0]}" loadgen --target 127.0.0.1:31317 --duration "$SECS" --cpu 1 $FLAGS >lg.log 2>/dev/null
  T1=$(awk '{print $14+$15}' /proc/$P/stat); R1=$(awk '/RES:/ {print $2}' /proc/interrupts)
  kill $P; wait $P 2>/dev/null
  awk -v r="$r" -v b="$B" -v ticks=$((T1 - T0)) -v res=$((R1 - R0)) -v secs="$SECS" -v hz="$HZ" '
    /^spans\/s/ { sp = $2 } /^latency/ { p99 = $7 }
    END { if (sp == 0) { printf "round %s  %s  loadgen printed no spans/s\n", r, b; exit }
      printf "round %s  %s  spans/s %d  CPU µs per span %.3f  IPIs on CPU 0 per request %.2f  p99 %s\n",
        r, b, sp, ticks * 1e6 / hz / (sp * secs), res * 100 / (sp * secs), p99 }' lg.log
done; done
kill -9 $S; wait 2>/dev/null; cd / && rm -rf "$D"
