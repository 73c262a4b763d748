"""Fixtures for the telephony unit tests: a fake ARI, a client pointed at it, its events stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ari_fake import FakeAri

from asterisk_cb.telephony.ari import AriClient, AriSettings
from asterisk_cb.telephony.ari_stream import AriEventStream


@pytest.fixture
async def fake_ari() -> AsyncIterator[FakeAri]:
    fake = FakeAri()
    fake.url = await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def ari_client(fake_ari: FakeAri) -> AsyncIterator[AriClient]:
    settings = AriSettings(url=fake_ari.url, username="acb", password="secret", app="asterisk-cb")
    async with AriClient(settings) as client:
        yield client


@pytest.fixture
async def events(ari_client: AriClient) -> AsyncIterator[AriEventStream]:
    """The events stream on the fake ARI, ready."""
    stream = AriEventStream(ari_client)
    stream.start()
    await stream.wait_ready(3)
    yield stream
    await stream.stop()
