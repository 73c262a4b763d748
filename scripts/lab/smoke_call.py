"""scripts/smoke-call: a real call through the lab, end to end, until the daemon exists.

Originates a call to an agent phone through ARI into a Stasis app, waits (on the ARI websocket)
for the agent to answer, hangs up, then finds the call's CDR row in PostgreSQL by its uniqueid and
requires disposition ANSWERED. Exits non-zero with a clear message on any failure. Needs the
project's virtualenv (aiohttp, asyncpg) and a running lab (scripts/pbx-lab up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.ari_client import LabAri

PBX_LAB = Path(__file__).resolve().parents[1] / "pbx-lab"
APP = "asterisk-cb-smoke"
CDR_COLUMNS = "calldate, src, dst, channel, lastapp, disposition, duration, billsec, uniqueid, linkedid"


class SmokeFailure(Exception):
    """What went wrong, in words for the person who ran the command."""


def lab_info() -> dict[str, Any]:
    command = [sys.executable, str(PBX_LAB), "env", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SmokeFailure(f"scripts/pbx-lab env failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def _is_for(channel_id: str, *types: str) -> Any:
    return lambda event: event.get("type") in types and event.get("channel", {}).get("id") == channel_id


async def _call(ari: LabAri, agent: str, channel_id: str, hold_s: float, say: Any) -> None:
    started = time.monotonic()
    await ari.originate(f"PJSIP/{agent}", channel_id, timeout_s=20)
    say(f"ringing agent {agent} (PJSIP/{agent}), channel {channel_id}")
    first = await ari.wait_for(_is_for(channel_id, "StasisStart", "ChannelDestroyed"), timeout_s=25)
    if first["type"] == "ChannelDestroyed":
        raise SmokeFailure(
            f"agent {agent} did not answer: {first.get('cause_txt')} (cause {first.get('cause')}); is its "
            f"phone set to answer? (scripts/pbx-lab phone {agent} answer)"
        )
    state = first["channel"]["state"]
    if state != "Up":
        raise SmokeFailure(f"the channel entered Stasis in state {state}, not Up")
    say(f"answered after {time.monotonic() - started:.2f} s: StasisStart in app {APP}, channel state {state}")
    await asyncio.sleep(hold_s)
    await ari.request("DELETE", f"channels/{channel_id}")
    destroyed = await ari.wait_for(_is_for(channel_id, "ChannelDestroyed"), timeout_s=10)
    say(f"hung up: ChannelDestroyed, cause {destroyed.get('cause')} ({destroyed.get('cause_txt')})")


async def _cdr_row(dsn: str, uniqueid: str, timeout_s: float = 10) -> dict[str, Any]:
    """The CDR row Asterisk wrote for uniqueid (written right after hangup; polled briefly)."""
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            row = await connection.fetchrow(f"SELECT {CDR_COLUMNS} FROM cdr WHERE uniqueid = $1", uniqueid)
            if row is not None:
                return {key: str(value) for key, value in row.items()}
            if time.monotonic() > deadline:
                raise SmokeFailure(
                    f"no CDR row with uniqueid {uniqueid} after {timeout_s:.0f} s (cdr_pgsql?)"
                )
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


async def smoke(agent: str, hold_s: float, say: Any) -> dict[str, Any]:
    """The whole smoke call; returns what a caller (or a test) needs to check it independently."""
    info = lab_info()
    if agent not in info["agents"]:
        raise SmokeFailure(f"unknown agent {agent}; the lab's agents: {' '.join(info['agents'])}")
    ari_info = info["ari"]
    channel_id = f"smoke-{agent}-{time.time_ns()}"
    try:
        async with LabAri(ari_info["url"], ari_info["user"], ari_info["password"], APP) as ari:
            await _call(ari, agent, channel_id, hold_s, say)
    except aiohttp.ClientConnectionError as problem:
        raise SmokeFailure(f"ARI is not reachable ({problem}): is the lab up? (scripts/pbx-lab up)") from None
    except TimeoutError:
        raise SmokeFailure("timed out waiting for an ARI event (see scripts/pbx-lab status)") from None
    try:
        cdr = await _cdr_row(info["postgres"]["dsn"], channel_id)
    except (OSError, asyncpg.PostgresError) as problem:
        raise SmokeFailure(
            f"the lab database is not reachable ({problem}): scripts/pbx-lab up postgres"
        ) from None
    say("CDR row: " + ", ".join(f"{key}={value}" for key, value in cdr.items()))
    if cdr["disposition"] != "ANSWERED":
        raise SmokeFailure(f"the CDR disposition is {cdr['disposition']}, expected ANSWERED")
    return {"agent": agent, "channel_id": channel_id, "cdr": cdr}


def main() -> int:
    parser = argparse.ArgumentParser(prog="smoke-call", description=__doc__)
    parser.add_argument("--agent", default="1001", help="agent extension to call (default 1001)")
    parser.add_argument("--hold-s", type=float, default=1.0, help="seconds to stay on the call")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (for tests)")
    args = parser.parse_args()
    say = (lambda _: None) if args.json else (lambda line: print(f"smoke-call: {line}", flush=True))
    try:
        result = asyncio.run(smoke(args.agent, args.hold_s, say))
    except SmokeFailure as failure:
        print(f"smoke-call: FAILED: {failure}", file=sys.stderr)
        return 1
    print(json.dumps(result) if args.json else "smoke-call: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
