#!/usr/bin/env bash
# tools/run.sh [serve flags...] — a live pit wall on this machine, from a fresh checkout or again:
# installs build needs, builds the release runtime and driver node, builds the dashboard
# (tools/build-dashboard.sh), creates the demo team (`pitbox-runtime demo`: engineer
# `demo`, drivers demo-driver-1..3, passwords kept in <data dir>/demo-credentials.json), starts
# `pitbox-runtime serve` on the embedded default (SQLite in ./pitbox-data), and once it is ready
# starts three driver nodes streaming into it, a small race: two synthetic drivers at different
# points of the lap with different pace and faults for the coach to find, and, when
# ../shared/fixtures/ibt/ has a readable .ibt, a real recording replayed at 1x in a loop (else a
# third synthetic driver). Prints the dashboard's address and the logins; Ctrl-C stops everything.
# Logs: <data dir>/logs/.
#
# env: every PITBOX_* setting of `pitbox-runtime serve --help` (e.g. PITBOX_BIND, PITBOX_DATA_DIR,
#      DATABASE_URL, PITBOX_DASHBOARD_DIR; the same can be given as flags, but set the address and
#      data directory by env var or flag, not in a --config file, so this script finds them too),
#      PITBOX_NO_DASHBOARD=1 (do not build the dashboard), PITBOX_DEMO=0 (no demo team, no nodes:
#      just the runtime), CARGO_TARGET_DIR (where the binaries are built; default ./target)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf 'run: %s\n' "$*" >&2; }

bash tools/setup.sh
cargo build --release --locked -p pitbox-runtime -p pitbox-driver
# Where cargo put them: CARGO_TARGET_DIR when set (a shared build cache), else ./target.
RUNTIME=${CARGO_TARGET_DIR:-target}/release/pitbox-runtime
DRIVER=${CARGO_TARGET_DIR:-target}/release/pitbox-driver

if [ "${PITBOX_NO_DASHBOARD:-0}" = 1 ]; then
  say "warning: PITBOX_NO_DASHBOARD=1: not building the dashboard; / serves whatever was built before"
else
  # A failed dashboard build still leaves the API and the nodes worth running: say so and go on.
  bash tools/build-dashboard.sh || say "warning: tools/build-dashboard.sh failed; / will say the dashboard is not built"
fi

