#!/usr/bin/env bash
# loadgen/run.sh — one load run on this machine: starts a fresh server, runs pitbox-loadgen against
# it (watching the server's CPU and RSS), stops the server.
#   pitbox: the release `pitbox-runtime serve` (SQLite in a temp dir, or DATABASE_URL), an admin
#           made with `pitbox-runtime user add`, rate limits raised for the setup's logins;
#   relay:  the Python baseline relay (loadgen/baseline/relay.py).
# Usage: bash loadgen/run.sh pitbox|relay [pitbox-loadgen options, e.g. --drivers 200 --secs 10]
# env:   CARGO_TARGET_DIR (where the release binaries are; built if missing), DATABASE_URL (pitbox).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=${1:?usage: loadgen/run.sh pitbox|relay [options]}
shift
bin=${CARGO_TARGET_DIR:-target}/release
cargo build -q --release --locked -p pitbox-loadgen $([ "$target" = pitbox ] && echo "-p pitbox-runtime")
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

if [ "$target" = relay ]; then
  python3 loadgen/baseline/relay.py --port 0 > "$dir/relay.out" &
  pid=$!
  until grep -q listening "$dir/relay.out" 2>/dev/null; do kill -0 "$pid"; sleep 0.1; done
  url=http://$(awk '{print $3; exit}' "$dir/relay.out")
  "$bin/pitbox-loadgen" --url "$url" --target relay --server-pid "$pid" "$@"
  exit
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PITBOX_DATA_DIR=$dir PITBOX_BIND=127.0.0.1:$port PITBOX_JWT_SECRET=loadgen-secret-0123456789abcdef0123
export PITBOX_RATE_LIMIT_LOGIN=100000 PITBOX_RATE_LIMIT_PER_IP=1000000 PITBOX_RATE_LIMIT_PER_USER=1000000
export PITBOX_LOG_FORMAT=json RUST_LOG=${RUST_LOG:-warn}
export PITBOX_LOADGEN_PASSWORD=loadgen-admin-password
PITBOX_PASSWORD=$PITBOX_LOADGEN_PASSWORD "$bin/pitbox-runtime" user add admin --role admin > /dev/null
"$bin/pitbox-runtime" serve 2> "$dir/serve.log" &
pid=$!
until curl -fsS "http://127.0.0.1:$port/healthz" > /dev/null 2>&1; do kill -0 "$pid"; sleep 0.1; done
"$bin/pitbox-loadgen" --url "http://127.0.0.1:$port" --server-pid "$pid" "$@"
