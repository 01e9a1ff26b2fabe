#!/usr/bin/env bash
# tools/wasm-check.sh CRATE_PACKAGE_NAME [extra cargo args...]
# `cargo check` one workspace package for wasm32-unknown-unknown with the project's toolchain:
# runs tools/wasm-toolchain.sh in minimal mode (idempotent: seconds when already installed), then
#   cargo check -p CRATE --target wasm32-unknown-unknown [extra args]
# with $WASM_TC_PREFIX/env.sh (rustc-web 1.96 + -Zbuild-std). Exits non-zero on failure.
#
# env: WASM_TC_PREFIX (default /opt/pitbox-wasm-toolchain), CARGO_TARGET_DIR (default <repo>/target/wasm32,
#      kept apart from the host build so rustc-web 1.96 and rustup 1.95 do not clobber each other's
#      fingerprints), SKIP_WASM_TC_INSTALL=1 (do not run the installer; env.sh must exist).
# e.g.  bash tools/wasm-check.sh pitbox-schema
#       bash tools/wasm-check.sh pitbox-schema --features openapi
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
if [ $# -lt 1 ] || [ -z "$1" ] || [ "${1#-}" != "$1" ]; then
  echo "usage: $0 CRATE_PACKAGE_NAME [extra cargo args...]" >&2
  exit 2
fi
PKG=$1; shift
export WASM_TC_PREFIX=${WASM_TC_PREFIX:-/opt/pitbox-wasm-toolchain}

if [ "${SKIP_WASM_TC_INSTALL:-0}" != 1 ]; then
  WASM_TC_MINIMAL=1 WASM_TC_QUIET=1 bash "$HERE/wasm-toolchain.sh" >&2
fi
[ -f "$WASM_TC_PREFIX/env.sh" ] || { echo "wasm-check: $WASM_TC_PREFIX/env.sh missing" >&2; exit 1; }
# shellcheck disable=SC1091
. "$WASM_TC_PREFIX/env.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target/wasm32}

cd "$REPO"
echo "wasm-check: $(cargo -V) / $(rustc -V); CARGO_TARGET_DIR=$CARGO_TARGET_DIR" >&2
t0=$(date +%s)
rc=0
cargo check -p "$PKG" --target wasm32-unknown-unknown "$@" || rc=$?
if [ "$rc" = 0 ]; then
  echo "wasm-check: $PKG OK for wasm32-unknown-unknown ($(( $(date +%s) - t0 )) s)" >&2
else
  echo "wasm-check: FAILED ($rc): cargo check -p $PKG --target wasm32-unknown-unknown $*" >&2
fi
exit "$rc"
