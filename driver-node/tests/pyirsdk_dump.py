"""Dump channels and session info of iRacing telemetry with pyirsdk, as JSON on stdout.

Used by tests/ibt.rs to cross-check our parser against an independent one:

    python3 pyirsdk_dump.py FILE...

For an .ibt file every row of each channel (irsdk.IBT().get_all); for a live shared-memory dump
(*.bin) the newest buffer (irsdk.IRSDK(test_file=...)). Session info always through
IRSDK(test_file=...), which applies pyirsdk's YAML repairs. NaN becomes null.
Needs `pip install pyirsdk`. Reads no env vars.
"""

import json
import math
import os
import sys

import irsdk

CHANNELS = [
    "SessionTime", "Speed", "RPM", "Lap", "LapDistPct", "FuelLevel",
    "Gear", "OnPitRoad", "SessionFlags", "SteeringWheelTorque_ST",
]


def clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def session(path):
    ir = irsdk.IRSDK()
    if not ir.startup(test_file=path):
        return None
    weekend, drivers = ir["WeekendInfo"] or {}, ir["DriverInfo"] or {}
    out = {
        "TrackName": weekend.get("TrackName"),
        "TrackDisplayName": weekend.get("TrackDisplayName"),
        "DriverCarIdx": drivers.get("DriverCarIdx"),
        "Drivers": [
            {k: str(d.get(k)) for k in ("UserName", "CarNumber", "CarScreenName")}
            for d in drivers.get("Drivers") or []
        ],
        "latest": {name: clean(ir[name]) for name in CHANNELS if name in ir._var_headers_dict},
    }
    ir.shutdown()
    return out


def recording(path):
    ibt = irsdk.IBT()
    ibt.open(path)
    try:
        names = set(ibt.var_headers_names)
        channels = {name: clean(ibt.get_all(name)) for name in CHANNELS if name in names}
        return {"records": ibt._disk_header.session_record_count, "channels": channels}
    finally:
        ibt.close()


def main(paths):
    out = {}
    for path in paths:
        entry = {"session": session(path)}
        if not path.endswith(".bin"):
            entry.update(recording(path))
        out[os.path.basename(path)] = entry
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
