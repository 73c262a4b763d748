"""The web panel over HTTP, served by the API component as the daemon builds it (``[api] panel = yes``),
on the lab's Redis: sign-in with a password or a token, the session cookie's flags, CSRF on every POST,
and a session ending at sign-out, on revocation of its token and on a change of its password; pages
refused to roles that may not see them. The browser's view is tests/e2e/test_panel_browser.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from api_harness import CONFIG, Api, served_api

from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.service import ADMIN
from asterisk_cb.service_passwords import PasswordService
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab

PANEL_CONFIG = CONFIG + "panel = yes\n"
BERLIN = ZoneInfo("Europe/Berlin")
_CSRF = re.compile(r'<meta name="csrf" content="([^"]+)">')
_FIELD = re.compile(r'<input type="hidden" name="csrf" value="([^"]+)">')


@pytest.fixture
async def panel(store: Store, redis: RedisClient) -> AsyncIterator[Api]:
    async with served_api(store, redis, PANEL_CONFIG) as served:
        yield served


class Browser:
    """A cookie-keeping client of the panel that does not follow redirects (the tests look at them)."""

    def __init__(self, api: Api) -> None:
        self.root = api.base.removesuffix("/api/v1") + "/panel"
        self.client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, path: str) -> tuple[int, str, str]:
        async with self.client.get(self.root + path, allow_redirects=False) as response:
            return response.status, await response.text(), response.headers.get("Location", "")

    async def post(self, path: str, form: dict[str, str]) -> tuple[int, str, str]:
        async with self.client.post(self.root + path, data=form, allow_redirects=False) as response:
            return response.status, await response.text(), response.headers.get("Location", "")

    async def sign_in(self, **form: str) -> aiohttp.ClientResponse:
        """The sign-in form fetched (its CSRF cookie and field), then posted with ``form``."""
        status, text, _ = await self.get("/login")
        found = _FIELD.search(text)
        assert status == 200 and found is not None
        async with self.client.post(
            self.root + "/login", data={"csrf": found[1], **form}, allow_redirects=False
        ) as response:
            return response

    async def csrf(self, path: str = "/callbacks") -> str:
        status, text, _ = await self.get(path)
        assert status == 200, text
        found = _CSRF.search(text)
        assert found is not None
        return found[1]


@pytest.fixture
async def browser(panel: Api) -> AsyncIterator[Browser]:
    opened = Browser(panel)
    yield opened
    await opened.client.close()


async def set_password(api: Api, name: str, password: str) -> None:
    await PasswordService(api.store, api.roles).set_password(ADMIN, name, password)


async def test_a_password_sign_in_gives_an_httponly_strict_cookie_and_the_agent_its_history(
    panel: Api, browser: Browser
) -> None:
    await set_password(panel, "1001", "correct horse")
    response = await browser.sign_in(name="1001", password="correct horse")
    assert (response.status, response.headers["Location"]) == (303, "/panel/")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/panel" in cookie
    assert "Secure" not in cookie  # plain HTTP from a client that is not a trusted proxy
    assert "correct horse" not in cookie
    assert (await browser.get("/"))[2] == "/panel/history"


async def test_a_trusted_proxy_saying_https_makes_the_cookie_secure(store: Store, redis: RedisClient) -> None:
    config = PANEL_CONFIG + "trusted_proxies = 127.0.0.1\n"
    async with served_api(store, redis, config) as api:
        await set_password(api, "1001", "correct horse")
        root = api.base.removesuffix("/api/v1") + "/panel"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            async with client.get(root + "/login", headers={"X-Forwarded-Proto": "https"}) as form:
                assert "Secure" in form.headers["Set-Cookie"]  # the sign-in form's CSRF cookie too
                found = _FIELD.search(await form.text())
            assert found is not None
            client.cookie_jar.update_cookies(
                {"acb_signin": form.cookies["acb_signin"].value}
            )  # plain HTTP here
            async with client.post(
                root + "/login",
                data={"csrf": found[1], "name": "1001", "password": "correct horse"},
                headers={"X-Forwarded-Proto": "https"},
                allow_redirects=False,
            ) as response:
                assert response.status == 303
                assert "Secure" in response.headers["Set-Cookie"]


async def test_a_wrong_password_is_refused_without_saying_which_part_and_counts_as_a_failure(
    panel: Api, browser: Browser
) -> None:
    await set_password(panel, "1001", "correct horse")
    for form in ({"name": "1001", "password": "wrong"}, {"name": "nobody", "password": "x" * 8}):
        response = await browser.sign_in(**form)
        assert response.status == 401
    # [api] auth_failures = 5 in the harness: three more failures of the API's own reach the limit
    for _ in range(3):
        status, _, _ = await panel.call("GET", "/me", headers={"Authorization": "Bearer acb_nope"})
        assert status == 401
    response = await browser.sign_in(name="1001", password="correct horse")
    assert response.status == 429


async def test_a_sign_in_without_the_forms_csrf_token_is_refused(panel: Api, browser: Browser) -> None:
    await set_password(panel, "1001", "correct horse")
    form = {"name": "1001", "password": "correct horse"}
    async with browser.client.post(browser.root + "/login", data=form, allow_redirects=False) as forged:
        assert forged.status == 403 and "stale" in await forged.text()
    assert (await browser.sign_in(**form)).status == 303


async def test_a_post_without_the_csrf_token_is_refused_and_with_it_goes_through(
    panel: Api, browser: Browser
) -> None:
    await browser.sign_in(token=panel.tokens["1001"])
    status, text, _ = await browser.post("/logout", {})
    assert status == 403 and "stale" in text
    status, _, _ = await browser.post("/logout", {"csrf": "forged"})
    assert status == 403
    status, _, location = await browser.post("/logout", {"csrf": await browser.csrf()})
    assert (status, location) == (303, "/panel/login")
    assert (await browser.get("/callbacks"))[2].startswith("/panel/login")


async def test_a_revoked_token_ends_the_session_on_its_next_request(panel: Api, browser: Browser) -> None:
    await browser.sign_in(token=panel.tokens["1002"])
    assert (await browser.get("/callbacks"))[0] == 200
    token_id = panel.tokens["1002"].split("_")[1]
    await panel.service.revoke(ADMIN, token_id)
    status, _, location = await browser.get("/callbacks")
    assert (status, location) == (303, "/panel/login?ended=1")


async def test_a_changed_password_ends_the_open_session(panel: Api, browser: Browser) -> None:
    await set_password(panel, "1003", "first password")
    await browser.sign_in(name="1003", password="first password")
    assert (await browser.get("/callbacks"))[0] == 200
    await set_password(panel, "1003", "second password")
    assert (await browser.get("/callbacks"))[2] == "/panel/login?ended=1"


async def test_pages_need_their_permission(panel: Api, browser: Browser) -> None:
    await browser.sign_in(token=panel.tokens["1001"])
    for path in ("/supervisor", "/admin"):
        status, text, _ = await browser.get(path)
        assert status == 403 and "may not open this page" in text
    assert (await browser.get("/callbacks"))[0] == 200


async def test_an_admin_sees_the_settings_with_asterisks_queues(panel: Api, browser: Browser) -> None:
    await browser.sign_in(token=panel.tokens["root"])
    status, text, _ = await browser.get("/admin")
    assert status == 200
    assert "<option>support</option>" in text and 'id="value-enabled"' in text
    status, text, location = await browser.post(
        "/admin/settings", {"csrf": await browser.csrf("/admin"), "option": "max_attempts", "value": "0"}
    )
    assert status == 422 and 'id="max_attempts-error"' in text
    status, _, location = await browser.post(
        "/admin/settings", {"csrf": await browser.csrf("/admin"), "option": "max_attempts", "value": "5"}
    )
    assert (status, location) == (303, "/panel/admin#max_attempts")
    assert 'id="value-max_attempts" name="value" value="5"' in (await browser.get("/admin"))[1]


async def schedule_by_form(browser: Browser, number: str, due_at: str) -> tuple[int, str, str]:
    form = {
        "csrf": await browser.csrf(),
        "contact_number": number,
        "due_at": due_at,
        "timezone": "Europe/Berlin",
    }
    return await browser.post("/schedule", form)


async def test_the_schedule_form_creates_through_the_service_and_names_the_field_it_refuses(
    panel: Api, browser: Browser
) -> None:
    await browser.sign_in(token=panel.tokens["1001"])
    status, text, _ = await schedule_by_form(browser, "+49 30 1234567", "2001-01-01T10:00")
    assert status == 422 and 'id="due_at-error"' in text and "in the past" in text
    status, text, _ = await schedule_by_form(browser, "not a number", "+2h")
    assert status == 422 and 'id="contact_number-error"' in text
    status, _, location = await schedule_by_form(browser, "+49 30 1234567", "+2h")
    assert status == 303 and location.startswith("/panel/callbacks?scheduled=")
    callback_id = location.rsplit("=", 1)[1]
    status, text, _ = await browser.get(location.removeprefix("/panel"))
    assert status == 200 and f'id="cb-{callback_id}"' in text and "Europe/Berlin" in text


async def test_a_callback_is_moved_and_cancelled_from_its_story(panel: Api, browser: Browser) -> None:
    await browser.sign_in(token=panel.tokens["1001"])
    callback_id = (await schedule_by_form(browser, "+49 30 1234567", "+2h"))[2].rsplit("=", 1)[1]
    story = f"/callbacks/{callback_id}"
    csrf = await browser.csrf(story)
    status, text, _ = await browser.post(f"{story}/reschedule", {"csrf": csrf, "due_at": "2001-01-01T10:00"})
    assert status == 422 and 'id="due_at-error"' in text
    local = (datetime.now(BERLIN) + timedelta(days=10)).replace(hour=10, minute=0, second=0, microsecond=0)
    status, _, location = await browser.post(
        f"{story}/reschedule", {"csrf": csrf, "due_at": local.strftime("%Y-%m-%dT%H:%M")}
    )
    assert (status, location) == (303, f"/panel{story}")
    status, body, _ = await panel.call("GET", story, "1001")
    assert datetime.fromisoformat(body["due_at"]) == local  # read in Europe/Berlin, the contact's zone
    status, _, _ = await browser.post(f"{story}/cancel", {"csrf": csrf})
    assert status == 303
    assert (await panel.call("GET", story, "1001"))[1]["state"] == "cancelled"


async def test_a_supervisor_reassigns_and_cancels_picked_rows_per_permission(
    panel: Api, browser: Browser
) -> None:
    await browser.sign_in(token=panel.tokens["1001"])
    ids = [
        (await schedule_by_form(browser, f"+49 30 123456{n}", "+2h"))[2].rsplit("=", 1)[1] for n in range(2)
    ]
    await browser.client.close()
    browser.client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    await browser.sign_in(token=panel.tokens["anna"])  # supervisor: view all, manage
    status, text, _ = await browser.get("/supervisor?agent=1001")
    assert status == 200 and all(f'id="cb-{callback_id}"' in text for callback_id in ids)
    form = {"csrf": await browser.csrf("/supervisor"), "action": "reassign", "agent": "1002"}
    async with browser.client.post(
        browser.root + "/supervisor", data=[*form.items(), ("id", ids[0])], allow_redirects=False
    ) as response:
        assert response.status == 200
    assert (await panel.call("GET", f"/callbacks/{ids[0]}", "1002"))[1]["agent"] == "1002"
    async with browser.client.post(
        browser.root + "/supervisor",
        data=[("csrf", form["csrf"]), ("action", "cancel"), ("id", ids[1]), ("id", "nosuchcallback")],
        allow_redirects=False,
    ) as response:
        text = await response.text()
    assert f"<li>{ids[1]}: applied</li>" in text and "nosuchcallback: no callback" in text
    status, row, _ = await browser.get(f"/rows/{ids[1]}")
    assert status == 200 and row.lstrip().startswith("<tr") and "cancelled" in row


async def test_a_live_events_ticket_is_bound_to_the_session_and_ends_with_it(
    panel: Api, browser: Browser
) -> None:
    await browser.sign_in(token=panel.tokens["anna"])
    csrf = await browser.csrf("/supervisor")
    async with browser.client.post(browser.root + "/ticket") as refused:
        assert refused.status == 403  # no CSRF header
    async with browser.client.post(browser.root + "/ticket", headers={"X-CSRF-Token": csrf}) as issued:
        ticket = (await issued.json())["ticket"]
    async with (
        aiohttp.ClientSession() as anonymous,  # the ticket alone, as an EventSource sends it
        anonymous.get(f"{panel.base}/events?ticket={ticket}&since=0") as stream,
    ):
        assert stream.status == 200 and stream.content_type == "text/event-stream"
    async with browser.client.post(browser.root + "/ticket", headers={"X-CSRF-Token": csrf}) as issued:
        second = (await issued.json())["ticket"]
    await browser.post("/logout", {"csrf": csrf})
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(f"{panel.base}/events?ticket={second}") as stream,
    ):
        assert stream.status == 401  # the session it stood for is over


async def test_the_form_says_the_calling_hours_and_a_time_outside_gets_the_next_allowed_one(
    panel: Api, browser: Browser
) -> None:
    await panel.store.set_setting("general", "calling_hours", "mon-fri 09:00-18:00")
    await browser.sign_in(token=panel.tokens["1001"])
    status, text, _ = await browser.get("/schedule")
    assert status == 200 and "within the calling hours: Mon-Fri 09:00-18:00" in text
    prefilled = re.search(r'id="due_at" name="due_at" type="datetime-local" value="([^"]+)"', text)
    assert prefilled is not None
    assert datetime.fromisoformat(prefilled[1]).weekday() < 5  # the next opening, in the contact's zone
    saturday = datetime.now(BERLIN) + timedelta(days=(5 - datetime.now(BERLIN).weekday()) % 7 or 7)
    status, text, _ = await schedule_by_form(browser, "+49 30 1234567", saturday.strftime("%Y-%m-%dT10:00"))
    assert status == 422 and 'id="due_at-error"' in text and "Next allowed:" in text


async def test_the_panel_answers_people_in_html_and_the_api_programs_in_json(
    panel: Api, browser: Browser
) -> None:
    async with browser.client.get(browser.root, allow_redirects=False) as bare:
        assert (bare.status, bare.headers["Location"]) == (301, "/panel/")
    assert (await browser.get("/"))[2] == "/panel/login"  # not signed in
    await browser.sign_in(token=panel.tokens["1001"])
    status, text, _ = await browser.get("/no/such/page")
    assert status == 404 and text.startswith("<!doctype html>") and 'id="page-error"' in text
    async with browser.client.get(browser.root + "/callbacks") as page:
        assert (
            page.headers["Cache-Control"] == "no-store"
            and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        )
    status, body, _ = await panel.call("GET", "/no/such/route", "1001")
    assert status == 404 and body["error"]["code"] == "no_route"


async def test_an_admin_defines_a_role_and_gives_it_to_an_agent_whose_pages_follow(
    panel: Api, browser: Browser
) -> None:
    await browser.sign_in(token=panel.tokens["root"])
    csrf = await browser.csrf("/admin")
    form = [
        ("csrf", csrf),
        ("role", "lead"),
        ("permission", "schedule_callback"),
        ("permission", "view_all_callbacks"),
    ]
    async with browser.client.post(
        browser.root + "/admin/roles", data=form, allow_redirects=False
    ) as response:
        assert (response.status, response.headers["Location"]) == (303, "/panel/admin#role")
    status, text, _ = await browser.post(
        "/admin/agent-role", {"csrf": csrf, "agent": "1001", "role": "nosuch"}
    )
    assert status == 422 and 'id="agent_role-error"' in text
    status, _, _ = await browser.post("/admin/agent-role", {"csrf": csrf, "agent": "1001", "role": "lead"})
    assert status == 303
    agent = Browser(panel)
    try:
        await agent.sign_in(token=panel.tokens["1001"])
        assert (await agent.get("/supervisor"))[0] == 200  # the role held now, at the next request
    finally:
        await agent.client.close()


async def test_sign_ins_are_logged_without_a_password_or_token(
    panel: Api, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    await set_password(panel, "1001", "correct horse")
    with caplog.at_level("INFO", logger="asterisk_cb.web"):
        await browser.sign_in(name="correct horse", password="1001")  # the fields swapped
        await browser.sign_in(name="1001", password="correct horse")
        browser.client.cookie_jar.clear()  # another person at this browser
        await browser.sign_in(token=panel.tokens["1002"])
    assert [record.getMessage() for record in caplog.records] == [
        "panel sign-in refused",
        "panel sign-in",
        "panel sign-in",
    ]
    assert [getattr(record, "who", None) for record in caplog.records] == [None, "1001", "(a token)"]
    logged = " ".join(str(vars(record)) for record in caplog.records)
    assert "correct horse" not in logged and panel.tokens["1002"] not in logged


async def test_without_panel_yes_there_are_no_pages(store: Store, redis: RedisClient) -> None:
    async with served_api(store, redis) as api, aiohttp.ClientSession() as client:
        root = api.base.removesuffix("/api/v1") + "/panel"
        for path in ("", "/", "/login", "/static/panel.css"):
            async with client.get(root + path, allow_redirects=False) as response:
                assert response.status == 404, path