# Where the runtime will listen and keep its data: flags win over env vars, as in the runtime.
BIND=${PITBOX_BIND:-127.0.0.1:8080}
DATA_DIR=${PITBOX_DATA_DIR:-pitbox-data}
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --bind) BIND=${args[$((i + 1))]:-$BIND} ;;
    --bind=*) BIND=${args[$i]#--bind=} ;;
    --data-dir) DATA_DIR=${args[$((i + 1))]:-$DATA_DIR} ;;
    --data-dir=*) DATA_DIR=${args[$i]#--data-dir=} ;;
  esac
done
BHOST=${BIND%:*}
PORT=${BIND##*:}
case "$BHOST" in 0.0.0.0 | "[::]") BHOST=127.0.0.1 ;; esac
URL="http://$BHOST:$PORT"
HOST=${BHOST#[}
HOST=${HOST%]}

# An HTTP GET with bash alone (no curl on a bare machine): prints the status code.
http_status() {
  local line
  exec 3<>"/dev/tcp/$HOST/$PORT" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$HOST:$PORT" >&3
  IFS=' ' read -r -t 2 _ line _ <&3 || line=""
  exec 3<&- 3>&-
  printf '%s' "$line"
}
if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
  say "something already listens on $BIND (another tools/run.sh?): stop it, or set PITBOX_BIND"
  exit 1
fi

# The demo's logins, one per line: data dir, team, engineer user and password, admin password (or
# empty), then username, password and car number of each driver.
demo=()
if [ "${PITBOX_DEMO:-1}" != 0 ]; then
  demo_json=$("$RUNTIME" demo "$@")
  lines=$(python3 -c '
import json, os, sys
d = json.load(sys.stdin)
lines = [os.path.dirname(d["credentialsFile"]) or ".", d["team"]["name"], d["engineer"]["username"],
         d["engineer"]["password"], d["admin"]["password"] or ""]
for x in d["drivers"]:
    lines += [x["username"], x["password"], str(x["number"])]
print("\n".join(lines))' <<<"$demo_json")
  mapfile -t demo <<<"$lines"
  # The runtime's own answer beats the guess above (a --config file may have moved it).
  DATA_DIR=${demo[0]}
fi

LOGS="$DATA_DIR/logs"
mkdir -p "$LOGS"
pids=()
runtime_pid=""
stop_all() {
  trap - EXIT INT TERM
  [ ${#pids[@]} -gt 0 ] || [ -n "$runtime_pid" ] || return 0
  say "stopping"
  # Nodes first, with Ctrl-C (they flush what they can; the spool keeps the rest for next time),
  # then the runtime (graceful on TERM); anything still alive after 10 s is killed.
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  [ -n "$runtime_pid" ] && kill -TERM "$runtime_pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$runtime_pid" 2>/dev/null || break
    sleep 0.1
  done
  for p in "${pids[@]}" $runtime_pid; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

printf '\n=== %s: pitbox-runtime serve %s\n' "$(date -Is)" "$*" >>"$LOGS/runtime.log"
"$RUNTIME" serve "$@" >>"$LOGS/runtime.log" 2>&1 &
runtime_pid=$!
say "runtime starting on $URL (log: $LOGS/runtime.log)"
ready=0
for _ in $(seq 600); do
  if ! kill -0 "$runtime_pid" 2>/dev/null; then
    say "the runtime stopped while starting; the end of its log:"
    tail -n 20 "$LOGS/runtime.log" >&2
    exit 1
  fi
  if [ "$(http_status /readyz 2>/dev/null || true)" = 200 ]; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || { say "the runtime was not ready after 60 s; see $LOGS/runtime.log"; exit 1; }

# The third car replays a real recording when the shared fixtures are there: the largest .ibt the
# node can read (empty and broken ones are there too, for the tests), over and over (--loop: the
# session clock and the laps carry on from pass to pass, so its laps keep coming).
IBT=""
if [ -d ../shared/fixtures/ibt ]; then
  while IFS= read -r f; do
    if "$DRIVER" inspect "$f" >/dev/null 2>&1; then IBT=$(realpath "$f"); break; fi
  done < <(ls -S ../shared/fixtures/ibt/*.ibt 2>/dev/null)
fi

cars=()
if [ ${#demo[@]} -gt 0 ]; then
  for n in 1 2 3; do
    user=${demo[$((5 + 3 * (n - 1)))]}
    password=${demo[$((6 + 3 * (n - 1)))]}
    number=${demo[$((7 + 3 * (n - 1)))]}
    home="$DATA_DIR/demo-nodes/$n"
    log="$LOGS/node-$n.log"
    mkdir -p "$home"
    printf '\n=== %s: %s\n' "$(date -Is)" "$user" >>"$log"
    if ! PITBOX_DRIVER_HOME="$home" PITBOX_PASSWORD="$password" \
      "$DRIVER" login --server "$URL" --username "$user" >>"$log" 2>&1; then
      say "warning: $user could not log in; see $log"
      continue
    fi
    # Each car its own driving, so the map shows three cars spread round the lap and the coach has
    # something to say (corners T1..T10 of the synthetic track, see `pitbox-driver run --help`).
    case "$n" in
      1) drive=(--source synthetic) what="synthetic driver: clean and fast, from the line" ;;
      2) drive=(--source synthetic --start-at 0.4 --pace 1.012 --brake-early 4:20 --late-throttle 7:30 --inconsistency 6 --fuel-leak 0.8)
         what="synthetic driver: starts at 40 % of the lap, brakes 20 m early at T4, late on the throttle out of T7, leaks 0.8 l of fuel a lap" ;;
      *) if [ -n "$IBT" ]; then
           drive=(--source "ibt:$IBT" --loop) what="replay of $(basename "$IBT"), looping"
         else
           drive=(--source synthetic --start-at 0.7 --pace 1.025 --coast 1:50 --fuel-leak 1.5)
           what="synthetic driver: starts at 70 % of the lap, coasts 50 m before T1, leaks 1.5 l of fuel a lap"
         fi ;;
    esac
    PITBOX_DRIVER_HOME="$home" RUST_LOG=${RUST_LOG:-info} NO_COLOR=1 \
      "$DRIVER" run "${drive[@]}" --seed "$n" --api off --no-video --no-voice >>"$log" 2>&1 &
    pids+=($!)
    cars+=("#$number $user: $what")
  done
fi

{
  echo
  echo "PitBox is running."
  echo "  Dashboard:  $URL/"
  if [ ${#demo[@]} -gt 0 ]; then
    echo "  Log in as:  ${demo[2]}  /  ${demo[3]}   (engineer of \"${demo[1]}\")"
    for c in "${cars[@]}"; do echo "  Car:        $c"; done
    echo "              (the drivers' logins: $DATA_DIR/demo-credentials.json)"
  fi
  if [ ${#demo[@]} -gt 0 ] && [ -n "${demo[4]}" ]; then
    echo "  Admin:      admin  /  ${demo[4]}   (users, teams; the actor tree at $URL/admin/actors)"
  else
    echo "  Admin:      admin, whose password was written when it was created (to $DATA_DIR/admin-password);"
    echo "              set a new one with: $RUNTIME user passwd admin"
  fi
  echo "  API:        $URL/api/openapi.json"
  echo "  Logs:       $LOGS/"
  echo
  echo "Ctrl-C stops the runtime and the driver nodes."
} >&2

status=0
wait "$runtime_pid" || status=$?
runtime_pid=""
if [ "$status" = 0 ]; then
  say "the runtime stopped"
else
  say "the runtime failed (exit $status); the end of its log:"
  tail -n 20 "$LOGS/runtime.log" >&2
fi
exit "$status"
