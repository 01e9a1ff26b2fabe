#!/usr/bin/env bash
# tools/fuzz.sh — run every cargo-fuzz target of fuzz/ for a while and print what each did: the
# socket message decoder (ws_decode), the session-info YAML reader (session_yaml) and the .ibt /
# live telemetry parser (ibt_parse). Installs cargo-fuzz from crates.io when it is missing; runs on
# the stable toolchain with its nightly features unlocked (RUSTC_BOOTSTRAP=1), which is what
# cargo-fuzz's sanitizer flags need. A crash fails the script; libFuzzer leaves the input in
# fuzz/artifacts/<target>/ (reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>).
#
# usage: bash tools/fuzz.sh [SECONDS per target, default 60] [TARGET ...]
# env:   PITBOX_FUZZ_SANITIZER  address (default) or none (faster to run; still catches panics,
#                               stack overflows and, debug assertions being on, integer overflows)
#        PITBOX_FUZZ_PROFILE    release (default: optimised, one codegen unit per crate, slow to
#                               build) or dev (unoptimised: builds several times faster, runs slower;
#                               what tools/test.sh uses for its short run)
#        PITBOX_FUZZ_TARGET_DIR where the instrumented build goes (default fuzz/target)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ws_decode session_yaml ibt_parse media_header)
sanitizer=${PITBOX_FUZZ_SANITIZER:-address}
target_dir=${PITBOX_FUZZ_TARGET_DIR:-$PWD/fuzz/target}
profile=${PITBOX_FUZZ_PROFILE:-release}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --version '^0.13'
fi
export RUSTC_BOOTSTRAP=1

# Seed corpora: the committed socket messages, and the shared fixtures when they are there
# (small .ibt files only: libFuzzer reads every seed on each start).
fixtures=../shared/fixtures
# media_header starts from an empty corpus: libFuzzer finds the 24-byte header's shape itself.
mkdir -p fuzz/corpus/{ws_decode,session_yaml,ibt_parse,media_header}
cp -n fuzz/seeds/ws_decode/* fuzz/corpus/ws_decode/
cp -n fuzz/seeds/session_yaml/* fuzz/corpus/session_yaml/
if [ -d "$fixtures/session-yaml" ]; then cp -n "$fixtures"/session-yaml/* fuzz/corpus/session_yaml/; fi
if [ -d "$fixtures/ibt" ]; then
  find "$fixtures/ibt" -type f -size -2M -exec cp -n {} fuzz/corpus/ibt_parse/ \;
fi
chmod -R u+w fuzz/corpus

# Longest input each target is given (the seeds are trimmed to it).
max_len() {
  case $1 in
    ws_decode) echo 8192 ;;
    session_yaml) echo 16384 ;;
    ibt_parse) echo 60000 ;;
    media_header) echo 4096 ;;
  esac
}

# The workspace's lockfile: the fuzzed code is built with the dependency versions it ships with.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock

cd fuzz
started=$SECONDS
# Debug assertions on (-a): integer overflow panics too.
flags=(-s "$sanitizer" -a --target-dir "$target_dir")
[ "$profile" = release ] || flags+=(--dev)
cargo fuzz build "${flags[@]}"
echo "fuzz build ($profile, sanitizer $sanitizer): $((SECONDS - started)) s" >&2

summary=()
for t in "${targets[@]}"; do
  log=$(mktemp)
  echo "== $t for ${secs}s" >&2
  if ! cargo fuzz run "${flags[@]}" "$t" "corpus/$t" -- \
      -max_total_time="$secs" -max_len="$(max_len "$t")" -print_final_stats=1 -timeout=10 \
      >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz target $t failed (input in fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  summary+=("$(printf '%-14s %10s execs %8s exec/s  %s' "$t" "${execs:-?}" "${rate:-?}" "$cov")")
  rm -f "$log"
done
printf '%s\n' "${summary[@]}"
