"""Panel sessions with the clock passed in: the idle timeout and the maximum age, each request marking a
session used, and the credential re-checked at every request (a revoked token, a changed password)."""

from __future__ import annotations

from datetime import timedelta

from panel_fakes import START, panel

from asterisk_cb.service_access import ADMIN
from asterisk_cb.store.sessions import SessionRecord
from asterisk_cb.web.sessions import SessionLimits, digest_of, expired

LIMITS = SessionLimits(idle=timedelta(minutes=30), max_age=timedelta(hours=8))


def record(*, created_ago: timedelta, seen_ago: timedelta) -> SessionRecord:
    return SessionRecord("agent", "1001", "password", "1", "csrf", START - created_ago, START - seen_ago)


def test_a_session_expires_when_idle_or_too_old_whichever_comes_first() -> None:
    assert not expired(record(created_ago=timedelta(hours=1), seen_ago=timedelta(minutes=29)), START, LIMITS)
    assert expired(record(created_ago=timedelta(hours=1), seen_ago=timedelta(minutes=30)), START, LIMITS)
    assert not expired(
        record(created_ago=timedelta(hours=7, minutes=59), seen_ago=timedelta(0)), START, LIMITS
    )
    assert expired(record(created_ago=timedelta(hours=8), seen_ago=timedelta(0)), START, LIMITS)


async def test_use_keeps_a_session_alive_until_its_maximum_age() -> None:
    services = panel(LIMITS)
    await services.passwords.set_password(ADMIN, "1001", "secret 1")
    session_id = await services.sessions.sign_in_password("1001", "secret 1")
    assert session_id is not None
    for _ in range(16):  # every 29 minutes for 7 h 44 min: never idle for 30
        services.clock.advance(timedelta(minutes=29))
        assert (signed := await services.sessions.resume(session_id)) is not None
        assert signed.actor.name == "1001" and signed.is_agent
    services.clock.advance(timedelta(minutes=29))  # 8 h 13 min after sign-in
    assert await services.sessions.resume(session_id) is None
    assert services.store.sessions == {}  # removed, not merely refused


async def test_an_idle_session_ends() -> None:
    services = panel(LIMITS)
    await services.passwords.set_password(ADMIN, "1001", "secret 1")
    session_id = await services.sessions.sign_in_password("1001", "secret 1")
    assert session_id is not None
    services.clock.advance(timedelta(minutes=30))
    assert await services.sessions.resume(session_id) is None


async def test_a_changed_password_ends_the_session_a_new_sign_in_works() -> None:
    services = panel(LIMITS)
    await services.passwords.set_password(ADMIN, "1001", "secret 1")
    session_id = await services.sessions.sign_in_password("1001", "secret 1")
    assert session_id is not None and await services.sessions.resume(session_id) is not None
    await services.passwords.set_password(ADMIN, "1001", "secret 2")
    assert await services.sessions.resume(session_id) is None
    assert await services.sessions.sign_in_password("1001", "secret 1") is None
    assert await services.sessions.sign_in_password("1001", "secret 2") is not None


async def test_a_revoked_token_ends_the_session_it_signed_in() -> None:
    services = panel(LIMITS)
    token, info = await services.tokens.create(ADMIN, agent="1002")
    session_id = await services.sessions.sign_in_token(token)
    assert session_id is not None
    signed = await services.sessions.resume(session_id)
    assert signed is not None and signed.actor.name == "1002"
    await services.tokens.revoke(ADMIN, info.token_id)
    assert await services.sessions.resume(session_id) is None
    assert await services.sessions.sign_in_token(token) is None


async def test_only_the_digest_of_a_session_id_is_stored_and_each_has_its_own_csrf_token() -> None:
    services = panel(LIMITS)
    await services.passwords.set_password(ADMIN, "1001", "secret 1")
    first = await services.sessions.sign_in_password("1001", "secret 1")
    second = await services.sessions.sign_in_password("1001", "secret 1")
    assert first is not None and second is not None and first != second
    assert set(services.store.sessions) == {digest_of(first), digest_of(second)}
    assert len({stored.csrf for stored in services.store.sessions.values()}) == 2
    await services.sessions.end(first)
    assert await services.sessions.resume(first) is None
    assert await services.sessions.resume(second) is not None
    assert await services.sessions.resume("made up") is None


async def test_a_token_session_is_its_tokens_agent_or_user() -> None:
    services = panel(LIMITS)
    token, _ = await services.tokens.create(ADMIN, agent="1001")
    session_id = await services.sessions.sign_in_token(token)
    assert session_id is not None
    stored = services.store.sessions[digest_of(session_id)]
    assert (stored.kind, stored.name, stored.via) == ("agent", "1001", "token")
    assert await services.sessions.sign_in_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
