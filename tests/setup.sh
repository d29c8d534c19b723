#!/usr/bin/env bash
# Installs what the tests need besides Rust, on Debian as root; every step is skipped when its
# tool is already there. `.ci/run` and the README's test command both start here.
set -euo pipefail
cd "$(dirname "$0")/.."

# The status page test drives headless Chromium (Debian's package); install it if missing.
command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The conformance test's real clients: the OpenTelemetry Python SDK exporters, every package
# pinned (tests/python/requirements.txt), NGINX in front of two gateways (the example in
# docs/operations.md) and telemetrygen. tests/conformance.rs fails without them.
command -v nginx >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }
python3 -m venv .ci/.venv
.ci/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
# The collector project's load generator, built from its Go module (pinned).
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
[ -x .ci/bin/telemetrygen ] || GOBIN="$PWD/.ci/bin" go install \
    github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v0.161.0
