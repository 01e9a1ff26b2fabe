#!/usr/bin/env bash
# tools/bench-report.sh — run every benchmark of the workspace and write one report, so each
# figure can be compared run to run: bench-report/report.md (the figures as each bench prints
# them, under a heading per bench, with the command and its time) and bench-report/report.json
# (the same as data: name, command, seconds, exit code, printed lines, and every "name: number
# unit" figure found in them).
#
# Usage: bash tools/bench-report.sh [--quick]      (--quick: short runs, a few minutes in all)
# env:   PITBOX_BENCH_ONLY (space-separated names to run, e.g. "fanout coach"),
#        PITBOX_BENCH_DATABASE_URL (passed to the fan-out bench: PostgreSQL instead of SQLite),
#        BENCH_REPORT_DIR (default bench-report/)
# The benches themselves: runtime/benches/{fanout,dashboard}.rs, driver-node/benches/node.rs,
# the load generator (loadgen/run.sh),
# coach/benches/analysis.rs, schema/benches/decode.rs (a node's batch decoded), and the driver node's video encode bench when built with it.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
quick=0
[ "${1:-}" = --quick ] && quick=1
out=${BENCH_REPORT_DIR:-bench-report}
mkdir -p "$out/raw"

secs=15; stream=20; fan_sets=("--drivers 100 --dashboards 200" "--drivers 200 --dashboards 400" "--drivers 400 --dashboards 800 --batch 10")
if [ "$quick" = 1 ]; then
  secs=4; stream=5; fan_sets=("--drivers 50 --dashboards 100")
fi

declare -a names cmds
add() { names+=("$1"); cmds+=("$2"); }
i=0
for set in "${fan_sets[@]}"; do
  i=$((i + 1))
  add "fanout-$i" "cargo bench -q -p pitbox-runtime --bench fanout --locked -- $set --secs $secs"
done
add "coach" "cargo bench -q -p pitbox-coach --bench analysis --locked"
add "decode" "cargo bench -q -p pitbox-schema --bench decode --locked"
add "node" "cargo build -q --release -p pitbox-runtime --locked && PITBOX_BENCH_STREAM_SECS=$stream PITBOX_BENCH_BACKLOG=$((stream * 1800)) cargo bench -q -p pitbox-driver --bench node --locked"
if [ -f dashboard-yew/dist/index.html ] && command -v chromium >/dev/null; then
  add "dashboard" "cargo build -q -p pitbox-driver --locked && cargo bench -q -p pitbox-runtime --bench dashboard --locked -- --secs $secs"
fi
# The load generator against the release runtime, and against the Python baseline relay when
# python3 has `websockets` (loadgen/run.sh starts and stops each server).
add "loadgen" "bash loadgen/run.sh pitbox --drivers $((quick ? 50 : 100)) --secs $secs"
if python3 -c 'import websockets' 2>/dev/null; then
  add "loadgen-relay" "bash loadgen/run.sh relay --drivers $((quick ? 50 : 100)) --secs $secs"
fi
if grep -q 'name = "video"' driver-node/Cargo.toml 2>/dev/null; then
  add "video" "cargo bench -q -p pitbox-driver --bench video --locked"
fi

only=" ${PITBOX_BENCH_ONLY:-} "
: > "$out/raw/index.tsv"
for n in "${!names[@]}"; do
  name=${names[$n]}; cmd=${cmds[$n]}
  if [ "$only" != "  " ] && [[ "$only" != *" ${name%%-*} "* ]] && [[ "$only" != *" $name "* ]]; then
    continue
  fi
  echo "== $name: $cmd" >&2
  t0=$(date +%s)
  bash -c "$cmd" > "$out/raw/$name.txt" 2> "$out/raw/$name.err"
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$(( $(date +%s) - t0 ))" "$rc" "$cmd" >> "$out/raw/index.tsv"
  tail -n 40 "$out/raw/$name.txt" >&2
done

python3 - "$out" <<'PY'
import json, re, sys, datetime, platform, os
out = sys.argv[1]
rows = [l.rstrip("\n").split("\t", 3) for l in open(f"{out}/raw/index.tsv") if l.strip()]
# A figure is a number with a unit, named by its line's label (the text before the first colon)
# and the word just before it: "60 Hz: coach.add_lap   median 0.113 ms" → "60 Hz median", 0.113, ms.
pair = re.compile(r"(?:([A-Za-z][\w/().-]*)\s+)?(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*(ms|µs|us|ns|s|%|MiB|KiB|GiB|MB/s|samples/s|rows/s|frames/s|fps|kbps|Mbps)(?![\w])")
def figures(line):
    label, sep, rest = line.partition(":")
    if not sep:
        label, rest = "", line
    return [{"name": " ".join(x for x in (label.strip(), m.group(1) or "") if x), "value": float(m.group(2)), "unit": m.group(3)}
            for m in pair.finditer(rest)]
report = {"date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z",
          "machine": {"cpus": os.cpu_count(), "system": platform.platform()}, "benches": []}
md = [f"# PitBox benchmark report", "", f"{report['date']} · {os.cpu_count()} CPUs · {platform.platform()}", ""]
for name, secs, rc, cmd in rows:
    lines = open(f"{out}/raw/{name}.txt", errors="replace").read().splitlines()
    figs = [f for l in lines for f in figures(l)]
    report["benches"].append({"name": name, "command": cmd, "seconds": int(secs), "exit": int(rc),
                              "lines": lines, "figures": figs})
    md += [f"## {name}", "", f"`{cmd}` — {secs} s" + ("" if rc == "0" else f" — **failed (exit {rc})**, see raw/{name}.err"), "", "```"] + lines + ["```", ""]
json.dump(report, open(f"{out}/report.json", "w"), indent=1)
open(f"{out}/report.md", "w").write("\n".join(md))
print(f"wrote {out}/report.md and {out}/report.json ({len(rows)} benches)")
PY
