"""The web panel of a real `asterisk-cb run` on the lab, in Debian's chromium: an agent schedules a
callback from a call of its history (the lab's real call, in PostgreSQL's CDR) and sees it listed with
the due time it chose; a past time is refused beside the field; another agent does not see it; the
admin turns the feature off and the agent's button says why; a supervisor watches a callback's state
change live while the lab places it; a POST without the CSRF token is refused; a revoked token and a
changed password end the open sessions; every page fits a 375 px wide phone. Passwords and tokens are
made with the CLI, as an admin makes them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from api_client import call, free_port, readiness
from callback_lab import Lab, unique_number, until
from daemon_process import Fleet
from panel_browser import Person

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT, OTHER = "1001", "1002"
APP = "asterisk-cb-panel"
PASSWORD = "lab password 1"
USERS = "[users]\nanna = supervisor\nroot = admin\n"


@contextlib.contextmanager
def people(root: str, count: int) -> Iterator[list[Person]]:
    opened = [Person(root) for _ in range(count)]
    try:
        yield opened
    finally:
        for person in opened:
            person.close()


async def set_password(lab: Lab, tmp_path: Path, name: str, password: str) -> None:
    """`asterisk-cb user set-password NAME` with the password piped in, as a provisioning script does."""
    saved = sys.stdin
    sys.stdin = io.StringIO(password + "\n")
    try:
        code, out, err = await lab.cli(tmp_path, "user", "set-password", name, sections=USERS)
    finally:
        sys.stdin = saved
    assert code == 0, err
    assert f"panel password set for agent {name}" in out or f"for user {name}" in out


async def token(lab: Lab, tmp_path: Path, *identity: str) -> str:
    code, out, err = await lab.cli(tmp_path, "token", "create", *identity, sections=USERS)
    assert code == 0, err
    return out.strip()


async def start(fleet: Fleet, lab: Lab) -> tuple[str, str]:
    """The daemon with the API and the panel on a free port, and the CDR of the lab's PostgreSQL."""
    port = free_port()
    fleet.records = {"dsn": lab.info["postgres"]["dsn"], "usegmtime": "yes"}
    fleet.extra = USERS + f"[api]\nlisten = 127.0.0.1:{port}\npanel = yes\n"
    await fleet.start(APP)
    base = f"http://127.0.0.1:{port}"
    await readiness(base + "/api/v1")
    return base + "/api/v1", base + "/panel"


async def history_call(api: str, agent_token: str, number: str) -> dict[str, Any]:
    """The agent's call with ``number`` once its CDR rows are in (Asterisk writes them at hangup)."""
    for _ in range(60):
        status, body = await call(api, agent_token, "GET", f"/agents/{AGENT}/history")
        assert status == 200, body
        found = [entry for entry in body["calls"] if entry["contact_number"] == number]
        if found:
            return dict(found[0])
        await asyncio.sleep(0.5)
    raise AssertionError(f"no call with {number} in {AGENT}'s history")


def no_horizontal_scroll(person: Person, pages: dict[str, str]) -> None:
    """Each page (name -> path) at a phone's 375 px: no sideways scroll; a screenshot of each."""
    with person.phone_width():
        for name, path in pages.items():
            person.open(path)
            person.screenshot(f"{name}-375")
            assert person.horizontal_overflow() == 0, f"{path} scrolls sideways at 375 px"


