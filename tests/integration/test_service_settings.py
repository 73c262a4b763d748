"""Run-time settings changed and read through the service (permission, validation), on the lab's Redis."""

from __future__ import annotations

import logging
import uuid

import pytest
from test_service import AGENT_1001, Directory, refused

from asterisk_cb.core import ini
from asterisk_cb.core.settings import OriginKind, from_documents
from asterisk_cb.service import ADMIN, Actor, ErrorCode, Permission, SettingsService
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab

SETTINGS_ADMIN = Actor("ops", frozenset({Permission.MANAGE_SETTINGS}))
SUPERVISOR = Actor("boss", frozenset({Permission.SCHEDULE, Permission.MANAGE, Permission.VIEW_ALL}))


@pytest.fixture
def settings(store: Store) -> SettingsService:
    file = from_documents(
        [ini.parse("[general]\nmax_attempts = 4\n[agent/1001]\nmax_attempts = 2\n", "cb.conf")]
    )
    return SettingsService(store, file, Directory())


async def max_attempts(settings: SettingsService, agent: str) -> tuple[str, OriginKind]:
    (line,) = [line for line in await settings.explain(ADMIN, agent) if line.option == "max_attempts"]
    return line.text, line.origin.kind


async def test_an_override_wins_until_reset(settings: SettingsService) -> None:
    await settings.set_setting(SETTINGS_ADMIN, "agent/1001", "max_attempts", "5")
    assert (await settings.effective("1001", None)).max_attempts == 5
    assert await max_attempts(settings, "1001") == ("5", OriginKind.RUNTIME)
    await settings.reset_setting(SETTINGS_ADMIN, "agent/1001", "max_attempts")
    assert (await settings.effective("1001", None)).max_attempts == 2
    assert await max_attempts(settings, "1001") == ("2", OriginKind.FILE)


async def test_resetting_a_scope_drops_all_its_overrides(settings: SettingsService) -> None:
    await settings.set_setting(ADMIN, "general", "max_attempts", "6")
    await settings.set_setting(ADMIN, "general", "paused", "yes")
    await settings.reset_setting(ADMIN, "general")
    effective = await settings.effective("1002", None)
    assert (effective.max_attempts, effective.paused) == (4, False)


@pytest.mark.parametrize("actor", [AGENT_1001, SUPERVISOR])
async def test_changing_or_reading_settings_needs_manage_settings(
    settings: SettingsService, actor: Actor
) -> None:
    await refused(settings.set_setting(actor, "general", "max_attempts", "9"), ErrorCode.FORBIDDEN)
    await refused(settings.reset_setting(actor, "general"), ErrorCode.FORBIDDEN)
    await refused(settings.explain(actor), ErrorCode.FORBIDDEN)
    assert (await settings.effective(None, None)).max_attempts == 4


async def test_bad_scope_option_or_value_is_refused_naming_the_field(settings: SettingsService) -> None:
    error = await refused(
        settings.set_setting(ADMIN, "team/7", "max_attempts", "5"), ErrorCode.INVALID, "scope"
    )
    assert "use general, queue/<name> or agent/<id>" in error.message
    await refused(settings.reset_setting(ADMIN, "everything"), ErrorCode.INVALID, "scope")
    error = await refused(
        settings.set_setting(ADMIN, "general", "max_attempts", "lots"), ErrorCode.INVALID, "value"
    )
    assert "max_attempts" in error.message
    await refused(settings.set_setting(ADMIN, "general", "max_tries", "5"), ErrorCode.INVALID, "option")
    assert await max_attempts(settings, "1002") == ("4", OriginKind.FILE)  # nothing was written


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        ("agent/9999", "unknown agent '9999' (not in [agents])"),
        ("agent/1001;x", "'1001;x' is not a valid name"),
        ("agent/", "'' is not a valid name"),
        ("queue/a@b", "'a@b' is not a valid queue name"),
        ("queue/two words", "is not a valid queue name"),
    ],
)
async def test_an_override_for_an_unknown_agent_or_a_malformed_scope_is_refused(
    settings: SettingsService, store: Store, scope: str, reason: str
) -> None:
    """It would never apply (or break the scope's key), yet look set in every listing."""
    error = await refused(settings.set_setting(ADMIN, scope, "max_attempts", "5"), ErrorCode.INVALID, "scope")
    assert reason in error.message
    assert await store.setting_overrides() == {}


async def test_a_left_over_override_of_a_removed_agent_can_be_reset(
    settings: SettingsService, store: Store
) -> None:
    await store.set_setting("agent/1003", "max_attempts", "5")  # set while 1003 was in [agents]
    await settings.reset_setting(ADMIN, "agent/1003")
    assert await store.setting_overrides() == {}


async def test_an_unparsable_override_is_ignored_and_logged_once(
    settings: SettingsService, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Written by a newer version sharing the Redis (or by hand): every lookup still answers."""
    bad = f"many-{uuid.uuid4().hex[:6]}"
    await store.set_setting("general", "max_attempts", bad)
    await store.set_setting("agent/1001", "paused", "yes")
    with caplog.at_level(logging.ERROR, "asterisk_cb.store.overrides"):
        for _ in range(3):
            effective = await settings.effective("1001", None)
    assert (effective.max_attempts, effective.paused) == (2, True)
    assert [record.error for record in caplog.records] == [  # type: ignore[attr-defined]
        f"runtime override [general]: max_attempts: '{bad}' is not a whole number"
    ]
