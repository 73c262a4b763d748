"""Panel passwords: scrypt with a random salt and its parameters stored beside the hash, a generation
that grows at each change, and a check that never says which part was wrong."""

from __future__ import annotations

import dataclasses

import pytest
from panel_fakes import panel

from asterisk_cb.service_access import ADMIN, Actor, ErrorCode, Permission, ServiceError
from asterisk_cb.service_passwords import SCRYPT_N, hash_password, matches, new_record


def test_the_hash_depends_on_the_password_the_salt_and_the_parameters() -> None:
    salt = b"0123456789abcdef"
    digest = hash_password("1234", salt, n=1024)
    assert digest == hash_password("1234", salt, n=1024)
    assert digest != hash_password("1235", salt, n=1024)
    assert digest != hash_password("1234", b"fedcba9876543210", n=1024)
    assert digest != hash_password("1234", salt, n=2048)
    assert "1234" not in digest


def test_a_record_has_a_fresh_salt_and_matches_only_its_password() -> None:
    first, second = new_record("correct horse", 1), new_record("correct horse", 1)
    assert first.salt != second.salt and first.digest != second.digest
    assert first.n == SCRYPT_N
    assert matches(first, "correct horse") and matches(second, "correct horse")
    assert not matches(first, "correct horsf")
    assert not matches(first, "")


def test_a_record_is_checked_with_its_own_parameters() -> None:
    """Raising SCRYPT_N later must not lock out a password hashed with the old one."""
    record = new_record("old one", 1)
    weaker = dataclasses.replace(
        record, n=1024, digest=hash_password("old one", bytes.fromhex(record.salt), 1024)
    )
    assert matches(weaker, "old one")


async def test_setting_a_password_bumps_its_generation_and_the_check_finds_it() -> None:
    services = panel()
    identity, generation = await services.passwords.set_password(ADMIN, "1001", "first")
    assert (identity.kind, identity.name, generation) == ("agent", "1001", 1)
    assert (await services.passwords.set_password(ADMIN, "1001", "second"))[1] == 2
    assert await services.passwords.check("1001", "first") is None
    assert await services.passwords.check("1001", "second") == (identity, 2)
    assert "second" not in repr(services.store.passwords)


@pytest.mark.parametrize(("name", "password"), [("1002", "anything"), ("nobody", "second"), ("", "")])
async def test_a_name_without_a_password_or_unknown_is_no_sign_in(name: str, password: str) -> None:
    services = panel()
    await services.passwords.set_password(ADMIN, "1001", "second")
    assert await services.passwords.check(name, password) is None


async def test_only_an_administrator_sets_passwords_and_within_bounds() -> None:
    services = panel()
    agent = Actor("1001", frozenset({Permission.SCHEDULE, Permission.MANAGE_SETTINGS}))
    with pytest.raises(ServiceError) as refused:
        await services.passwords.set_password(agent, "1001", "mine now")
    assert refused.value.code is ErrorCode.FORBIDDEN
    for bad in ("123", "x" * 257):
        with pytest.raises(ServiceError) as refused:
            await services.passwords.set_password(ADMIN, "1001", bad)
        assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, "password")
    with pytest.raises(ServiceError) as refused:
        await services.passwords.set_password(ADMIN, "9999", "long enough")
    assert refused.value.field == "name"