async def test_an_agent_schedules_from_its_history_and_the_admin_switches_the_feature_off(
    fleet_lab: tuple[Fleet, Lab], tmp_path: Path
) -> None:
    fleet, lab = fleet_lab
    lab.phone(AGENT, "answer")
    api, root = await start(fleet, lab)
    agent_token = await token(lab, tmp_path, "--agent", AGENT)
    other_token = await token(lab, tmp_path, "--agent", OTHER)
    admin_token = await token(lab, tmp_path, "--user", "root")
    await set_password(lab, tmp_path, AGENT, PASSWORD)
    number = unique_number("20103")
    placed = await lab.schedule(number, AGENT, name="Ada")  # a real lab call: the agent's history
    await lab.wait_for(placed.id, lambda cb: cb.state.value == "completed", 60)
    origin = await history_call(api, agent_token, number)

    with people(root, 3) as (agent, other, admin):
        agent.sign_in(name=AGENT, password=PASSWORD)
        assert agent.path == "/history"
        agent.screenshot("history")
        agent.tab_to(f'a[data-schedule="{origin["linkedid"]}"]')  # with the keyboard alone
        agent.press_enter()
        assert agent.find("#contact_number").get_attribute("value") == number
        zone = ZoneInfo(agent.find("#timezone").get_attribute("value") or "UTC")

        agent.set_value("#due_at", (datetime.now(zone) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
        agent.follow("#schedule")
        error = agent.find("#due_at-error").text  # beside the field, the service's own words
        assert "past" in error.lower(), error
        agent.screenshot("schedule-error")
        with agent.phone_width():
            agent.screenshot("schedule-error-375")
            assert agent.horizontal_overflow() == 0

        due = (datetime.now(zone) + timedelta(days=1)).replace(hour=10, minute=30, second=0, microsecond=0)
        agent.set_value("#due_at", due.strftime("%Y-%m-%dT%H:%M"))
        agent.find("#note").send_keys("asked for a call back tomorrow morning")
        agent.follow("#schedule")
        assert agent.path.startswith("/callbacks?scheduled=")
        callback_id = agent.path.rsplit("=", 1)[1]
        listed = agent.find(f"#cb-{callback_id} .due time")
        assert datetime.fromisoformat(listed.get_attribute("datetime")) == due.astimezone(UTC)
        assert agent.find(f"#cb-{callback_id} .state").text == "scheduled"
        agent.screenshot("my-callbacks")
        agent.open(f"/callbacks/{placed.id}")  # the lab's call: its attempt and its CDR rows
        assert [cell.text for cell in agent.all("td[data-label=Outcome]")] == ["completed"]
        assert {cell.text for cell in agent.all("#cdr td[data-label=Leg]")} >= {"agent", "contact"}
        agent.screenshot("story")

        other.sign_in(token=other_token)
        other.open("/callbacks")
        assert not other.all(f"#cb-{callback_id}")
        other.open(f"/callbacks/{callback_id}")
        assert "no callback" in other.find("#page-error").text

        refused = agent.driver.execute_async_script(
            "const done = arguments[0];fetch('/panel/logout', {method: 'POST'}).then(r => done(r.status));"
        )
        assert refused == 403
        agent.open("/callbacks")
        assert agent.path == "/callbacks"  # the refused sign-out did nothing: still signed in

        admin.sign_in(token=admin_token)
        assert admin.path == "/supervisor"  # an admin may view every callback: that page first
        admin.open("/admin")
        admin.screenshot("admin")
        admin.find("#value-enabled option[value='no']").click()
        admin.follow("#save-enabled")
        agent.open("/history")
        button = agent.find(f'button[data-schedule="{origin["linkedid"]}"]')
        assert not button.is_enabled()
        reason = agent.find(f"#{button.get_attribute('aria-describedby')}").text
        assert "turned off" in reason
        agent.screenshot("history-feature-off")

        schedule = f"/schedule?call={origin['linkedid']}"
        story = f"/callbacks/{callback_id}"
        pages = {"history": "/history", "schedule": schedule, "callbacks": "/callbacks", "story": story}
        no_horizontal_scroll(agent, pages)
        no_horizontal_scroll(admin, {"admin": "/admin", "supervisor": "/supervisor"})

        code, _, err = await lab.cli(tmp_path, "token", "revoke", other_token.split("_")[1], sections=USERS)
        assert code == 0, err
        other.open("/callbacks")
        assert other.path == "/login?ended=1"
        await set_password(lab, tmp_path, AGENT, "a new password")
        agent.open("/callbacks")
        assert agent.path == "/login?ended=1"
        assert "session ended" in agent.find(".notice").text
        no_horizontal_scroll(agent, {"login": "/login"})


async def test_a_supervisor_sees_a_callbacks_state_change_live_while_the_lab_places_it(
    fleet_lab: tuple[Fleet, Lab], tmp_path: Path
) -> None:
    fleet, lab = fleet_lab
    lab.phone(AGENT, "answer")
    _, root = await start(fleet, lab)
    supervisor_token = await token(lab, tmp_path, "--user", "anna")
    placed = await lab.schedule(unique_number("20103"), AGENT, in_s=600, name="Grace")  # moved up below

    with people(root, 1) as (supervisor,):
        supervisor.sign_in(token=supervisor_token)
        assert supervisor.path == "/supervisor"
        state = f"#cb-{placed.id} .state"
        assert supervisor.find(state).text == "scheduled"
        await until(lambda: supervisor.text("#live-status") == "Live updates: on")
        supervisor.driver.execute_script("window.notReloaded = true")
        code, _, err = await lab.cli(tmp_path, "reschedule", placed.id, "--at", "+2s", sections=USERS)
        assert code == 0, err  # due now: the daemon places it while the page watches
        seen: set[str] = set()

        def finished() -> bool:
            seen.add(supervisor.text(state) or "")
            return "completed" in seen

        await until(finished, 60)
        assert supervisor.driver.execute_script("return window.notReloaded") is True
        assert seen - {"scheduled", "completed"}, f"only {seen}: no live state in between"
        supervisor.screenshot("supervisor")
