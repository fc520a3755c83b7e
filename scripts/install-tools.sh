#!/usr/bin/env bash
# Installs every tool the build and tests need, once per machine, into a cache outside the repo.
# Each step checks for the exact version first, so a second run costs seconds.
# Usage: scripts/install-tools.sh [build|test|bench]   (test adds Chromium and nginx; bench adds nginx, aria2c, time)
set -euo pipefail

TOOLS="${LOCALBRAIN_TOOLS:-$HOME/.cache/localbrain/tools}"
CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION=0.2.129
BINARYEN_VERSION=132.0.0
mode="${1:-build}"
mkdir -p "$TOOLS/bin"
log() { printf '[install-tools] %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo clippy --version >/dev/null 2>&1; then
  log "adding rust component clippy (make test runs it)"
  rustup component add clippy
fi

if ! "$TOOLS/bin/cargo-leptos" --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
  log "building cargo-leptos $CARGO_LEPTOS_VERSION (first time only, ~15 min on 2 cores)"
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --root "$TOOLS"
fi

if ! "$TOOLS/bin/wasm-bindgen" --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  log "building wasm-bindgen-cli $WASM_BINDGEN_VERSION (first time only, ~2-3 min)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --locked --root "$TOOLS"
fi

# wasm-opt from npm binaryen: Debian's binaryen (v108) builds a wasm that never hydrates.
if ! "$TOOLS/bin/wasm-opt" --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
  log "installing binaryen $BINARYEN_VERSION (wasm-opt) from npm"
  npm install --silent --prefix "$TOOLS/binaryen" "binaryen@$BINARYEN_VERSION"
  ln -sf "$TOOLS/binaryen/node_modules/.bin/wasm-opt" "$TOOLS/bin/wasm-opt"
fi

if [ "$mode" = test ] || [ "$mode" = bench ]; then
  missing=()
  [ "$mode" = test ] && { command -v chromium >/dev/null || missing+=(chromium); }
  command -v nginx >/dev/null || missing+=(nginx)
  [ "$mode" = bench ] && { command -v aria2c >/dev/null || missing+=(aria2); command -v wrk >/dev/null || missing+=(wrk); [ -x /usr/bin/time ] || missing+=(time); command -v curl >/dev/null || missing+=(curl); }
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
log "tools ready in $TOOLS/bin"
