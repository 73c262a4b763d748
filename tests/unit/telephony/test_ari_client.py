"""The REST client against the fake ARI: typed results, one exception class per failure kind."""

from __future__ import annotations

import socket
import time

import pytest
from ari_fake import FakeAri

from asterisk_cb.telephony.ari import (
    AriAuthError,
    AriClient,
    AriClosed,
    AriConflict,
    AriDeadlinePassed,
    AriSettings,
    AriUnavailable,
    ChannelGone,
    ChannelNotInStasis,
)


async def test_originate_sends_ids_app_and_variables(ari_client: AriClient, fake_ari: FakeAri) -> None:
    channel = await ari_client.originate(
        "PJSIP/1001",
        channel_id="acb-7-agent",
        other_channel_id="acb-7-agent-2",
        caller_id='"CB 0612345678" <0612345678>',
        timeout_s=20,
        variables={"ACB_CALLBACK_ID": "7"},
    )
    assert channel.id == "acb-7-agent"
    method, path, query, body = fake_ari.requests[-1]
    assert (method, path) == ("POST", "/ari/channels")
    assert query["app"] == "asterisk-cb"
    assert query["timeout"] == "20"
    assert query["otherChannelId"] == "acb-7-agent-2"
    assert "appArgs" not in query
    assert body == {"variables": {"ACB_CALLBACK_ID": "7"}}


async def test_second_originate_with_same_id_is_a_conflict_not_a_second_call(ari_client: AriClient) -> None:
    await ari_client.originate("PJSIP/1001", channel_id="acb-8-agent")
    with pytest.raises(AriConflict):
        await ari_client.originate("PJSIP/1001", channel_id="acb-8-agent")


async def test_missing_channel_is_channel_gone(ari_client: AriClient) -> None:
    with pytest.raises(ChannelGone):
        await ari_client.get_channel("acb-nope")
    with pytest.raises(ChannelGone):
        await ari_client.hangup("acb-nope", reason="busy")


async def test_bridging_a_channel_not_yet_in_stasis_is_its_own_error(ari_client: AriClient) -> None:
    with pytest.raises(ChannelNotInStasis, match="422 Channel not in Stasis application"):
        await ari_client.add_channel("acb-1", "acb-1-contact")


async def test_channel_action_before_stasis_start_is_not_in_stasis(
    ari_client: AriClient, fake_ari: FakeAri
) -> None:
    await ari_client.originate("PJSIP/1001", channel_id="acb-11-contact")
    fake_ari.channels["acb-11-contact"]["in_stasis"] = False
    with pytest.raises(ChannelNotInStasis, match="409"):
        await ari_client.dial("acb-11-contact", timeout_s=10)


async def test_hangup_sends_reason(ari_client: AriClient, fake_ari: FakeAri) -> None:
    await ari_client.originate("PJSIP/1001", channel_id="acb-9-agent")
    await ari_client.hangup("acb-9-agent", reason="no_answer")
    assert fake_ari.requests[-1][:3] == ("DELETE", "/ari/channels/acb-9-agent", {"reason": "no_answer"})
    assert "acb-9-agent" not in fake_ari.channels


async def test_get_variable_tells_unset_from_channel_gone(ari_client: AriClient, fake_ari: FakeAri) -> None:
    await ari_client.originate("PJSIP/1001", channel_id="acb-10-agent")
    fake_ari.channels["acb-10-agent"]["channelvars"] = {"ACB_ATTEMPT": "2"}
    assert await ari_client.get_variable("acb-10-agent", "ACB_ATTEMPT") == "2"
    assert await ari_client.get_variable("acb-10-agent", "UNSET") is None
    with pytest.raises(ChannelGone):
        await ari_client.get_variable("acb-gone", "ACB_ATTEMPT")


async def test_wrong_password_is_an_auth_error(fake_ari: FakeAri) -> None:
    settings = AriSettings(url=fake_ari.url, username="acb", password="wrong", app="asterisk-cb")
    async with AriClient(settings) as client:
        with pytest.raises(AriAuthError, match="401"):
            await client.ping()


async def test_slow_asterisk_is_unavailable_after_the_timeout(fake_ari: FakeAri) -> None:
    fake_ari.delay_s = 1.0
    settings = AriSettings(
        url=fake_ari.url, username="acb", password="secret", app="asterisk-cb", request_timeout_s=0.2
    )
    async with AriClient(settings) as client:
        with pytest.raises(AriUnavailable, match="timed out"):
            await client.ping()


async def test_nothing_listening_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = AriSettings(url=f"http://127.0.0.1:{port}/ari", username="a", password="b", app="x")
    async with AriClient(settings) as client:
        with pytest.raises(AriUnavailable, match="GET /asterisk/ping failed"):
            await client.ping()


def test_events_url_follows_the_scheme() -> None:
    plain = AriSettings(url="http://pbx:8088/ari", username="u", password="p", app="a b")
    tls = AriSettings(url="https://pbx:8089/ari/", username="u", password="p", app="cb")
    assert plain.events_url == "ws://pbx:8088/ari/events?app=a%20b&subscribeAll=false"
    assert tls.events_url == "wss://pbx:8089/ari/events?app=cb&subscribeAll=false"


async def test_a_closed_client_refuses_requests_instead_of_opening_a_session_nobody_closes(
    fake_ari: FakeAri,
) -> None:
    """A shielded effect still finishing when the daemon stops must not open a new session (it would
    leak: seen as "Unclosed client session" warnings after the executor tests)."""
    settings = AriSettings(url=fake_ari.url, username="acb", password="secret", app="asterisk-cb")
    client = AriClient(settings)
    await client.create_bridge("b1", name="callback")
    asked = sum(fake_ari.calls.values())
    await client.close()
    with pytest.raises(AriClosed):
        await client.create_bridge("b2", name="callback")
    assert sum(fake_ari.calls.values()) == asked
    async with client:  # opened again on purpose: it works again
        await client.create_bridge("b3", name="callback")


async def test_a_request_past_its_deadline_is_not_sent(ari_client: AriClient, fake_ari: FakeAri) -> None:
    """The dial fence's deadline: a process that stalled since the fence sends nothing."""
    with pytest.raises(AriDeadlinePassed):
        await ari_client.dial("acb-x-contact", timeout_s=30, deadline=time.monotonic() - 0.001)
    assert fake_ari.requests == []


async def test_a_request_within_its_deadline_is_cut_at_it(ari_client: AriClient, fake_ari: FakeAri) -> None:
    fake_ari.delay_s = 2.0
    started = time.monotonic()
    with pytest.raises(AriUnavailable):
        await ari_client.originate("PJSIP/1001", channel_id="acb-x-agent", deadline=started + 0.3)
    assert time.monotonic() - started < 1.5
