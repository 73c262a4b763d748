"""The REST API over real HTTP, on the lab's Redis: tokens, roles resolved per request, callbacks
created, read, changed and cancelled through the service, and every refusal in the one JSON shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_harness import Api

from asterisk_cb.service import ADMIN

pytestmark = pytest.mark.lab


def soon(hours: int = 2) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def new(number: str = "+493012345678", **extra: object) -> dict[str, object]:
    return {"contact_number": number, "due_at": soon(), "contact_name": "Ada", **extra}


async def create(api: Api, who: str, **extra: object) -> dict[str, object]:
    status, body, _ = await api.call("POST", "/callbacks", who, json=new(**extra))
    assert status == 201, body
    return body["callback"]


async def test_an_agent_schedules_for_itself_and_reads_it_back_with_its_attempts(api: Api) -> None:
    callback = await create(api, "1001", note="quote for 12 seats")
    assert (callback["agent"], callback["state"], callback["created_by"]) == ("1001", "scheduled", "1001")
    status, body, _ = await api.call("GET", f"/callbacks/{callback['id']}", "1001")
    assert status == 200
    assert body["note"] == "quote for 12 seats" and body["attempts"] == []
    assert body["timezone"] == "Europe/Berlin"


async def test_a_replayed_create_with_the_same_idempotency_key_is_one_callback(api: Api) -> None:
    key = {"Idempotency-Key": "crm-order-77"}
    first = await api.call("POST", "/callbacks", "1001", json=new(), headers=key)
    again = await api.call("POST", "/callbacks", "1001", json=new(), headers=key)
    assert (first[0], again[0]) == (201, 200)
    assert again[1]["created"] is False
    assert again[1]["callback"]["id"] == first[1]["callback"]["id"]
    other = await api.call("POST", "/callbacks", "1002", json=new(), headers=key)  # another caller's key
    assert other[0] == 201 and other[1]["callback"]["id"] != first[1]["callback"]["id"]
    _, page, _ = await api.call("GET", "/callbacks", "1001")
    assert [c["id"] for c in page["callbacks"]] == [first[1]["callback"]["id"]]


async def test_an_agent_cannot_see_change_or_cancel_another_agents_callback(api: Api) -> None:
    theirs = await create(api, "1002")
    path = f"/callbacks/{theirs['id']}"
    for method, suffix, kwargs in (
        ("GET", "", {}),
        ("PATCH", "", {"json": {"note": "mine now"}}),
        ("POST", "/cancel", {}),
    ):
        status, body, _ = await api.call(method, path + suffix, "1001", **kwargs)
        assert (status, body["error"]["code"]) == (404, "not_found"), (method, suffix)
    status, page, _ = await api.call("GET", "/callbacks", "1001")
    assert page["callbacks"] == []
    status, body, _ = await api.call("GET", "/callbacks?agent=1002", "1001")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, page, _ = await api.call("GET", "/callbacks?agent=1002", "anna")  # a supervisor sees all
    assert [c["id"] for c in page["callbacks"]] == [theirs["id"]]


async def test_an_agent_moves_annotates_and_cancels_its_own_callback(api: Api) -> None:
    mine = await create(api, "1001")
    path = f"/callbacks/{mine['id']}"
    later = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    status, body, _ = await api.call("PATCH", path, "1001", json={"due_at": later.isoformat()})
    assert (status, body["outcome"]) == (200, "applied")
    assert datetime.fromisoformat(body["callback"]["due_at"]) == later
    status, body, _ = await api.call("PATCH", path, "1001", json={"note": "call after lunch"})
    assert body["callback"]["note"] == "call after lunch"
    status, body, _ = await api.call("PATCH", path, "1001", json={"agent": "1002"})
    assert (status, body["error"]["code"]) == (403, "forbidden")  # handing over needs manage_callbacks
    status, body, _ = await api.call("PATCH", path, "1001", json={"due_at": soon(), "note": "both"})
    assert (status, body["error"]["field"]) == (422, "due_at")
    status, body, _ = await api.call("POST", path + "/cancel", "1001")
    assert (status, body["callback"]["state"], body["callback"]["cancelled_by"]) == (200, "cancelled", "1001")
    status, body, _ = await api.call("POST", path + "/cancel", "1001")
    assert (status, body["error"]["code"]) == (409, "conflict")


async def test_a_supervisor_hands_a_callback_to_another_agent(api: Api) -> None:
    mine = await create(api, "1001")
    status, body, _ = await api.call("PATCH", f"/callbacks/{mine['id']}", "anna", json={"agent": "1003"})
    assert (status, body["callback"]["agent"]) == (200, "1003")
    status, body, _ = await api.call("PATCH", f"/callbacks/{mine['id']}", "anna", json={"agent": "9999"})
    assert (status, body["error"]["field"]) == (422, "agent")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"due_at": "2001-01-01T10:00:00+00:00"}, "due_at"),
        ({"due_at": "+45d"}, "due_at"),  # beyond the 30-day horizon
        ({"contact_number": "1234&Local/666"}, "contact_number"),
        ({"contact_number": "+49 30 12 34 ; Dial"}, "contact_number"),
        ({"contact_name": "Ada\nEvil: header"}, "contact_name"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"queue": "sales@evil"}, "queue"),
        ({"due_at": 5}, "due_at"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_bad_input_is_422_naming_the_field(api: Api, change: dict[str, object], field: str) -> None:
    status, body, _ = await api.call("POST", "/callbacks", "1001", json={**new(), **change})
    assert status == 422, body
    assert body["error"]["code"] == "invalid" and body["error"]["field"] == field


async def test_a_time_outside_calling_hours_names_the_next_allowed_one(api: Api) -> None:
    status, _, _ = await api.call(
        "PUT",
        "/settings",
        "root",
        json={"scope": "general", "option": "calling_hours", "value": "daily 09:00-09:01"},
    )
    assert status == 200
    status, body, _ = await api.call("POST", "/callbacks", "1001", json=new(due_at="+3h"))
    if status == 201:  # the test ran inside the one open minute of the day: try the hour after
        status, body, _ = await api.call("POST", "/callbacks", "1001", json=new(due_at="+4h"))
    assert (status, body["error"]["field"]) == (422, "due_at")
    assert body["error"]["next_allowed"] is not None


async def test_the_feature_switch_off_refuses_creation_with_its_reason(api: Api) -> None:
    off = {"scope": "general", "option": "enabled", "value": "no"}
    status, body, _ = await api.call("PUT", "/settings", "root", json=off)
    assert status == 200
    assert any(line["option"] == "enabled" and line["runtime"] for line in body["settings"])
    status, body, _ = await api.call("POST", "/callbacks", "1001", json=new())
    assert (status, body["error"]["field"]) == (422, "enabled")
    assert "turned off" in body["error"]["message"]
    status, body, _ = await api.call("DELETE", "/settings?scope=general&option=enabled", "root")
    assert status == 200
    await create(api, "1001")


async def test_a_role_taken_away_at_run_time_is_refused_on_the_next_request(api: Api) -> None:
    await create(api, "1003")
    status, _, _ = await api.call("PUT", "/roles/listener", "root", json={"permissions": []})
    assert status == 200
    status, _, _ = await api.call("PUT", "/agents/1003/role", "root", json={"role": "listener"})
    assert status == 200
    status, body, _ = await api.call("POST", "/callbacks", "1003", json=new())
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, me, _ = await api.call("GET", "/me", "1003")
    assert (status, me["permissions"]) == (200, [])
    await api.call("DELETE", "/agents/1003/role", "root")
    status, me, _ = await api.call("GET", "/me", "1003")
    assert me["permissions"] == ["schedule_callback"]


async def test_settings_and_roles_need_manage_settings(api: Api) -> None:
    for method, path, kwargs in (
        ("GET", "/settings", {}),
        ("PUT", "/settings", {"json": {"scope": "general", "option": "max_attempts", "value": "5"}}),
        ("GET", "/roles", {}),
        ("PUT", "/agents/1001/role", {"json": {"role": "admin"}}),
    ):
        status, body, _ = await api.call(method, path, "1001", **kwargs)
        assert (status, body["error"]["code"]) == (403, "forbidden"), path
    status, body, _ = await api.call(
        "PUT", "/settings", "root", json={"scope": "agent/1001", "option": "max_attempts", "value": "500"}
    )
    assert (status, body["error"]["field"]) == (422, "value")


async def test_a_revoked_token_is_refused_at_once_and_tokens_never_echo(api: Api) -> None:
    status, _, _ = await api.call("GET", "/me", "1002")
    assert status == 200
    token_id = api.tokens["1002"].split("_")[1]
    await api.service.revoke(ADMIN, token_id)
    status, body, headers = await api.call("GET", "/me", "1002")
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert api.tokens["1002"] not in str(body) and "Bearer" in headers["WWW-Authenticate"]


async def test_health_and_readiness_answer_without_a_token(api: Api) -> None:
    status, body, _ = await api.call("GET", "/health")
    assert (status, body) == (200, {"status": "ok"})
    status, body, _ = await api.call("GET", "/ready")
    assert (status, body["ready"], body["redis"]) == (200, True, True)


async def test_queues_list_and_paging_filters(api: Api) -> None:
    status, body, _ = await api.call("GET", "/queues", "1001")
    assert (status, body["queues"]) == (200, ["failover", "support"])
    made = [await create(api, "1001", due_at=soon(hours)) for hours in (1, 2, 3)]
    status, page, _ = await api.call("GET", "/callbacks?limit=2", "1001")
    assert [c["id"] for c in page["callbacks"]] == [c["id"] for c in made[:2]]
    status, rest, _ = await api.call("GET", f"/callbacks?limit=2&cursor={page['next_cursor']}", "1001")
    assert [c["id"] for c in rest["callbacks"]] == [made[2]["id"]] and rest["next_cursor"] is None
    window = {"due_from": made[1]["due_at"], "due_until": made[2]["due_at"]}
    status, page, _ = await api.call("GET", "/callbacks", "1001", params=window)
    assert [c["id"] for c in page["callbacks"]] == [made[1]["id"]]
    status, body, _ = await api.call("GET", "/callbacks", "1001", params={"due_from": "2026-01-01T10:00"})
    assert (status, body["error"]["field"]) == (422, "due_from")  # a time without offset is ambiguous


async def test_huge_bodies_malformed_json_and_unknown_routes_get_the_json_shape(api: Api) -> None:
    status, body, _ = await api.call("POST", "/callbacks", "1001", json={**new(), "note": "x" * 10_000})
    assert (status, body["error"]["code"]) == (413, "too_large")
    status, body, _ = await api.call(
        "POST", "/callbacks", "1001", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert (status, body["error"]["code"]) == (400, "malformed")
    status, body, _ = await api.call("GET", "/nothing/here", "1001")
    assert (status, body["error"]["code"]) == (404, "no_route")


async def test_failed_authentications_are_rate_limited(api: Api) -> None:
    for _ in range(5):
        status, _, _ = await api.call(
            "GET", "/me", headers={"Authorization": "Bearer acb_00000000_" + "x" * 43}
        )
        assert status == 401
    status, body, headers = await api.call("GET", "/me", "1001")
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert "Retry-After" in headers
