#!/usr/bin/env bash
# Builds the browser client into web/dist (a folder for any static host,
# and what `ppdnn serve --web` compiles in when it is there at build time):
# the WebAssembly client (crates/web) with its JavaScript glue, and the page.
# Needs: rustup target add wasm32-unknown-unknown; cargo install
# wasm-bindgen-cli --version 0.2.130 (the version crates/web pins).
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(grep -m1 '^wasm-bindgen = ' crates/web/Cargo.toml | sed 's/.*"=\([0-9.]*\)".*/\1/')
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
    echo "wasm-bindgen $want is needed (found: ${have:-none}): cargo install wasm-bindgen-cli --version $want" >&2
    exit 1
fi
cargo build --release --target wasm32-unknown-unknown -p ppdnn-web
rm -rf web/dist
mkdir -p web/dist/pkg
wasm-bindgen --target web --no-typescript --out-dir web/dist/pkg \
    target/wasm32-unknown-unknown/release/ppdnn_web.wasm
cp web/index.html web/app.js web/worker.js web/style.css web/dist/
echo "web/dist: $(du -sh web/dist | cut -f1) ($(stat -c %s web/dist/pkg/ppdnn_web_bg.wasm) bytes of wasm)"
