#!/usr/bin/env python3
"""The baseline: a minimal asyncio WebSocket relay in the original PitBox's shape, which stores
nothing. It is what a team would otherwise run, measured beside PitBox by the same load generator
(`pitbox-loadgen --target relay`).

Protocol (the original documents, /work/shared/reference/original-technical-documentation.md):
the server greets with `connection_established`; the client sends `authenticate` and gets
`authentication_result` (any token is taken, and it names the client's team, standing in for a
token's team claim); a driver sends `telemetry_update` (one sample) or `telemetry_batch` (frames
with sequence numbers) and gets an `ack` of the highest sequence number; a dashboard sends
`subscribe` {teamId} and receives every sample of its team's drivers as `telemetry_update`, at
once (no rate limit: the original forwarded each update). A dashboard that cannot keep up is
skipped for that message (websockets' broadcast), so slow readers never slow writers.

Usage: python3 relay.py [--host 127.0.0.1] [--port 0]
Prints `listening on HOST:PORT` on stdout once it accepts connections. Reads no env vars.
Needs Python 3.11 and the `websockets` package (tools/setup.sh installs it).
"""

import argparse
import asyncio
import datetime
import json
import os
import uuid

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

SERVER_ID = f"relay-{uuid.uuid4().hex[:8]}"
PROTOCOL = 1

# team id -> dashboards subscribed to it
subscribers: dict[str, set] = {}


def dumps(kind, data):
    # "type" first, compact: the shape PitBox sends too.
    return json.dumps({"type": kind, "data": data}, separators=(",", ":"))


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


async def handler(ws):
    team = None
    subscribed = None
    await ws.send(dumps("connection_established", {
        "serverId": SERVER_ID, "timestamp": now(), "version": "relay", "protocol": PROTOCOL,
    }))
    try:
        async for raw in ws:
            if not isinstance(raw, str):
                continue
            try:
                msg = json.loads(raw)
                kind, data = msg.get("type"), msg.get("data") or {}
            except (ValueError, AttributeError):
                continue
            if kind == "authenticate":
                team = str(data.get("token", ""))
                await ws.send(dumps("authentication_result", {
                    "success": True, "userId": team, "role": "driver"
                    if str(data.get("clientType", "")).startswith("driver") else "team",
                }))
            elif team is None:
                await ws.send(dumps("error", {"code": "not_authenticated", "message": "authenticate first"}))
            elif kind == "telemetry_batch":
                driver = data.get("driverId")
                frames = data.get("frames") or []
                targets = subscribers.get(team)
                if targets:
                    for frame in frames:
                        broadcast(targets, dumps("telemetry_update", {"driverId": driver, **frame}))
                seqs = [f["seq"] for f in frames if isinstance(f.get("seq"), int)]
                if seqs:
                    ack = {"driverId": driver, "seq": max(seqs)}
                    if data.get("streamId") is not None:
                        ack["streamId"] = data["streamId"]
                    await ws.send(dumps("ack", ack))
            elif kind == "telemetry_update":
                targets = subscribers.get(team)
                if targets:
                    broadcast(targets, dumps("telemetry_update", data))
            elif kind == "subscribe":
                wanted = str(data.get("teamId", ""))
                if subscribed is not None:
                    subscribers.get(subscribed, set()).discard(ws)
                subscribed = wanted
                subscribers.setdefault(wanted, set()).add(ws)
                await ws.send(dumps("subscribed", {
                    "teamId": wanted, "rateHz": 60, "drivers": [],
                }))
    except ConnectionClosed:
        # A client that goes away without a close frame (a killed load run) is no error here.
        pass
    finally:
        if subscribed is not None:
            subscribers.get(subscribed, set()).discard(ws)


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    # The drivers' uplink connects to `/ws`; any path is served.
    async with serve(handler, args.host, args.port, max_size=16 * 1024 * 1024, ping_interval=20) as server:
        host, port = server.sockets[0].getsockname()[:2]
        print(f"listening on {host}:{port} pid {os.getpid()}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
