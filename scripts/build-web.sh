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
# The threaded client (web/dist/pkg-threads), used by pages that are
# cross-origin isolated: rayon's pool on Web Workers that share the
# module's memory. WebAssembly threads need the standard library rebuilt
# with atomics, which only a nightly toolchain with rust-src does.
# PPDNN_WEB_THREADS=auto (default: built when that toolchain is there),
# yes (required: fail without it), no.
threads=${PPDNN_WEB_THREADS:-auto}
case "$threads" in auto|yes|no) ;; *) echo "PPDNN_WEB_THREADS is auto, yes or no, not '$threads'" >&2; exit 1;; esac
if [ "$threads" != no ]; then
    if ! rustup run nightly rustc --print sysroot >/dev/null 2>&1 \
        || [ ! -d "$(rustup run nightly rustc --print sysroot)/lib/rustlib/src/rust/library" ] \
        || ! rustup target list --toolchain nightly --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
        msg="the threaded client needs: rustup toolchain install nightly --component rust-src --target wasm32-unknown-unknown"
        if [ "$threads" = yes ]; then echo "$msg" >&2; exit 1; fi
        echo "note: $msg (building the single-threaded client only)" >&2
        threads=no
    fi
fi

cargo build --release --target wasm32-unknown-unknown -p ppdnn-web
if [ "$threads" != no ]; then
    # RUSTFLAGS replaces .cargo/config.toml's flags for the target: repeat
    # its cpubits setting. The linker is told to make the memory shared and
    # imported (what the workers share) and to export the thread-local
    # storage symbols wasm-bindgen's thread start-up calls. Its own target
    # folder keeps the two builds' caches apart.
    link="-C link-arg=--shared-memory -C link-arg=--max-memory=4294967296 -C link-arg=--import-memory"
    for sym in __wasm_init_tls __tls_size __tls_align __tls_base; do link="$link -C link-arg=--export=$sym"; done
    RUSTFLAGS="--cfg cpubits=\"32\" -C target-feature=+atomics,+bulk-memory,+mutable-globals $link" \
    CARGO_TARGET_DIR=target/wasm-threads \
        cargo +nightly build --release --target wasm32-unknown-unknown -p ppdnn-web \
        --features threads -Z build-std=panic_abort,std
fi
rm -rf web/dist
mkdir -p web/dist/pkg
wasm-bindgen --target web --no-typescript --out-dir web/dist/pkg \
    target/wasm32-unknown-unknown/release/ppdnn_web.wasm
if [ "$threads" != no ]; then
    wasm-bindgen --target web --no-typescript --out-dir web/dist/pkg-threads \
        target/wasm-threads/wasm32-unknown-unknown/release/ppdnn_web.wasm
fi
cp web/index.html web/app.js web/worker.js web/style.css web/dist/
echo "web/dist: $(du -sh web/dist | cut -f1) ($(stat -c %s web/dist/pkg/ppdnn_web_bg.wasm) bytes of wasm;" \
    "threaded: $([ -f web/dist/pkg-threads/ppdnn_web_bg.wasm ] && stat -c %s web/dist/pkg-threads/ppdnn_web_bg.wasm || echo none))"
