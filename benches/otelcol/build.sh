#!/bin/bash
# Builds the Collector peer of the e2e bench (OTLP receiver + loadbalancing exporter, v0.161.0)
# with the Collector's builder into target/otelcol/otelcol-lb. Needs Go and its module proxy;
# about 2 minutes and 1 GB of module cache the first time.
#   benches/otelcol/build.sh
set -euo pipefail
cd "$(dirname "$(realpath "$0")")"
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
BIN=../../target/otelcol/bin
mkdir -p "$BIN"
[ -x "$BIN/builder" ] || GOBIN="$(realpath "$BIN")" go install go.opentelemetry.io/collector/cmd/builder@v0.161.0
"$BIN/builder" --config manifest.yaml
echo "built $(realpath ../../target/otelcol/otelcol-lb)"
