#!/usr/bin/env bash
# tools/services.sh — make sure the local PostgreSQL (and, for cluster work, NATS) that the test
# suite uses is running; starts them if installed but stopped. Prints the PostgreSQL URL for tests.
#
# env: PITBOX_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail

URL=${PITBOX_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  echo "services: starting PostgreSQL $ver" >&2
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || true
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
fi
if pg_up; then
  echo "$URL"
else
  echo "services: PostgreSQL is not reachable on 127.0.0.1:5432" >&2
  exit 1
fi

if [ -x /usr/sbin/nats-server ] && ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  echo "services: starting NATS" >&2
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server >&2 || true
fi
