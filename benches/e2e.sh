#!/usr/bin/env bash
# End-to-end benchmark on one machine: loadgen → {nothing | otlp-gateway | nginx} → 3 sinks.
# The proxy under test gets CPU 0; loadgen and sinks share CPU 1. Prints a markdown table.
#
#   benches/e2e.sh [seconds per run, default 10] [fixed rate in spans/s, default 200000]
#
# Needs: a release build (it builds one), nginx (`apt-get install nginx-light`).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
RATE=${2:-200000}
BIN=target/release/otlp-gateway
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --release --quiet
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
S1=$(free_port); S2=$(free_port); S3=$(free_port); GW=$(free_port); NG=$(free_port)

taskset -c 1 "$BIN" sink --listen "127.0.0.1:$S1,127.0.0.1:$S2,127.0.0.1:$S3" --cpu 1 >"$WORK/sink.log" 2>&1 &
PIDS+=($!)

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
        tls:
          insecure: true
    resolver:
      static:
        hostnames: [127.0.0.1:$S1, 127.0.0.1:$S2, 127.0.0.1:$S3]
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [loadbalancing]
YAML
"$BIN" run --config "$WORK/gw.yaml" --cores 0 >"$WORK/gw.log" 2>&1 &
GW_PID=$!; PIDS+=($GW_PID)

# nginx as in the Collector's gateway documentation (gRPC upstream of the collectors), one
# worker pinned to CPU 0. NGINX_KEEPALIVE=1 adds upstream keepalive (not in the docs' example).
KEEPALIVE=""; [ "${NGINX_KEEPALIVE:-0}" = 1 ] && KEEPALIVE="keepalive 64;"
cat >"$WORK/nginx.conf" <<NGINX
worker_processes 1;
worker_cpu_affinity 01;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_max_body_size 64m;
  upstream collector4317 {
    server 127.0.0.1:$S1;
    server 127.0.0.1:$S2;
    server 127.0.0.1:$S3;
    $KEEPALIVE
  }
  server {
    listen 127.0.0.1:$NG http2;
    location / { grpc_pass grpc://collector4317; }
  }
}
NGINX
nginx -c "$WORK/nginx.conf" &
PIDS+=($!)
sleep 1
NGINX_WORKER=$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -1)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# All threads of a process (the gateway's cores are threads).
proc_ticks() { local t=0; for f in /proc/$1/task/*/stat; do t=$((t + $(awk '{print $14 + $15}' "$f"))); done; echo $t; }
HZ=$(getconf CLK_TCK)

loadgen() { taskset -c 1 "$BIN" loadgen --target "127.0.0.1:$1" --duration "$SECS" --cpu 1 "${@:2}" 2>/dev/null; }
field() { awk -v k="$1" '$1==k {print $2}'; }

run_full() { loadgen "$1" --connections 4 --streams 16 | tee "$WORK/full-$1.txt" | field "spans/s:"; }
run_fixed() { # port pid → µs of proxy CPU per span
  local before after spans
  before=$(proc_ticks "$2")
  spans=$(loadgen "$1" --rate "$RATE" --connections 4 --streams 16 | tee "$WORK/fixed-$1.txt" | awk '/^spans ok:/ {print $3}')
  after=$(proc_ticks "$2")
  python3 -c "print(f'{($after-$before)/$HZ/$spans*1e6:.3f}')"
}
p99() { awk '/^latency/ {print $7}' "$1"; }

echo "warming up" >&2
loadgen "$GW" --connections 4 --streams 16 >/dev/null || true

DIRECT=$(run_full "$S1")
GATEWAY=$(run_full "$GW")
NGINX=$(run_full "$NG")
GW_CPU=$(run_fixed "$GW" "$GW_PID")
NG_CPU=$(run_fixed "$NG" "$NGINX_WORKER")

cat <<TABLE
| path | spans/s at full load | vs direct | proxy CPU µs/span at $RATE spans/s | p99 at full load |
|---|---|---|---|---|
| loadgen → sink (direct) | $DIRECT | 1.00 | – | $(p99 "$WORK/full-$S1.txt") |
| loadgen → otlp-gateway (1 core) → 3 sinks | $GATEWAY | $(python3 -c "print(f'{$GATEWAY/$DIRECT:.2f}')") | $GW_CPU | $(p99 "$WORK/full-$GW.txt") |
| loadgen → nginx gRPC proxy (1 worker) → 3 sinks | $NGINX | $(python3 -c "print(f'{$NGINX/$DIRECT:.2f}')") | $NG_CPU | $(p99 "$WORK/full-$NG.txt") |
TABLE
echo
echo "peak RSS: gateway $(awk '/VmHWM/ {print $2, $3}' /proc/$GW_PID/status), nginx worker $(awk '/VmHWM/ {print $2, $3}' /proc/$NGINX_WORKER/status)"
echo "gateway CPU per span / nginx CPU per span: $(python3 -c "print(f'{$GW_CPU/$NG_CPU:.2f}')")"
grep -h "^error" "$WORK"/full-*.txt "$WORK"/fixed-*.txt | sort | uniq -c | head -5 || true
