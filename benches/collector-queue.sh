#!/bin/bash
# The Collector's sending queue by hand: otlp-gateway, the Collector with its queue off (as the
# e2e bench runs it) and with its default queue, at full load, by spans per trace. Each proxy
# alone on CPU 0; 3 sinks and loadgen on CPU 1; closed loop, 4 connections × 16 streams.
#   benches/collector-queue.sh [gateway binary, default target/release/otlp-gateway]
#   ROUNDS=2 SECS=5 SPT="1 10" (defaults); the Collector from benches/otelcol/build.sh
# docs/benchmarks.md, "The Collector with its default sending queue", has its figures.
set -u
ROOT=$(dirname "$(dirname "$(realpath "$0")")")
B=$(realpath "${1:-target/release/otlp-gateway}"); C=$ROOT/target/otelcol/otelcol-lb
ROUNDS=${ROUNDS:-2}; SECS=${SECS:-5}; SPT=${SPT:-1 10}
[ -x "$C" ] || { echo "build the Collector first: benches/otelcol/build.sh" >&2; exit 1; }
. "$ROOT/benches/gateway-yaml.sh"
D=$(mktemp -d); cd "$D" || exit 1
TELEMETRY='  telemetry:
    metrics:
      level: none
    logs:
      level: warn'
gateway_yaml 30 "$TELEMETRY"; mv gw.yaml queue.yaml
sed 's/^        compression: none$/&\n        sending_queue:\n          enabled: false/' queue.yaml > noqueue.yaml
gateway_yaml 30
HZ=$(getconf CLK_TCK)
taskset -c 1 "$B" sink --listen 127.0.0.1:30401,127.0.0.1:30402,127.0.0.1:30403 >/dev/null 2>&1 & S=$!
start() {
  case $1 in
    gateway) "$B" run --config gw.yaml --cores 0 2>proxy.log & ;;
    collector-queue-off) GOMAXPROCS=1 taskset -c 0 "$C" --config noqueue.yaml >proxy.log 2>&1 & ;;
    collector-default-queue) GOMAXPROCS=1 taskset -c 0 "$C" --config queue.yaml >proxy.log 2>&1 & ;;
  esac
  P=$!
}
for r in $(seq "$ROUNDS"); do for spt in $SPT; do
  for who in gateway collector-queue-off collector-default-queue; do
    start $who; sleep 1.5
    T0=$(awk '{print $14+$15}' /proc/$P/stat)
    taskset -c 1 "$B" loadgen --target 127.0.0.1:30317 --duration "$SECS" --cpu 1 \
      --spans-per-trace "$spt" >lg.log 2>/dev/null
    T1=$(awk '{print $14+$15}' /proc/$P/stat); HWM=$(awk '/VmHWM/{print $2}' /proc/$P/status)
    kill $P; wait $P 2>/dev/null
    awk -v r="$r" -v spt="$spt" -v who="$who" -v ticks=$((T1 - T0)) -v hwm="$HWM" -v hz="$HZ" '
      /^spans\/s/ { rate = $2 } /^spans ok/ { ok = $3; refused = $9 }
      END { printf "round %s  spans/trace %-3s %-24s %9d spans/s  %6d refused  %6.2f µs/span  VmHWM %d MiB\n",
            r, spt, who, rate, refused, ticks * 1e6 / hz / (ok + 1), hwm / 1024 }' lg.log
  done
done; done
kill -9 $S; wait 2>/dev/null; cd / && rm -rf "$D"
