"""Key names: one hash tag per namespace (Cluster slot), and exact lexicographic index ranges."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from asterisk_cb.keys import InvalidKeyPart, Keys, lex_callback_id, lex_member, lex_range


def every_key(keys: Keys) -> list[str]:
    return [
        keys.due,
        keys.leases,
        keys.fence,
        keys.paused,
        keys.events,
        keys.callback("c1"),
        keys.state_index("scheduled"),
        keys.agent_index("1001"),
        keys.contact_index,
        keys.call_index,
        keys.idempotency("request-7"),
        keys.settings("queue:sales"),
        keys.settings_scopes,
    ]


@pytest.mark.parametrize("namespace", ["acb", "test-3f2a", "prod.eu"])
def test_every_key_of_a_namespace_maps_to_one_cluster_slot(namespace: str) -> None:
    keys = Keys(namespace)
    assert {key_slot(key.encode()) for key in every_key(keys)} == {key_slot(keys.prefix.encode())}
    assert len(set(every_key(keys))) == len(every_key(keys))


@pytest.mark.parametrize("namespace", ["", "a{b", "a}b", "a:b", "a b", "a\x00b"])
def test_namespace_that_breaks_the_hash_tag_is_refused(namespace: str) -> None:
    with pytest.raises(InvalidKeyPart):
        Keys(namespace)


def test_lex_range_selects_exactly_one_value() -> None:
    members = sorted(lex_member(value, f"id-{value}") for value in ["1234", "12345", "123", "1235", "+1234"])
    low, high = lex_range("1234")
    # Redis compares members bytewise, as Python compares these ASCII strings.
    selected = [m for m in members if low[1:] < m < high[1:]]
    assert [lex_callback_id(m) for m in selected] == ["id-1234"]


def test_key_parts_with_nul_or_empty_are_refused() -> None:
    with pytest.raises(InvalidKeyPart):
        Keys().callback("")
    with pytest.raises(InvalidKeyPart):
        lex_member("12\x0034", "c1")
