#!/usr/bin/env bash
# tools/wasm-toolchain.sh — PitBox's own installer of a Rust -> wasm32-unknown-unknown toolchain on
# Debian 12 (bookworm) amd64, where rustup has no wasm32 target / rust-src and cannot download one.
# (Adapted from a reference recipe; this copy is self-contained and needs only Debian's, crates.io's
# and npm's registries — no GitHub, no prebuilt toolchain downloads.)
#
# How it works:
#   * bookworm-security ships rustc-web/cargo-web (1.96) + libstd-rust-web-* and rust-web-src (std's
#     sources of exactly that compiler). They conflict with rustup's apt packages, so they are NOT
#     apt-installed: `apt-get download` + `dpkg-deb -x` into $PREFIX/rust-web-<ver>/. Only their plain
#     shared-library dependencies (libllvmNN, libgit2, ...) and lld-NN are apt-installed.
#   * std for wasm32 is compiled from source by cargo `-Zbuild-std=std,panic_abort` (RUSTC_BOOTSTRAP=1).
#   * Linker: Debian's `wasm-ld` from lld-NN.
#   * full mode: wasm-bindgen-cli (cargo install, exact version of the workspace Cargo.lock),
#     chromium + a font (headless checks), npm binaryen@132 (wasm-opt) and puppeteer-core@24.
#
# Idempotent: what is present is skipped; `apt-get update` runs only when something must be fetched
# from apt (a missing package, a rust-web version not yet unpacked, or no apt lists at all).
# Concurrent runs are serialised with flock on $PREFIX/.lock.
#
# Environment read (all optional):
#   WASM_TC_PREFIX        install prefix                       (default /opt/pitbox-wasm-toolchain)
#   WASM_TC_MINIMAL=1     only rustc-web + std sources + lld: enough for `cargo check/build --target
#                         wasm32-unknown-unknown`; no wasm-bindgen-cli, chromium or npm tools (default 0)
#   CARGO_LOCK            lockfile whose wasm-bindgen version is installed (default <repo>/Cargo.lock)
#   WASM_BINDGEN_VERSION  overrides the version read from CARGO_LOCK
#   INSTALL_BINDGEN, INSTALL_BROWSER, INSTALL_WASM_OPT, INSTALL_E2E   1/0 per component
#                         (default 1 in full mode, 0 with WASM_TC_MINIMAL=1)
#   INSTALL_WINDOWS=1     also x86_64-pc-windows-gnu via gcc-mingw-w64 (same build-std trick; default 0)
#   INSTALL_WINE=1        wine64 + $PREFIX/bin/wine-run to run such .exe files (default $INSTALL_WINDOWS)
#   RUST_WEB_VERSION      pin the Debian rustc-web version (default: apt candidate)
#   KEEP_FULL_SRC=1       keep all of rust-web-src (default: only library/, saves ~365 MB)
#   FORCE_APT_UPDATE=1    always run apt-get update first;  SKIP_APT_UPDATE=1  never run it
#   WASM_TC_QUIET=1       do not print the summary
#
# Usage:  sudo bash tools/wasm-toolchain.sh                       # full
#         WASM_TC_MINIMAL=1 bash tools/wasm-toolchain.sh          # CI: cargo check for wasm32
# Then:   "$PREFIX/bin/wasm-env" cargo build --release --target wasm32-unknown-unknown
#    or:  source "$PREFIX/env.sh"      (exports the same variables into the current shell)
#         "$PREFIX/bin/wine-run" target/x86_64-pc-windows-gnu/release/app.exe     (INSTALL_WINE=1)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=${WASM_TC_PREFIX:-/opt/pitbox-wasm-toolchain}
WASM_TC_MINIMAL=${WASM_TC_MINIMAL:-0}
if [ "$WASM_TC_MINIMAL" = 1 ]; then full=0; else full=1; fi
INSTALL_BINDGEN=${INSTALL_BINDGEN:-$full}
INSTALL_BROWSER=${INSTALL_BROWSER:-$full}
INSTALL_WASM_OPT=${INSTALL_WASM_OPT:-$full}
INSTALL_E2E=${INSTALL_E2E:-$full}
INSTALL_WINDOWS=${INSTALL_WINDOWS:-0}
INSTALL_WINE=${INSTALL_WINE:-$INSTALL_WINDOWS}
KEEP_FULL_SRC=${KEEP_FULL_SRC:-0}
CARGO_LOCK=${CARGO_LOCK:-$HERE/../Cargo.lock}
export DEBIAN_FRONTEND=noninteractive

