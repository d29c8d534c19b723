#!/usr/bin/env bash
# Builds the .deb and the .rpm from one release build of both binaries.
#   packaging/build.sh            → $CARGO_TARGET_DIR (default target)/debian/*.deb
#                                   and .../generate-rpm/*.rpm
# Needs: cargo install --locked cargo-deb cargo-generate-rpm
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}

for tool in cargo-deb cargo-generate-rpm; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool missing: cargo install --locked $tool" >&2; exit 1; }
done

cargo build --release --locked --bins

# The release profile keeps line tables for profiling; the packages ship stripped binaries
# (15 MB → 3 MB). cargo-deb strips its own copies.
cargo deb --no-build --locked --strip

# cargo-generate-rpm packages files as they are: give it stripped copies in a staging target
# dir (its `target/release/...` sources resolve under --target-dir), keeping the originals'
# debug info for profiling.
stage="$target/rpm-stage"
mkdir -p "$stage/release"
for bin in otlp-gateway otlp-gateway-tune; do
    strip -o "$stage/release/$bin" "$target/release/$bin"
done
mkdir -p "$target/generate-rpm"
cargo generate-rpm --target-dir "$stage" -o "$target/generate-rpm/"

ls -l "$target"/debian/*.deb "$target"/generate-rpm/*.rpm
