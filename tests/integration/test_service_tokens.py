"""API tokens through the service, on the lab's Redis: made once, stored hashed, expired and revoked at
once, and resolved to their agent's or user's role as it stands at each use."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_service import AGENT_1001, NOW, Clock, Directory, refused

from asterisk_cb import roles
from asterisk_cb.core import ini
from asterisk_cb.core.settings import from_documents
from asterisk_cb.deployment import SECTIONS
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.service import ADMIN, Actor, ErrorCode, Permission, RolesService
from asterisk_cb.service_tokens import DEFAULT_LIFETIME, TokenService, format_token, parse_token
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab

FILE = (
    "[roles]\nteamlead = schedule_callback, view_all_callbacks\n[users]\nanna = supervisor\nbob = teamlead\n"
)
SUPERVISOR = frozenset({Permission.SCHEDULE, Permission.MANAGE, Permission.VIEW_ALL})


def file_roles(text: str = FILE) -> roles.RoleLayer:
    sections = from_documents([ini.parse(text, "cb.conf")], SECTIONS).other_sections
    return roles.from_sections(
        sections.get("roles", {}),
        sections.get("agent_roles", {}),
        Directory.agents,
        sections.get("users", {}),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def role_service(store: Store) -> RolesService:
    return RolesService(store, file_roles(), Directory.agents)


@pytest.fixture
def tokens(store: Store, role_service: RolesService, clock: Clock) -> TokenService:
    return TokenService(store, role_service, clock)


async def test_a_token_authenticates_its_agent_until_it_expires(tokens: TokenService, clock: Clock) -> None:
    text, info = await tokens.create(ADMIN, agent="1001", label="wallboard")
    assert parse_token(text) is not None
    assert (info.kind, info.name, info.label) == ("agent", "1001", "wallboard")
    assert (info.created_at, info.expires_at) == (NOW, NOW + DEFAULT_LIFETIME)
    assert await tokens.authenticate(text) == Actor("1001", frozenset({Permission.SCHEDULE}))
    assert await tokens.list(ADMIN) == [info]

    clock.now = info.expires_at - timedelta(seconds=1)
    assert await tokens.authenticate(text) is not None
    clock.now = info.expires_at
    assert await tokens.authenticate(text) is None
    assert await tokens.list(ADMIN) == []


async def test_expired_tokens_are_purged_when_tokens_are_listed_or_created(
    tokens: TokenService, store: Store, clock: Clock
) -> None:
    await tokens.create(ADMIN, agent="1001", lifetime=timedelta(minutes=1))
    _, long = await tokens.create(ADMIN, user="anna", lifetime=timedelta(days=1))
    clock.now += timedelta(minutes=2)
    _, newer = await tokens.create(ADMIN, user="bob")
    assert {record.token_id for record in await store.tokens()} == {long.token_id, newer.token_id}
    clock.now += timedelta(days=1)
    assert await tokens.list(ADMIN) == [newer]
    assert [record.token_id for record in await store.tokens()] == [newer.token_id]


async def test_a_user_token_carries_the_users_role(tokens: TokenService) -> None:
    text, info = await tokens.create(ADMIN, user="anna")
    assert (info.kind, info.name) == ("user", "anna")
    assert await tokens.authenticate(text) == Actor("anna", SUPERVISOR)


async def test_a_role_changed_at_run_time_applies_to_the_next_authenticate(
    tokens: TokenService, role_service: RolesService
) -> None:
    agent_token, _ = await tokens.create(ADMIN, agent="1002")
    user_token, _ = await tokens.create(ADMIN, user="bob")
    assert await tokens.authenticate(agent_token) == Actor("1002", frozenset({Permission.SCHEDULE}))
    await role_service.set_agent_role(ADMIN, "1002", "supervisor")
    await role_service.define_role(ADMIN, "teamlead", ["administer"])
    assert await tokens.authenticate(agent_token) == Actor("1002", SUPERVISOR)
    assert await tokens.authenticate(user_token) == Actor("bob", frozenset({Permission.ADMINISTER}))


async def test_a_revoked_token_fails_at_once_and_cannot_be_revoked_twice(tokens: TokenService) -> None:
    text, info = await tokens.create(ADMIN, agent="1001")
    kept, _ = await tokens.create(ADMIN, agent="1001")
    assert await tokens.revoke(ADMIN, info.token_id) == info
    assert await tokens.authenticate(text) is None
    assert await tokens.authenticate(kept) is not None
    error = await refused(tokens.revoke(ADMIN, info.token_id), ErrorCode.NOT_FOUND, "token_id")
    assert error.message == f"no token {info.token_id}"
    await refused(tokens.revoke(ADMIN, "x" * 9), ErrorCode.INVALID, "token_id")


async def test_an_agent_or_user_no_longer_configured_is_refused(store: Store, clock: Clock) -> None:
    """The token outlives its identity in Redis, but a daemon started without it authenticates nobody."""
    before = TokenService(store, RolesService(store, file_roles(), Directory.agents), clock)
    agent_token, _ = await before.create(ADMIN, agent="1002")
    user_token, _ = await before.create(ADMIN, user="anna")
    after = TokenService(
        store, RolesService(store, file_roles("[users]\nbob = agent\n"), frozenset({"1001"})), clock
    )
    assert await after.authenticate(agent_token) is None
    assert await after.authenticate(user_token) is None
    assert await before.authenticate(user_token) == Actor("anna", SUPERVISOR)


async def test_a_wrong_secret_for_a_known_id_is_refused(tokens: TokenService) -> None:
    text, info = await tokens.create(ADMIN, agent="1001")
    _, secret = parse_token(text) or ("", "")
    wrong = format_token(info.token_id, ("A" if secret[0] != "A" else "B") + secret[1:])
    assert await tokens.authenticate(wrong) is None
    assert await tokens.authenticate(text) is not None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "agent"),
        ({"agent": "1001", "user": "anna"}, "user"),
        ({"agent": "9999"}, "agent"),
        ({"agent": "a b"}, "agent"),
        ({"user": "carol"}, "user"),
        ({"user": "1001"}, "user"),
        ({"agent": "1001", "lifetime": timedelta(seconds=59)}, "expires"),
        ({"agent": "1001", "lifetime": timedelta(days=731)}, "expires"),
        ({"agent": "1001", "lifetime": -DEFAULT_LIFETIME}, "expires"),
        ({"agent": "1001", "label": "x" * 81}, "label"),
        ({"agent": "1001", "label": "line\nbreak"}, "label"),
    ],
)
async def test_a_bad_request_is_invalid_naming_its_field_and_stores_nothing(
    tokens: TokenService, store: Store, kwargs: dict[str, object], field: str
) -> None:
    await refused(tokens.create(ADMIN, **kwargs), ErrorCode.INVALID, field)  # type: ignore[arg-type]
    assert await store.tokens() == []


async def test_the_bounds_of_lifetime_and_label_are_accepted(tokens: TokenService) -> None:
    for lifetime in (timedelta(minutes=1), timedelta(days=730)):
        _, info = await tokens.create(ADMIN, agent="1001", lifetime=lifetime, label="é" * 80)
        assert info.expires_at - info.created_at == lifetime


@pytest.mark.parametrize("actor", [AGENT_1001, Actor("anna", SUPERVISOR)])
async def test_managing_tokens_needs_administer(tokens: TokenService, actor: Actor) -> None:
    _, info = await tokens.create(ADMIN, agent="1001")
    await refused(tokens.create(actor, agent="1001"), ErrorCode.FORBIDDEN)
    await refused(tokens.list(actor), ErrorCode.FORBIDDEN)
    await refused(tokens.revoke(actor, info.token_id), ErrorCode.FORBIDDEN)
    assert await tokens.list(ADMIN) == [info]


async def test_the_secret_is_not_stored_in_clear(
    tokens: TokenService, store: Store, redis: RedisClient
) -> None:
    text, _ = await tokens.create(ADMIN, user="anna")
    _, secret = parse_token(text) or ("", "")
    keys = [key async for key in redis.scan_iter(match=store.keys.pattern)]
    assert keys == [store.keys.tokens]
    stored = await redis.hgetall(store.keys.tokens)
    assert stored
    assert not any(secret in field or secret in value for field, value in stored.items())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text()
    | st.text(alphabet="acb_0123456789abcdefABCDEF-", min_size=50, max_size=60)
    | st.builds(lambda tail: "acb_" + tail, st.text(min_size=52, max_size=52))
)
async def test_garbage_never_raises_and_authenticates_nobody(tokens: TokenService, garbage: str) -> None:
    assert await tokens.authenticate(garbage) is None


@pytest.mark.parametrize(
    "record",
    [
        "not json",
        "{}",
        '{"digest": "x", "kind": "agent", "name": "1001", "created_at": "2026-01-01T00:00:00", '
        '"expires_at": "2099-01-01T00:00:00", "label": ""}',
    ],
)
async def test_an_unreadable_record_authenticates_nobody_and_is_not_listed(
    tokens: TokenService, store: Store, redis: RedisClient, record: str
) -> None:
    """Written by hand or by a newer version (here: no UTC offset): every other token still works."""
    text, info = await tokens.create(ADMIN, agent="1001")
    await redis.hset(store.keys.tokens, "0badc0de", record)
    assert await tokens.authenticate(format_token("0badc0de", "A" * 43)) is None
    assert await tokens.list(ADMIN) == [info]
    assert await tokens.authenticate(text) is not None