T0=$(date +%s)
log() { printf '[wasm-toolchain +%ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (apt-get install is needed)"
[ "$(dpkg --print-architecture)" = amd64 ] || die "only amd64 is supported"

mkdir -p "$PREFIX/bin" "$PREFIX/debs"
exec 9>"$PREFIX/.lock"
flock 9 || die "cannot lock $PREFIX/.lock"

# write stdin to $1 only if the content differs (keeps files that a running build may execute stable)
write_file() {
  local tmp; tmp=$(mktemp "$1.XXXXXX")
  cat > "$tmp"
  if cmp -s "$tmp" "$1" 2>/dev/null; then rm -f "$tmp"; else chmod "${2:-644}" "$tmp"; mv -f "$tmp" "$1"; fi
}

APT_UPDATED=0
apt_update() {
  [ "$APT_UPDATED" = 1 ] && return 0
  [ "${SKIP_APT_UPDATE:-0}" = 1 ] && { log "SKIP_APT_UPDATE=1: not running apt-get update"; return 0; }
  log "apt-get update"
  apt-get update -qq
  APT_UPDATED=1
}
[ "${FORCE_APT_UPDATE:-0}" = 1 ] && apt_update

# ---------------------------------------------------------------- 1. resolve versions + wanted packages
rw_candidate() {
  if [ -n "${RUST_WEB_VERSION:-}" ]; then echo "$RUST_WEB_VERSION"; return; fi
  apt-cache policy rustc-web 2>/dev/null | awk '/Candidate:/{print $2}'
}
# Depends: of one package version, alternatives reduced to their first choice, versions stripped
deps_of() {
  apt-cache show "$1=$RW_VER" 2>/dev/null | sed -n 's/^Depends: //p' | head -1 | tr ',' '\n' |
    sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/^ *//' -e 's/ *$//' | grep -v '^$' || true
}
resolve() {
  RW_VER=$(rw_candidate)
  if [ -z "$RW_VER" ] || [ "$RW_VER" = "(none)" ]; then
    [ "$APT_UPDATED" = 1 ] && die "no rustc-web candidate (is bookworm-security in the apt sources?)"
    apt_update
    RW_VER=$(rw_candidate)
    [ -n "$RW_VER" ] && [ "$RW_VER" != "(none)" ] || die "no rustc-web candidate (is bookworm-security in the apt sources?)"
  fi
  RW_UP=${RW_VER%%+*}          # 1.96.0
  RW_MM=${RW_UP%.*}            # 1.96
  case "$RW_MM" in 1.[0-7][0-9]) die "rustc-web $RW_VER is too old (need >= 1.84)";; esac
  RW_ROOT=$PREFIX/rust-web-$RW_UP
  DEB_PKGS="rustc-web cargo-web libstd-rust-web-$RW_MM libstd-rust-web-dev rust-web-src"
  RUNTIME_DEPS=$(for p in rustc-web cargo-web "libstd-rust-web-$RW_MM"; do deps_of "$p"; done |
    grep -Ev '^(rustc-web|cargo-web|libstd-rust-web-.*|rust-web-src)$' | sed 's/^libc-dev$/libc6-dev/' | sort -u | tr '\n' ' ')
  LLVM_MAJOR=$(echo "$RUNTIME_DEPS" | grep -o 'libllvm[0-9]*' | head -1 | sed 's/libllvm//' || true)
  [ -n "$LLVM_MAJOR" ] || die "could not find the libllvmNN dependency of libstd-rust-web-$RW_MM ($RW_VER)"
  APT_PKGS="$RUNTIME_DEPS lld-$LLVM_MAJOR ca-certificates"
  [ "$INSTALL_BROWSER" = 1 ] && APT_PKGS="$APT_PKGS chromium fonts-dejavu-core"
  # g++ too: openh264 (the node's video encoder) is C++.
  [ "$INSTALL_WINDOWS" = 1 ] && APT_PKGS="$APT_PKGS gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 g++-mingw-w64-x86-64-posix"
  [ "$INSTALL_WINE" = 1 ] && APT_PKGS="$APT_PKGS wine64 gcc-mingw-w64-x86-64"
  APT_PKGS=$(echo $APT_PKGS | tr ' ' '\n' | sort -u | tr '\n' ' ')
  MISSING=""
  for p in $APT_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || MISSING="$MISSING $p"
  done
  RW_OK=0
  [ "$(cat "$RW_ROOT/.installed" 2>/dev/null || true)" = "$RW_VER" ] && RW_OK=1
  return 0
}
resolve
if { [ -n "$MISSING" ] || [ "$RW_OK" != 1 ]; } && [ "$APT_UPDATED" != 1 ]; then
  apt_update            # something must come from apt: refresh the lists once, then re-resolve
  resolve
