"""``asterisk-cb events groups`` and ``events drop-group`` against the lab's Redis (own namespace)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from asterisk_cb.cli import main
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab


@pytest.fixture
def namespace(lab_redis_url: str) -> Iterator[str]:
    name = "test-cli-events-" + uuid.uuid4().hex[:10]
    yield name
    asyncio.run(in_store(lab_redis_url, name, "delete"))


async def in_store(url: str, namespace: str, action: str) -> None:
    redis = connect(url)
    store = Store(redis, Keys(namespace))
    try:
        if action == "delete":
            await store.delete_namespace()
        else:
            await store.ensure_group("cel-writer", "0")
            await redis.xadd(store.keys.events, {"cb": "c1", "kind": "created", "at": "1", "v": "1"})
            await store.read_group("cel-writer", "daemon-a")  # one pending entry
    finally:
        await redis.aclose()


def config(tmp_path: Path, url: str, namespace: str) -> Path:
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(
        f"[general]\n[redis]\nurl = {url}\nnamespace = {namespace}\n[ari]\nuser = a\npassword = b\n"
        "[ami]\nuser = a\nsecret = b\n[dialing]\noutbound_context = out\n[agents]\n1001 = PJSIP/1001\n"
    )
    return path


def test_groups_are_listed_and_only_known_ones_dropped(
    tmp_path: Path, lab_redis_url: str, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, lab_redis_url, namespace)
    assert main(["--config", str(path), "events", "groups"]) == 0
    assert "0 group(s)" in capsys.readouterr().out

    asyncio.run(in_store(lab_redis_url, namespace, "fill"))
    assert main(["--config", str(path), "events", "groups"]) == 0
    out = capsys.readouterr().out
    (row,) = [line.split() for line in out.splitlines() if line.startswith("cel-writer")]
    assert row[1:4] == ["1", "1", "0"]  # one consumer, one pending, nothing undelivered

    assert main(["--config", str(path), "events", "drop-group", "metrics"]) == 3
    err = capsys.readouterr().err
    assert "no consumer group 'metrics'" in err and "cel-writer" in err
    assert "Traceback" not in err and err.count("\n") == 1

    assert main(["--config", str(path), "events", "drop-group", "cel-writer"]) == 0
    assert "cel-writer dropped" in capsys.readouterr().out
    assert main(["--config", str(path), "events", "groups"]) == 0
    assert "0 group(s)" in capsys.readouterr().out


def test_unreachable_redis_is_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, "redis://127.0.0.1:9/0", "nowhere")
    assert main(["--config", str(path), "events", "groups"]) == 4
    assert "cannot reach Redis" in capsys.readouterr().err
