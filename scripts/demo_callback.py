"""The README's main job: one real scheduled callback, end to end, on the lab PBX.

Starts `asterisk-cb run` against the lab (its own Redis namespace, a config written from
`scripts/pbx-lab env`), schedules a callback a few seconds ahead with `asterisk-cb schedule` as an admin
would, and prints the callback's story as it happens, read from the daemon's event stream: scheduled,
agent ringing, agent answered, contact ringing, contact answered, completed. Then the SIPp side's count
of INVITEs to the contact and the CDR rows of the call. Exits non-zero, with the reason, if the callback
does not complete within the time limit. Needs the lab up (scripts/pbx-lab up) and the virtualenv.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from lab.info import describe
from lab.settings import load as load_lab_settings

from asterisk_cb.core.model import EventKind, State
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.secrecy import write_private
from asterisk_cb.store import Store

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
CDR_WAIT_TRIES = 10
FINISHED = {EventKind.COMPLETED, EventKind.EXHAUSTED, EventKind.EXPIRED, EventKind.CANCELLED}


def lab_env() -> dict[str, Any]:
    """What `scripts/pbx-lab env --json` prints, read in-process (this script sits beside the lab)."""
    return describe(load_lab_settings())


def write_config(lab: dict[str, Any], namespace: str, path: Path) -> None:
    """A config an admin would write for this PBX; short delays so the demo takes seconds."""
    agents = "\n".join(f"{agent} = {info['endpoint']}" for agent, info in sorted(lab["agents"].items()))
    write_private(
        path,
        f"""; Written by scripts/demo_callback.py for the lab PBX.
[general]
reschedule_delay = 5s
retry_interval = 10s
agent_ring_timeout = 15s
contact_ring_timeout = 20s

[redis]
url = {lab["redis"]["url"]}
namespace = {namespace}

[ari]
url = {lab["ari"]["url"]}
user = {lab["ari"]["user"]}
password = {lab["ari"]["password"]}
app = {lab["ari"]["app"]}

[ami]
host = {lab["ami"]["host"]}
port = {lab["ami"]["port"]}
user = {lab["ami"]["user"]}
secret = {lab["ami"]["secret"]}

[dialing]
outbound_context = {lab["dialplan"]["outbound_context"]}

[agents]
{agents}
""",
    )


def say(text: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S.%f}"[:-3] + f"  {text}", flush=True)


def schedule(config: Path, agent: str, number: str, due: datetime) -> str:
    command = [
        str(VENV_BIN / "asterisk-cb"), "--config", str(config), "schedule",
        "--agent", agent, "--number", number, "--name", "Demo Contact",
        "--at", due.isoformat(timespec="seconds"), "--note", "promised during the demo",
    ]  # fmt: skip
    say("$ " + " ".join(command[3:]))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    print(result.stdout, end="")
    if result.returncode != 0:
        raise SystemExit(f"demo: scheduling failed: {result.stderr.strip()}")
    return result.stdout.splitlines()[2].split()[0]  # the table's first data row, first column


async def follow(store: Store, callback_id: str, deadline: float) -> EventKind:
    """Print this callback's events as the daemon appends them; return the finishing one."""
    await store.ensure_group("demo", "0")
    while time.monotonic() < deadline:
        for entry in await store.read_group("demo", "demo", block_ms=1000):
            event = entry.event
            if event.callback_id != callback_id:
                continue
            details = ", ".join(f"{key}={value}" for key, value in sorted(event.attributes.items()))
            say(f"event {event.kind.value:<17} {details}")
            if event.kind in FINISHED:
                return event.kind
    raise SystemExit("demo: the callback did not finish in time (see the daemon log above)")


def count_invites(lab: dict[str, Any], number: str) -> int:
    folder = Path(lab["contacts"]["invite_dir"])
    lines = (line.split() for path in folder.glob("*") for line in path.read_text().splitlines())
    return sum(1 for parts in lines if len(parts) >= 2 and parts[1] == number)


async def print_cdr(lab: dict[str, Any], channel_ids: set[str]) -> None:
    """Channels originated over ARI with a channelId get it as their uniqueid: that finds the rows."""
    connection = await asyncpg.connect(lab["postgres"]["dsn"])
    try:
        for _ in range(CDR_WAIT_TRIES):  # Asterisk writes a CDR row as its channel goes: give it a moment
            rows = await connection.fetch(
                "SELECT channel, dstchannel, disposition, billsec FROM cdr WHERE uniqueid = ANY($1::text[]) "
                "OR linkedid = ANY($1::text[]) ORDER BY calldate, sequence",
                list(channel_ids),
            )
            if len(rows) >= 2:
                break
            await asyncio.sleep(0.5)
    finally:
        await connection.close()
    say(f"CDR rows of the callback's calls: {len(rows)}")
    for row in rows:
        print(
            f"    {row['channel']:<36} -> {row['dstchannel']:<36} {row['disposition']:<9} {row['billsec']}s"
        )


async def main(args: argparse.Namespace) -> int:
    lab = lab_env()
    namespace = f"demo-{uuid.uuid4().hex[:8]}"
    lab_dir = Path(lab["lab_dir"])
    config = lab_dir / "asterisk-cb-demo.conf"
    write_config(lab, namespace, config)
    daemon_log = (lab_dir / "log" / "asterisk-cb-demo.log").open("w")
    say(f"starting asterisk-cb run (config {config}, log {daemon_log.name})")
    daemon = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "asterisk-cb"), "--config", str(config), "run", stderr=daemon_log, env=os.environ
    )
    redis = connect(lab["redis"]["url"])
    store = Store(redis, Keys(namespace))
    try:
        # The contact "answers, talks, hangs up after N s": lab numbers 201SS... do exactly that.
        number = f"201{args.talk_s:02d}" + "".join(random.choices("0123456789", k=6))
        callback_id = schedule(
            config, args.agent, number, datetime.now(UTC) + timedelta(seconds=args.due_in_s)
        )
        finished = await follow(store, callback_id, time.monotonic() + args.timeout_s)
        callback = await store.get(callback_id)
        assert callback is not None
        channel_ids = {channel for attempt in callback.attempts for channel in attempt.channel_ids}
        invites = count_invites(lab, number)
        say(
            f"callback {callback_id}: {callback.state.value}; INVITEs the contact's phone received: {invites}"
        )
        await print_cdr(lab, channel_ids)
        return (
            0 if finished is EventKind.COMPLETED and callback.state is State.COMPLETED and invites == 1 else 1
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        await asyncio.wait_for(daemon.wait(), 15)
        await store.delete_namespace()
        await redis.aclose()
        daemon_log.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="1001", help="the lab agent who promised the call")
    parser.add_argument("--due-in-s", type=int, default=5, help="schedule the callback this far ahead")
    parser.add_argument("--talk-s", type=int, default=4, help="how long the contact talks (1-99)")
    parser.add_argument("--timeout-s", type=int, default=90, help="give up after this long")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