fi
log "rustc-web version: $RW_VER (llvm $LLVM_MAJOR)"

# ---------------------------------------------------------------- 2. apt packages (no conflicts with rustup)
if [ -n "$MISSING" ]; then
  log "apt-get install:$MISSING"
  apt-get install -y -qq --no-install-recommends $MISSING >/dev/null
else
  log "apt packages already installed"
fi
WASM_LD=/usr/lib/llvm-$LLVM_MAJOR/bin/wasm-ld
[ -x "$WASM_LD" ] || die "$WASM_LD missing"

# ---------------------------------------------------------------- 3. unpack rustc-web + rust-web-src
if [ "$RW_OK" != 1 ]; then
  log "downloading + unpacking: $DEB_PKGS"
  dl=$(mktemp -d "$PREFIX/debs/dl.XXXXXX")
  chown _apt "$dl" 2>/dev/null || true   # else apt warns "Download is performed unsandboxed as root"
  (cd "$dl" && for p in $DEB_PKGS; do apt-get download -qq "$p=$RW_VER"; done)
  rm -rf "$RW_ROOT.tmp" && mkdir -p "$RW_ROOT.tmp"
  for d in "$dl"/*.deb; do dpkg-deb -x "$d" "$RW_ROOT.tmp"; done
  rm -rf "$dl"
  if [ "$KEEP_FULL_SRC" != 1 ]; then   # build-std only needs library/ (a self-contained workspace)
    rm -rf "$RW_ROOT.tmp/usr/src/rustc-$RW_UP/src" "$RW_ROOT.tmp/usr/src/rustc-$RW_UP/compiler"
  fi
  [ -f "$RW_ROOT.tmp/usr/lib/rustlib/src/rust/library/std/Cargo.toml" ] || die "std sources missing after unpack"
  echo "$RW_VER" > "$RW_ROOT.tmp/.installed"
  rm -rf "$RW_ROOT" && mv "$RW_ROOT.tmp" "$RW_ROOT"
else
  log "rust-web $RW_VER already unpacked in $RW_ROOT"
fi

# ---------------------------------------------------------------- 4. wrappers + env
mkdir -p "$RW_ROOT/wrap"
for tool in rustc rustdoc cargo; do
  write_file "$RW_ROOT/wrap/$tool" 755 <<EOF
#!/bin/sh
# unpacked Debian $tool $RW_VER: its shared libs (librustc_driver, libstd) live in usr/lib/x86_64-linux-gnu
LD_LIBRARY_PATH="$RW_ROOT/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$RW_ROOT/usr/bin/$tool" "\$@"
EOF
done

write_file "$PREFIX/env.sh" 644 <<EOF
# source this file to build for wasm32-unknown-unknown with rustc-web $RW_VER + -Zbuild-std
# (written by PitBox tools/wasm-toolchain.sh)
export WASM_TC_PREFIX="$PREFIX"
export PATH="$RW_ROOT/wrap:$PREFIX/bin:$PREFIX/node/node_modules/.bin:\$PATH"
export RUSTC="$RW_ROOT/wrap/rustc"
export RUSTDOC="$RW_ROOT/wrap/rustdoc"
export CARGO="$RW_ROOT/wrap/cargo"
export RUSTC_BOOTSTRAP=1
export CARGO_UNSTABLE_BUILD_STD="std,panic_abort"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$WASM_LD"
# Windows (INSTALL_WINDOWS=1): cargo build --target x86_64-pc-windows-gnu   (needs gcc-mingw-w64-x86-64)
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
if [ -x "$PREFIX/bin/wine-run" ]; then   # INSTALL_WINE=1: cargo test/run --target x86_64-pc-windows-gnu run under wine
  export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$PREFIX/bin/wine-run"
fi
EOF

write_file "$PREFIX/bin/wasm-env" 755 <<EOF
#!/bin/sh
# run a command with the wasm toolchain environment: wasm-env cargo build --target wasm32-unknown-unknown
. "$PREFIX/env.sh"
exec "\$@"
EOF

"$RW_ROOT/wrap/rustc" -V >/dev/null || die "unpacked rustc does not run"
SYSROOT=$("$RW_ROOT/wrap/rustc" --print sysroot)
[ -d "$SYSROOT/lib/rustlib/src/rust/library/std" ] || die "rustc sysroot $SYSROOT has no lib/rustlib/src/rust/library"

# ---------------------------------------------------------------- 5. windows extras (optional)
if [ "$INSTALL_WINE" = 1 ]; then
  # Rust std (>= 1.78) on x86_64-pc-windows-gnu imports ProcessPrng from bcryptprimitives.dll, which
  # Debian 12's wine 8.0 lacks ("Library bcryptprimitives.dll ... not found", exit 53). For running
  # tests under wine only, a tiny stand-in built with mingw forwards it to advapi32's RtlGenRandom.
  mkdir -p "$PREFIX/windows"
  if [ ! -f "$PREFIX/windows/bcryptprimitives.dll" ]; then
    cat > "$PREFIX/windows/bcryptprimitives-stub.c" <<'CEOF'
/* Test-only stand-in for Windows 10's bcryptprimitives.dll (missing in Debian 12's wine 8.0). */
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len); /* advapi32 RtlGenRandom */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n; len -= n;
    }
    return TRUE;
}
CEOF
    x86_64-w64-mingw32-gcc -O2 -shared -o "$PREFIX/windows/bcryptprimitives.dll" \
      "$PREFIX/windows/bcryptprimitives-stub.c" -ladvapi32
  fi
  write_file "$PREFIX/bin/wine-run" 755 <<EOF
