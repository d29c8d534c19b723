#!/usr/bin/env bash
# Gateway process memory under faults, on the release binary (the fault tests in tests/faults.rs
# count loss and duplicates in-process; this measures the gateway alone). Sinks run as separate
# processes so that one can be killed, restarted or frozen. The gateway gets CPU 0, load and
# sinks CPU 1. Prints one markdown row per phase: peak gateway RSS (sampled every 50 ms).
#
#   benches/faults.sh [seconds per phase, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
BIN=${BIN:-target/release/otlp-gateway}
WORK=$(mktemp -d)
PIDS=()
# SIGKILL: a throttled sink (`--max-rate`) holds its backlog of answers for minutes.
cleanup() { for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

[ -x "$BIN" ] || cargo build --release --quiet --bin otlp-gateway
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORTS=($(free_port) $(free_port) $(free_port)); GW=$(free_port)
SINK_PIDS=(0 0 0)
start_sink() { # index [max rate]
  taskset -c 1 "$BIN" sink --listen "127.0.0.1:${PORTS[$1]}" ${2:+--max-rate "$2"} >/dev/null 2>&1 &
  SINK_PIDS[$1]=$!; PIDS+=($!)
}
stop_sinks() { for p in "${SINK_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }

cat >"$WORK/gw.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$GW
exporters:
  loadbalancing:
    protocol:
      otlp:
        compression: none
        timeout: 20s
        tls:
          insecure: true
    resolver:
      static:
        hostnames: [127.0.0.1:${PORTS[0]}, 127.0.0.1:${PORTS[1]}, 127.0.0.1:${PORTS[2]}]
service:
  runtime:
    request_memory_mib: ${REQUEST_MEMORY_MIB:-64}
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [loadbalancing]
YAML

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# Samples the gateway's RSS until $WORK/stop exists; leaves the peak in $WORK/peak.
sample() { local peak=0 r; rm -f "$WORK/stop"; while [ ! -e "$WORK/stop" ]; do r=$(rss_kib "$GW_PID"); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.05; done; echo "$peak" >"$WORK/peak"; }
loadgen() { taskset -c 1 "$BIN" loadgen --target "127.0.0.1:$GW" --duration "$SECS" --cpu 1 "$@" 2>/dev/null; }
row() { # name, loadgen output file
  touch "$WORK/stop"; wait "$SAMPLER"
  local ok failed errs
  ok=$(awk '/^spans ok:/ {print $3}' "$2"); failed=$(awk '/^spans ok:/ {print $9}' "$2")
  errs=$( (grep -h "^error" "$2" || true) | cut -c1-60 | tr '\n' ';')
  echo "| $1 | ${ok:-?} | ${failed:-0} ${errs:+($errs)} | $(( $(cat "$WORK/peak") / 1024 )) MiB |"
}
phase() { sample & SAMPLER=$!; }

for i in 0 1 2; do start_sink $i; done
"$BIN" run --config "$WORK/gw.yaml" --cores 0 >"$WORK/gw.log" 2>&1 &
GW_PID=$!; PIDS+=($GW_PID)
sleep 1
echo "| phase | spans acknowledged | failed requests | gateway peak RSS |"
echo "|---|---|---|---|"
phase; loadgen --rate 100000 >"$WORK/base.txt"; row "steady 100k spans/s" "$WORK/base.txt"

phase; loadgen --rate 100000 >"$WORK/kill.txt" &
L=$!; sleep $((SECS / 3)); kill "${SINK_PIDS[1]}"; sleep 2; start_sink 1; wait $L
row "one of 3 sinks killed for 2 s, restarted" "$WORK/kill.txt"

phase; loadgen --rate 100000 >"$WORK/hang.txt" &
L=$!; sleep $((SECS / 3)); kill -STOP "${SINK_PIDS[2]}"; sleep 3; kill -CONT "${SINK_PIDS[2]}"; wait $L
row "one of 3 sinks frozen (SIGSTOP) 3 s" "$WORK/hang.txt"

# 10x overload: sinks of fixed capacity (20k spans/s each), offered ten times their sum.
stop_sinks; for i in 0 1 2; do start_sink $i 20000; done; sleep 0.5
phase; loadgen --rate 600000 --connections 8 --streams 64 --spans-per-request 1000 >"$WORK/over.txt"
row "10× overload (3 × 20k spans/s offered 600k, 350 KB requests, request_memory_mib ${REQUEST_MEMORY_MIB:-64})" "$WORK/over.txt"

kill -TERM "$GW_PID"; wait "$GW_PID" || true
grep -E "acknowledged|shutdown" "$WORK/gw.log" | tail -3 || true
