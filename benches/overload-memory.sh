#!/bin/bash
# A core's peak memory under overload (docs/faults.md, "Memory bound per core"): three sinks
# holding every request DELAY_MS on CPU 1, the gateway alone on CPU 0, loadgen with
# CONNECTIONS × STREAMS requests in flight for DURATION seconds; prints loadgen's summary and
# the gateway's VmHWM.
#   benches/overload-memory.sh [gateway binary, default target/release/otlp-gateway]
#   CONNECTIONS=32 STREAMS=64 DELAY_MS=200 DURATION=10 (defaults); REQUEST_MEMORY_MIB if set.
# With DELAY_MS=0 and CONNECTIONS=1 it measures throughput instead (spans/s).
set -u
B=$(realpath "${1:-target/release/otlp-gateway}")
. "$(dirname "$(realpath "$0")")/gateway-yaml.sh"
D=$(mktemp -d); cd "$D" || exit 1
MEMORY=${REQUEST_MEMORY_MIB:+  runtime:
    request_memory_mib: $REQUEST_MEMORY_MIB}
gateway_yaml 24 "$MEMORY"
taskset -c 1 "$B" sink --listen 127.0.0.1:24401,127.0.0.1:24402,127.0.0.1:24403 --delay-ms "${DELAY_MS:-200}" >/dev/null 2>&1 & S=$!
sleep 0.3; "$B" run --config gw.yaml --cores 0 2>gw.log & G=$!; sleep 1
taskset -c 1 "$B" loadgen --target 127.0.0.1:24317 --duration "${DURATION:-10}" \
  --connections "${CONNECTIONS:-32}" --streams "${STREAMS:-64}" --cpu 1 2>/dev/null | sed -n 1,3p
grep VmHWM /proc/$G/status; kill $G; kill -9 $S; wait 2>/dev/null; cd / && rm -rf "$D"