#!/bin/sh
# wine-run prog.exe [args]: run a Windows console program under Debian's wine64 in a private prefix
export WINEPREFIX="\${WINEPREFIX:-$PREFIX/wineprefix}" WINEDEBUG="\${WINEDEBUG:--all}"
# no WINEPATH to MinGW's DLLs: the node's programs are self-contained (driver-node/build.rs)
# wine here has no display driver: tests that need a real screen say so instead of failing
export PITBOX_HEADLESS_WINE=1
if [ ! -f "\$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]; then
  /usr/lib/wine/wine64 wineboot -i >/dev/null 2>&1 || true
  cp "$PREFIX/windows/bcryptprimitives.dll" "\$WINEPREFIX/drive_c/windows/system32/"
fi
exec /usr/lib/wine/wine64 "\$@"
EOF
fi

# ---------------------------------------------------------------- 6. wasm-bindgen-cli (exact lockfile version)
if [ "$INSTALL_BINDGEN" = 1 ]; then
  if [ -z "${WASM_BINDGEN_VERSION:-}" ]; then
    [ -f "$CARGO_LOCK" ] || die "CARGO_LOCK=$CARGO_LOCK not found (set WASM_BINDGEN_VERSION or CARGO_LOCK)"
    WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' "$CARGO_LOCK")
    [ -n "$WASM_BINDGEN_VERSION" ] || die "no wasm-bindgen in $CARGO_LOCK (set WASM_BINDGEN_VERSION)"
  fi
  have=$("$PREFIX/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}' || true)
  if [ "$have" != "$WASM_BINDGEN_VERSION" ]; then
    # built with the rustc-web toolchain itself (host target, no build-std), so rustup is not needed
    log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes on 2 cores)"
    ( . "$PREFIX/env.sh"; unset CARGO_UNSTABLE_BUILD_STD RUSTC_BOOTSTRAP CARGO_TARGET_DIR
      cargo install --locked --quiet wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --root "$PREFIX" ||
      { log "--locked failed (its pinned lock may name a crate version the registry lacks); retrying unlocked"
        cargo install --quiet wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --root "$PREFIX"; } )
  else
    log "wasm-bindgen $have already installed"
  fi
fi

# ---------------------------------------------------------------- 7. npm tools (wasm-opt, puppeteer-core)
NPM_PKGS=""
[ "$INSTALL_WASM_OPT" = 1 ] && NPM_PKGS="$NPM_PKGS binaryen@132"   # Debian's binaryen 108 can't read wasm-bindgen output
[ "$INSTALL_E2E" = 1 ] && NPM_PKGS="$NPM_PKGS puppeteer-core@24"   # 25.x needs node >= 22.12
if [ -n "$NPM_PKGS" ]; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p "$PREFIX/node"
    need=""
    for p in $NPM_PKGS; do [ -d "$PREFIX/node/node_modules/${p%@*}" ] || need="$need $p"; done
    if [ -n "$need" ]; then
      log "npm install:$need"
      [ -f "$PREFIX/node/package.json" ] || echo '{"private":true}' > "$PREFIX/node/package.json"
      (cd "$PREFIX/node" && npm install --no-audit --no-fund --loglevel=error $need >/dev/null)
    else
      log "npm tools already installed"
    fi
  else
    log "npm not found: skipping$NPM_PKGS"
  fi
fi

# ---------------------------------------------------------------- summary
log "done ($([ "$full" = 1 ] && echo full || echo minimal)); disk: $(du -sh "$PREFIX" 2>/dev/null | cut -f1) in $PREFIX"
[ "${WASM_TC_QUIET:-0}" = 1 ] && exit 0
cat <<EOF

rustc       : $("$RW_ROOT/wrap/rustc" -V)   (sysroot $SYSROOT)
cargo       : $("$RW_ROOT/wrap/cargo" -V)
std sources : $SYSROOT/lib/rustlib/src/rust/library
linker      : $WASM_LD ($("$WASM_LD" --version 2>/dev/null | head -1))
wasm-bindgen: $("$PREFIX/bin/wasm-bindgen" --version 2>/dev/null || echo "not installed")
wasm-opt    : $("$PREFIX/node/node_modules/.bin/wasm-opt" --version 2>/dev/null || echo "not installed")
chromium    : $(chromium --version 2>/dev/null || echo "not installed")
mingw-w64   : $(command -v x86_64-w64-mingw32-gcc >/dev/null && x86_64-w64-mingw32-gcc --version | head -1 || echo "not installed")
wine        : $(/usr/lib/wine/wine64 --version 2>/dev/null || echo "not installed")

Use either
  $PREFIX/bin/wasm-env cargo build --release --target wasm32-unknown-unknown
or
  source $PREFIX/env.sh && cargo build --release --target wasm32-unknown-unknown
It sets:
$(grep -v '^#' "$PREFIX/env.sh" | sed 's/^/  /')
EOF
