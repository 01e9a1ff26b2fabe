#!/usr/bin/env bash
# tools/build-dashboard.sh — builds the Yew dashboard into dashboard-yew/dist (served by the runtime
# at `/`): release WASM (profile wasm-release: opt-level z, LTO, panic=abort), wasm-bindgen at the
# lockfile's version, wasm-opt -Oz, then index.html/style.css with a content hash for cache busting.
# Prints the bundle size (raw and gzip) and writes it to dist/size.json.
#
# Toolchain: the rustup wasm32 target when it is installed; otherwise the project's own
# tools/wasm-toolchain.sh (Debian rustc-web + -Zbuild-std; installs itself, idempotently).
#
# env: WASM_TC_PREFIX (default /opt/pitbox-wasm-toolchain), WASM_OPT=0 (skip wasm-opt),
#      DASHBOARD_DIST (default dashboard-yew/dist), CARGO_TARGET_DIR_WASM (default target/wasm)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PREFIX=${WASM_TC_PREFIX:-/opt/pitbox-wasm-toolchain}
DIST=${DASHBOARD_DIST:-$ROOT/dashboard-yew/dist}
TARGET_DIR=${CARGO_TARGET_DIR_WASM:-$ROOT/target/wasm}
log() { printf '[build-dashboard] %s\n' "$*" >&2; }
t0=$(date +%s)

LOCK_WBG=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
   && command -v wasm-bindgen >/dev/null && [ "$(wasm-bindgen --version | awk '{print $2}')" = "$LOCK_WBG" ]; then
  log "using rustup's wasm32 target"
  BUILD=(cargo build)
else
  # Only what the build needs; the browser for the tests comes with tools/test.sh.
  INSTALL_BROWSER=${INSTALL_BROWSER:-0} INSTALL_E2E=${INSTALL_E2E:-0} WASM_TC_QUIET=1 bash tools/wasm-toolchain.sh
  # shellcheck disable=SC1091
  . "$PREFIX/env.sh"
  BUILD=(cargo build)
fi
CLI_WBG=$(wasm-bindgen --version | awk '{print $2}')
[ "$CLI_WBG" = "$LOCK_WBG" ] || { log "wasm-bindgen CLI $CLI_WBG != lockfile $LOCK_WBG (rerun tools/wasm-toolchain.sh)"; exit 1; }

CARGO_TARGET_DIR=$TARGET_DIR "${BUILD[@]}" --locked -p pitbox-dashboard --profile wasm-release --target wasm32-unknown-unknown
t1=$(date +%s)
WASM=$TARGET_DIR/wasm32-unknown-unknown/wasm-release/pitbox-dashboard.wasm

TMP=$(mktemp -d "${DIST%/}.tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
wasm-bindgen --target web --no-typescript --out-dir "$TMP" --out-name pitbox_dashboard "$WASM"
if [ "${WASM_OPT:-1}" = 1 ] && command -v wasm-opt >/dev/null; then
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
    --enable-reference-types --enable-multivalue -o "$TMP/opt.wasm" "$TMP/pitbox_dashboard_bg.wasm"
  mv "$TMP/opt.wasm" "$TMP/pitbox_dashboard_bg.wasm"
else
  log "wasm-opt not used (WASM_OPT=0 or not installed)"
fi
VERSION=$(cat "$TMP/pitbox_dashboard_bg.wasm" "$TMP/pitbox_dashboard.js" dashboard-yew/style.css | sha256sum | cut -c1-12)
sed "s/__VERSION__/$VERSION/g" dashboard-yew/index.html > "$TMP/index.html"
sed "s/__VERSION__/$VERSION/g" dashboard-yew/boot.js > "$TMP/boot.js"
cp dashboard-yew/style.css "$TMP/style.css"

raw=$(stat -c %s "$TMP/pitbox_dashboard_bg.wasm")
gz=$(gzip -9 -c "$TMP/pitbox_dashboard_bg.wasm" | wc -c)
js=$(gzip -9 -c "$TMP/pitbox_dashboard.js" | wc -c)
printf '{"wasmBytes": %s, "wasmGzipBytes": %s, "jsGzipBytes": %s, "version": "%s"}\n' "$raw" "$gz" "$js" "$VERSION" > "$TMP/size.json"

rm -rf "$DIST.old"
[ -d "$DIST" ] && mv "$DIST" "$DIST.old"
mv "$TMP" "$DIST"
rm -rf "$DIST.old"
trap - EXIT
log "cargo build $((t1 - t0)) s, total $(( $(date +%s) - t0 )) s"
log "bundle: wasm $((raw / 1024)) KiB raw, $((gz / 1024)) KiB gzip (target < 600 KB); js $((js / 1024)) KiB gzip -> $DIST"
if [ "$gz" -ge 600000 ]; then log "FAIL: the gzip-compressed wasm is over 600 KB"; exit 1; fi
