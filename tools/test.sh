#!/usr/bin/env bash
# tools/test.sh — set up and run every check and test of PitBox (the README's test command, and
# what CI runs through .ci/run): install build needs, start PostgreSQL, then fmt, clippy, the
# wasm32 build of the wire types, the whole test suite against SQLite and PostgreSQL, and the
# driver node's Windows build with its unit tests under wine.
#
# env: PITBOX_TEST_DATABASE_URL (PostgreSQL for the storage tests; found or started when unset),
#      PITBOX_SKIP_PG=1 (SQLite only), PITBOX_SKIP_WASM=1 (skip the wasm32 check),
#      PITBOX_SKIP_WINDOWS=1 (skip the Windows build and wine tests), CI (set by CI:
#      a missing PostgreSQL is then an error, not a skip)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS" >&2; }

step "setup"
bash tools/setup.sh

if [ "${PITBOX_SKIP_PG:-0}" != 1 ]; then
  step "services"
  if url=$(bash tools/services.sh); then
    export PITBOX_TEST_DATABASE_URL=${PITBOX_TEST_DATABASE_URL:-$url}
    echo "PostgreSQL tests: on" >&2
  elif [ -n "${CI:-}" ]; then
    echo "CI needs PostgreSQL for the storage tests" >&2
    exit 1
  else
    echo "PostgreSQL not available: storage tests run on SQLite only" >&2
  fi
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "wire types build without diesel or actix"
if cargo tree -p pitbox-schema -e normal --prefix none | grep -E '^(diesel|actix)' ; then
  echo "pitbox-schema without features must not depend on diesel or actix" >&2
  exit 1
fi
echo "ok: no diesel or actix in pitbox-schema's default build" >&2

if [ "${PITBOX_SKIP_WASM:-0}" != 1 ]; then
  step "wasm32 check of pitbox-schema"
  bash tools/wasm-check.sh pitbox-schema --locked
fi

step "cargo test"
cargo test --workspace --locked

if [ "${PITBOX_SKIP_WINDOWS:-0}" != 1 ]; then
  step "driver node for Windows (x86_64-pc-windows-gnu), unit tests under wine"
  bash tools/windows-check.sh
fi
step "done"
