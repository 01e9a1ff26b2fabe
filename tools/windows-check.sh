#!/usr/bin/env bash
# tools/windows-check.sh — build the driver node for Windows and run its unit tests under wine, from Linux.
#
# 1. installs (idempotent: seconds when already there) the project's cross toolchain with
#    tools/wasm-toolchain.sh in minimal mode plus its Windows parts:
#      WASM_TC_MINIMAL=1 INSTALL_WINDOWS=1 INSTALL_WINE=1   (rustc-web + std sources, mingw-w64, wine64)
# 2. with $WASM_TC_PREFIX/env.sh sourced (rustc-web + -Zbuild-std, mingw as linker, wine as runner):
#      cargo build -p pitbox-driver --target x86_64-pc-windows-gnu --locked
#        (compiles src/platform/windows/, iracing-telem and every dependency, bundled SQLite with mingw)
#      then checks with objdump that the .exe imports no MinGW runtime DLL (one self-contained file)
#      cargo test  -p pitbox-driver --target x86_64-pc-windows-gnu --lib --locked
#        (the lib's unit tests run under wine via CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER; among them
#         the iracing-telem live source reading a stand-in sim's shared memory)
# Prints the time of each step; exits non-zero on the first failure.
#
# env: WASM_TC_PREFIX (default /opt/pitbox-wasm-toolchain), CARGO_TARGET_DIR (default <repo>/target/windows,
#      apart from the host build so rustc-web 1.96 and rustup's rustc do not clobber each other),
#      SKIP_WASM_TC_INSTALL=1 (do not run the installer; env.sh and wine-run must exist),
#      WINDOWS_CHECK_TEST_TIMEOUT (seconds for the test run under wine, default 900).
# Usage: sudo bash tools/windows-check.sh [extra args for both cargo commands, e.g. --release]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TARGET=x86_64-pc-windows-gnu
PKG=pitbox-driver
export WASM_TC_PREFIX=${WASM_TC_PREFIX:-/opt/pitbox-wasm-toolchain}

T_START=$(date +%s)
TIMINGS=""
say() { printf 'windows-check: %s\n' "$*" >&2; }
# step NAME CMD...: runs CMD, records its duration, stops the script on failure
step() {
  local name=$1; shift
  local t0 rc=0
  t0=$(date +%s)
  say "== $name: $*"
  "$@" || rc=$?
  local dt=$(( $(date +%s) - t0 ))
  TIMINGS="$TIMINGS$(printf '  %-10s %5s s  %s' "$name" "$dt" "$([ "$rc" = 0 ] && echo ok || echo "FAILED ($rc)")")"$'\n'
  if [ "$rc" != 0 ]; then
    say "FAILED ($rc): $name: $*"
    summary
    exit "$rc"
  fi
}
summary() {
  printf 'windows-check timings (total %s s):\n%s' "$(( $(date +%s) - T_START ))" "$TIMINGS" >&2
}

if [ "${SKIP_WASM_TC_INSTALL:-0}" != 1 ]; then
  step toolchain env WASM_TC_MINIMAL=1 INSTALL_WINDOWS=1 INSTALL_WINE=1 WASM_TC_QUIET=1 \
    bash "$HERE/wasm-toolchain.sh"
fi
[ -f "$WASM_TC_PREFIX/env.sh" ] || { say "$WASM_TC_PREFIX/env.sh missing (run tools/wasm-toolchain.sh)"; exit 1; }
# shellcheck disable=SC1091
. "$WASM_TC_PREFIX/env.sh"
[ -n "${CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER:-}" ] ||
  { say "no wine runner in $WASM_TC_PREFIX/env.sh (install with INSTALL_WINE=1)"; exit 1; }
command -v x86_64-w64-mingw32-gcc >/dev/null ||
  { say "x86_64-w64-mingw32-gcc missing (install with INSTALL_WINDOWS=1)"; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target/windows}
