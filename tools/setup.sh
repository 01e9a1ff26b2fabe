#!/usr/bin/env bash
# tools/setup.sh — install what building and testing PitBox needs on Debian 12, idempotently:
# Debian packages (C toolchain, pkg-config, libpq for diesel's PostgreSQL backend) and a check that
# cargo is there. Re-running when everything is present takes a second and touches nothing.
#
# env: PITBOX_APT_EXTRA (more Debian packages to ensure), SKIP_APT=1 (only check, never install)
set -euo pipefail

PKGS="build-essential pkg-config libpq-dev ca-certificates postgresql-client ${PITBOX_APT_EXTRA:-}"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "${SKIP_APT:-0}" = 1 ] || [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages:$missing (run as root: apt-get install$missing)" >&2
    exit 1
  fi
  echo "setup: apt-get install$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found (install Rust with rustup)" >&2; exit 1; }
for pair in fmt:rustfmt clippy:clippy; do
  if ! cargo "${pair%%:*}" --version >/dev/null 2>&1 && command -v rustup >/dev/null 2>&1; then
    rustup component add "${pair#*:}" >&2 || true
  fi
done
echo "setup: ok ($(cargo --version))" >&2
