"""Helpers for lab tests: a store in its own namespace, the lab's small ARI/AMI clients, agent phones."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from lab.ami_client import LabAmi  # scripts/lab: on sys.path through tests/conftest.py
from lab.ari_client import LabAri

from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient, connect
from asterisk_cb.store import Store


@pytest.fixture
async def redis(lab_redis_url: str) -> AsyncIterator[RedisClient]:
    """A client of the lab's Redis, for tests that look at the keys a store wrote (the store keeps its own
    client to itself)."""
    client = connect(lab_redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis: RedisClient) -> AsyncIterator[Store]:
    """A store in a random namespace of the lab's Redis; the test's keys (and only those) go afterwards."""
    store = Store(redis, Keys("test-" + uuid.uuid4().hex[:12]))
    yield store
    await store.delete_namespace()


@pytest.fixture
async def ari(lab_ari: dict[str, str]) -> AsyncIterator[LabAri]:
    """A fresh ARI session (websocket + REST) on its own Stasis app name."""
    app = f"acb-test-{uuid.uuid4().hex[:8]}"
    async with LabAri(lab_ari["url"], lab_ari["user"], lab_ari["password"], app) as client:
        yield client


@pytest.fixture
async def ami(lab_ami_harness: dict[str, Any]) -> AsyncIterator[LabAmi]:
    """A fresh, logged-in AMI connection as the harness user; it sees every event (read=all)."""
    harness = lab_ami_harness
    async with LabAmi(harness["host"], harness["port"], harness["user"], harness["secret"]) as client:
        yield client


@pytest.fixture
def agent_phone(lab: dict[str, Any], pbx_lab_run: Callable[..., str]) -> Iterator[Callable[..., None]]:
    """Set agent phones' behaviour (`pbx-lab phone`); every phone touched answers again afterwards."""
    touched: set[str] = set()

    def set_behaviour(agent: str, behaviour: str, *extra: str) -> None:
        touched.add(agent)
        pbx_lab_run("phone", agent, behaviour, *extra)

    yield set_behaviour
    for agent in sorted(touched):
        pbx_lab_run("phone", agent, "answer")