# MinGW with POSIX threads (whisper.cpp needs std::mutex and std::thread, which the win32 thread
# model of Debian's default MinGW g++ 12 lacks), for C, C++ and the link alike; winpthreads is
# linked statically (driver-node/build.rs).
export CC_x86_64_pc_windows_gnu=${CC_x86_64_pc_windows_gnu:-x86_64-w64-mingw32-gcc-posix}
export CXX_x86_64_pc_windows_gnu=${CXX_x86_64_pc_windows_gnu:-x86_64-w64-mingw32-g++-posix}
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc-posix
command -v "$CXX_x86_64_pc_windows_gnu" >/dev/null ||
  { say "$CXX_x86_64_pc_windows_gnu missing (apt-get install g++-mingw-w64-x86-64-posix)"; exit 1; }
# whisper.cpp's ggml uses THREAD_POWER_THROTTLING_STATE, which Debian 12's MinGW-w64 headers lack:
# a small header with the SDK's definition is force-included into the target's C code then.
mingw_inc=$(dirname "$(echo '#include <windows.h>' | "$CC_x86_64_pc_windows_gnu" -xc -E -H - 2>&1 >/dev/null | grep -m1 -o '/[^ ]*/windows\.h')")
if ! grep -rqs THREAD_POWER_THROTTLING_CURRENT_VERSION "$mingw_inc"; then
  export CFLAGS_x86_64_pc_windows_gnu="${CFLAGS_x86_64_pc_windows_gnu:-} -include $REPO/tools/mingw-compat/thread-power-throttling.h"
fi
# ggml names its static libraries without `lib` on Windows, which rustc does not find: see the file.
export CMAKE_PROJECT_ggml_INCLUDE="$REPO/tools/mingw-compat/ggml-lib-prefix.cmake"
# whisper-rs-sys makes its bindings with bindgen; Debian's libclang does not find clang's own
# headers (stdbool.h, stddef.h) for the Windows target, so they are named here.
if [ -z "${BINDGEN_EXTRA_CLANG_ARGS_x86_64_pc_windows_gnu:-}" ]; then
  clang_inc=$(ls -d /usr/lib/llvm-*/lib/clang/*/include 2>/dev/null | sort -V | tail -n1 || true)
  [ -z "$clang_inc" ] || export BINDGEN_EXTRA_CLANG_ARGS_x86_64_pc_windows_gnu="-isystem $clang_inc"
fi

cd "$REPO"
say "$(cargo -V) / $(rustc -V); CARGO_TARGET_DIR=$CARGO_TARGET_DIR; runner=$CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER"
step build cargo build -p "$PKG" --target "$TARGET" --locked "$@"
# One self-contained .exe (see .cargo/config.toml): it may import Windows' own DLLs only, never
# MinGW's C++/gcc/pthread runtimes, which a driver's PC does not have.
imports() {
  local exe="$CARGO_TARGET_DIR/$TARGET/debug/pitbox-driver.exe" dlls
  case " $* " in *" --release "*) exe="$CARGO_TARGET_DIR/$TARGET/release/pitbox-driver.exe" ;; esac
  [ -f "$exe" ] || { say "$exe not found"; return 1; }
  dlls=$(x86_64-w64-mingw32-objdump -p "$exe" | sed -n 's/^\s*DLL Name: //p' | sort -u)
  say "$exe ($(du -h "$exe" | cut -f1)) imports: $(echo "$dlls" | tr '\n' ' ')"
  if echo "$dlls" | grep -Ei '^(libstdc\+\+|libgcc|libwinpthread)'; then
    say "the .exe needs MinGW's runtime DLLs: it must link them statically"
    return 1
  fi
}
step imports imports "$@"
# compile the test harness first, so the timing of the run under wine is its own
step build-test cargo test -p "$PKG" --target "$TARGET" --lib --locked --no-run "$@"
step test-wine timeout "${WINDOWS_CHECK_TEST_TIMEOUT:-900}" \
  cargo test -p "$PKG" --target "$TARGET" --lib --locked "$@"
say "OK: $PKG builds for $TARGET and its unit tests pass under wine"
summary
