#!/usr/bin/env bash
# tools/run.sh [serve flags...] — set up and run PitBox on the embedded default (SQLite in
# ./pitbox-data): installs build needs, builds the release runtime, starts `pitbox-runtime serve`.
# On first start (dev mode) an `admin` user is created and its password printed in the log.
#
# env: every PITBOX_* setting of `pitbox-runtime serve --help` (e.g. PITBOX_BIND, DATABASE_URL)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/setup.sh
cargo build --release --locked -p pitbox-runtime
echo "PitBox runtime on http://${PITBOX_BIND:-127.0.0.1:8080}  (API description: /api/openapi.json)" >&2
exec target/release/pitbox-runtime serve "$@"
