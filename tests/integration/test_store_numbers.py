"""One lock and one index entry per phone number, whichever way it was written (lab Redis)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from test_store import changed, create, make_callback

from asterisk_cb.cli import main
from asterisk_cb.core.codec import FIELDS
from asterisk_cb.core.inputs import Waiting
from asterisk_cb.core.model import State
from asterisk_cb.core.numbers import NumberPlan
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient, connect
from asterisk_cb.store import CallLocks, Claim, Store
from asterisk_cb.store.scripts import Script

pytestmark = pytest.mark.lab

GERMANY = NumberPlan("49")
FORMS = ("+4930123456", "004930123456", "030123456")


@pytest.fixture
async def store(redis: RedisClient) -> AsyncIterator[Store]:
    """A store keying numbers under the German plan, in a namespace of its own."""
    store = Store(redis, Keys("test-" + uuid.uuid4().hex[:12], GERMANY))
    yield store
    await store.delete_namespace()


def under(redis: RedisClient, store: Store, plan: NumberPlan) -> Store:
    """The store's namespace as a daemon with another plan (or an older version) writes it."""
    return Store(redis, dataclasses.replace(store.keys, numbers=plan))


async def claims(store: Store, **numbers: str) -> dict[str, Claim]:
    """Claims of callbacks named by their keywords, each of its own agent (so only numbers can clash)."""
    callbacks = [
        make_callback(name, agent=f"10{index:02}", contact_number=number)
        for index, (name, number) in enumerate(numbers.items())
    ]
    await create(store, *callbacks)
    batch = await store.claim(len(callbacks), "daemon-a")
    return {claim.callback.id: claim for claim in batch.claims}


async def take(store: Store, claim: Claim) -> Waiting | None:
    return await store.take_call_locks(claim, CallLocks(claim.callback.agent, claim.callback.contact_number))


async def test_two_forms_of_one_number_never_hold_the_contact_lock_at_once(store: Store) -> None:
    held = await claims(store, e164="+4930123456", national="030123456", abroad="004930123456")
    assert await take(store, held["e164"]) is None
    assert await take(store, held["national"]) is Waiting.CONTACT
    assert await take(store, held["abroad"]) is Waiting.CONTACT

    await store.release_call_locks(held["e164"], CallLocks(held["e164"].callback.agent, "+4930123456"))
    assert await take(store, held["national"]) is None
    assert (await store.get("national")).contact_number == "030123456"  # dialled as entered


async def test_different_numbers_hold_their_locks_together(store: Store) -> None:
    held = await claims(store, one="+4930123456", other="030123457", extension="1001", short="112")
    assert [await take(store, claim) for claim in held.values()] == [None] * 4


async def test_callbacks_are_found_by_their_number_in_any_form(store: Store) -> None:
    await create(
        store,
        make_callback("e164", contact_number="+4930123456"),
        make_callback("national", contact_number="030123456"),
        make_callback("elsewhere", contact_number="+3330123456"),
    )
    assert [await store.ids_for_contact(form) for form in FORMS] == [{"e164", "national"}] * 3

    national = await store.get("national")
    await store.edit(national, changed(national, contact_number="030999"), [])
    assert await store.ids_for_contact("004930123456") == {"e164"}
    assert await store.ids_for_contact("+4930999") == {"national"}


async def test_reindex_moves_entries_of_literal_keys_and_of_another_plan(
    redis: RedisClient, store: Store
) -> None:
    """Callbacks written by a version that keyed numbers as entered, or under another plan, are found
    once the index is rebuilt; entries of callbacks gone meanwhile are dropped."""
    await create(under(redis, store, NumberPlan()), make_callback("literal", contact_number="030123456"))
    await create(under(redis, store, NumberPlan("33")), make_callback("france", contact_number="030123456"))
    await create(store, make_callback("current", contact_number="+4930123456"))
    await redis.hset(store.keys.contact_index, "004930123456", "gone")  # an older version's entry
    assert await store.ids_for_contact("030123456") == {"current"}

    assert await store.reindex_contacts() == 3
    assert [await store.ids_for_contact(form) for form in FORMS] == [{"literal", "france", "current"}] * 3
    assert await redis.hkeys(store.keys.contact_index) == ["+4930123456"]
    assert await store.reindex_contacts() == 0


async def test_reindex_drops_finished_callbacks_an_older_version_kept_listed(
    redis: RedisClient, store: Store
) -> None:
    await create(
        store,
        make_callback("pending", contact_number="+4930123456"),
        make_callback("done", contact_number="+4930123456"),
    )
    done = await store.get("done")
    await store.edit(
        done, changed(done, state=State.COMPLETED, finished_at=done.created_at, next_at=None), []
    )
    await redis.hset(store.keys.contact_index, "+4930123456", "pending done")  # as an older version left it
    assert await store.reindex_contacts() == 1
    assert await store.ids_for_contact("030123456") == {"pending"}
    assert await store.reindex_contacts() == 0


async def test_reindex_leaves_a_callback_whose_number_changed_since_it_was_read(
    redis: RedisClient, store: Store
) -> None:
    """A move is checked against the number read: the write that changed it indexed the callback."""
    await create(under(redis, store, NumberPlan()), make_callback("moving", contact_number="030123456"))
    listed = [("030123456", "moving")]
    moves = await store._misplaced(listed)  # read; then the callback changes
    moving = await store.get("moving")
    await store.edit(moving, changed(moving, contact_number="+4930999"), [])
    await store._scripts.run(
        Script.REINDEX,
        [store.keys.contact_index],
        [store.keys.callback_prefix, FIELDS["contact_number"], *moves],
    )
    assert await store.ids_for_contact("+4930123456") == set()
    assert await store.ids_for_contact("+4930999") == {"moving"}


def test_the_cli_rebuilds_the_index_for_the_configured_plan(
    tmp_path: Path, lab_redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = Keys("test-cli-" + uuid.uuid4().hex[:10])  # numbers keyed as entered, as before [numbers]
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(
        f"[redis]\nurl = {lab_redis_url}\nnamespace = {keys.namespace}\n"
        "[ari]\nuser = acb\npassword = pw\n[ami]\nuser = acb\nsecret = pw\n"
        "[dialing]\noutbound_context = callback-outbound\n[numbers]\ncountry_code = 49\n"
    )
    try:
        asyncio.run(
            on_lab(
                lab_redis_url,
                keys,
                lambda store: create(store, make_callback("literal", contact_number="030123456")),
            )
        )
        assert main(["--config", str(path), "reindex-contacts"]) == 0
        assert "1 moved" in capsys.readouterr().out
        assert main(["--config", str(path), "list", "--number", "+49 30 123456"]) == 0
        assert "literal" in capsys.readouterr().out
    finally:
        asyncio.run(on_lab(lab_redis_url, keys, Store.delete_namespace))


async def on_lab(url: str, keys: Keys, action: Callable[[Store], Awaitable[object]]) -> None:
    redis = connect(url)
    try:
        await action(Store(redis, keys))
    finally:
        await redis.aclose()
