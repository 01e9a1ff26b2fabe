#!/usr/bin/env bash
# tools/test.sh — set up and run every check and test of PitBox (the README's test command, and
# what CI runs through .ci/run): install build needs, start PostgreSQL, then fmt, clippy, cargo
# deny, the offline validation of deploy/, the dashboard's release WASM build (which also proves
# the wire types build for wasm32) with its size, the whole test suite against SQLite and
# PostgreSQL (including schemathesis against the real server and the dashboard end to end in
# headless Chromium), and the driver node's Windows build with its unit tests under wine.
#
# env: PITBOX_TEST_DATABASE_URL (PostgreSQL for the storage tests; found or started when unset),
#      PITBOX_SKIP_PG=1 (SQLite only), PITBOX_SKIP_WASM=1 (no dashboard build, no browser test),
#      PITBOX_SKIP_WINDOWS=1 (skip the Windows build and wine tests), PITBOX_SKIP_FUZZ=1 (skip the
#      short fuzz run), PITBOX_FUZZ_SECS (seconds per fuzz target, default 15), CI (set by CI:
#      a missing PostgreSQL is then an error, not a skip), PITBOX_STT_SNRS (the speech test's noise
#      levels; default here `5`, the hardest, to keep CI short; `20,10,5` is the full matrix)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS" >&2; }

step "setup"
bash tools/setup.sh

# The toolchains for the dashboard (wasm32) and the Windows node are mostly downloads (Debian's
# rustc-web, mingw-w64, wine, Chromium, npm tools): fetched in the background while clippy and the
# tests compile, instead of one after the other. wasm-toolchain.sh holds a lock, so the later
# foreground calls wait for this one, find everything there and take seconds; if it failed, they
# run it again and fail with its error.
tc_log=$(mktemp)
if [ "${PITBOX_SKIP_WASM:-0}" != 1 ] || [ "${PITBOX_SKIP_WINDOWS:-0}" != 1 ]; then
  win=1
  [ "${PITBOX_SKIP_WINDOWS:-0}" != 1 ] || win=0
  mini=0
  [ "${PITBOX_SKIP_WASM:-0}" != 1 ] || mini=1
  WASM_TC_QUIET=1 WASM_TC_MINIMAL=$mini INSTALL_WINDOWS=$win INSTALL_WINE=$win \
    nice bash tools/wasm-toolchain.sh >"$tc_log" 2>&1 &
  echo "toolchains: installing in the background (log: $tc_log)" >&2
fi

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

step "cargo deny (licenses, bans, sources; advisories when the database is here)"
cargo deny --locked check licenses bans sources
# The RustSec advisory database is a GitHub repository, and these machines reach no GitHub: check
# advisories only against a copy already on this machine (cargo-deny keeps it in
# $CARGO_HOME/advisory-dbs), never fetching, so CI never fails on the network.
if ls -d "${CARGO_HOME:-$HOME/.cargo}"/advisory-dbs/*/crates >/dev/null 2>&1; then
  cargo deny --frozen check advisories
else
  echo "cargo deny advisories: skipped, no advisory database on this machine (it comes from GitHub, which is out of reach)" >&2
fi

step "deploy/: Dockerfile, compose, Kubernetes, DigitalOcean spec (offline; no Docker engine here)"
bash deploy/validate.sh

step "wire types and dashboard build without diesel or actix"
for p in pitbox-schema pitbox-dashboard; do
  if cargo tree -p "$p" -e normal --prefix none | grep -E '^(diesel|actix)' ; then
    echo "$p must not depend on diesel or actix" >&2
    exit 1
  fi
done
echo "ok: no diesel or actix in pitbox-schema's default build or in the dashboard" >&2

if [ "${PITBOX_SKIP_WASM:-0}" != 1 ]; then
  step "wasm toolchain, Chromium and puppeteer-core"
  WASM_TC_QUIET=1 bash tools/wasm-toolchain.sh
  step "dashboard: release WASM build (wire types for wasm32 included), bundle size"
  bash tools/build-dashboard.sh
  cat dashboard-yew/dist/size.json >&2
else
  export PITBOX_SKIP_BROWSER=1
fi

step "cargo test"
# The speech-recognition matrix at one noise level (each level has its own floor): a third of
# its five minutes. The full matrix: PITBOX_STT_SNRS=20,10,5.
export PITBOX_STT_SNRS=${PITBOX_STT_SNRS:-5}
cargo test --workspace --locked

if [ "${PITBOX_SKIP_FUZZ:-0}" != 1 ]; then
  step "fuzz targets, ${PITBOX_FUZZ_SECS:-15}s each (unoptimised build, no sanitizer: quick to build)"
  PITBOX_FUZZ_PROFILE=${PITBOX_FUZZ_PROFILE:-dev} PITBOX_FUZZ_SANITIZER=${PITBOX_FUZZ_SANITIZER:-none} \
    bash tools/fuzz.sh "${PITBOX_FUZZ_SECS:-15}"
fi

if [ "${PITBOX_SKIP_WINDOWS:-0}" != 1 ]; then
  step "driver node for Windows (x86_64-pc-windows-gnu), unit tests under wine"
  bash tools/windows-check.sh
fi
step "done"
