"""Key names: one hash tag per namespace (Cluster slot), and exact lexicographic index ranges."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from asterisk_cb import config, deployment
from asterisk_cb.core.numbers import NumberPlan
from asterisk_cb.keys import InvalidKeyPart, Keys, check_callback_id


def every_key(keys: Keys) -> list[str]:
    return [
        keys.due,
        keys.leases,
        keys.fence,
        keys.paused,
        keys.events,
        keys.callback("c1"),
        keys.history("c1"),
        keys.state_index("scheduled"),
        keys.due_order,
        keys.agent_due_order("1001"),
        keys.due_order_built,
        keys.contact_index,
        keys.call_index,
        keys.idempotency_bucket(20_417),
        keys.settings("queue/sales"),
        keys.settings_scopes,
        keys.roles,
        keys.agent_roles,
        keys.tokens,
    ]


@pytest.mark.parametrize("namespace", ["acb", "test-3f2a", "prod.eu"])
def test_every_key_of_a_namespace_maps_to_one_cluster_slot(namespace: str) -> None:
    keys = Keys(namespace)
    assert {key_slot(key.encode()) for key in every_key(keys)} == {key_slot(keys.prefix.encode())}
    assert len(set(every_key(keys))) == len(every_key(keys))


@pytest.mark.parametrize(
    "namespace", ["", "a{b", "a}b", "a:b", "a b", "a\x00b", "prod*", "pro?", "p[a]", "a\\b", "-x", "x" * 65]
)
def test_namespace_that_breaks_the_hash_tag_is_refused(namespace: str) -> None:
    with pytest.raises(InvalidKeyPart):
        Keys(namespace)


def test_callback_ids_with_whitespace_or_nul_are_refused() -> None:
    # Ids are listed space-separated in the index hashes.
    for bad in ["", "a b", "a\tb", "a\x00b"]:
        with pytest.raises(InvalidKeyPart):
            check_callback_id(bad)
    assert Keys("x").callback("c-1") == "{x}:cb:c-1"


def test_a_contact_number_is_locked_and_indexed_in_its_canonical_form() -> None:
    keys = Keys("x", NumberPlan("49"))
    locks = {keys.contact_lock(number) for number in ("+4930123456", "004930123456", "030123456")}
    assert locks == {"{x}:lock:contact:+4930123456"}
    assert keys.contact_entry("030123456") == "+4930123456"
    assert keys.contact_lock("1001") == "{x}:lock:contact:1001"  # an extension stays as it is
    assert Keys("x").contact_entry("030123456") == "030123456"  # no country code: kept


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True))
def test_the_scan_pattern_is_the_escaped_prefix_and_one_star(namespace: str) -> None:
    """Only the braces need escaping in an accepted namespace; the one ``*`` is the key's own part."""
    assert Keys(namespace).pattern == "\\{" + namespace + "\\}:*"


def test_a_namespace_with_glob_characters_is_refused_at_config_load(tmp_path: Path) -> None:
    """``prod*`` would let deleting one deployment's namespace reach every ``prod...`` one."""
    path = tmp_path / "asterisk-cb.conf"
    path.write_text("[redis]\nnamespace = prod*\n[ari]\nuser = a\npassword = b\n")
    file = config.load(path, other_sections=deployment.SECTIONS)
    with pytest.raises(
        config.ConfigError, match=r"conf:2 \[redis\]: namespace: 'prod\*' is not a valid namespace"
    ):
        deployment.from_settings_file(file)
