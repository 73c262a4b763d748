"""Panel passwords at rest: one hash, ``<kind>:<name>`` -> a JSON record holding the scrypt hash, its
salt and parameters (so they can be raised later without locking anyone out) and a generation number
that grows at every change: a session remembers the generation it signed in with, and ends when the
password changes (``service_passwords`` makes and checks them)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from asterisk_cb.store.base import StorePart

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PasswordRecord:
    """One password as stored: ``digest`` and ``salt`` hex; ``n``, ``r``, ``p`` scrypt's parameters."""

    digest: str
    salt: str
    n: int
    r: int
    p: int
    generation: int


def _encode(record: PasswordRecord) -> str:
    return json.dumps(vars(record))


def _decode(principal: str, text: str) -> PasswordRecord | None:
    """The record, or None for one this version cannot read: nobody signs in with it (and it is
    logged, without its content)."""
    try:
        fields = json.loads(text)
        return PasswordRecord(
            str(fields["digest"]),
            str(fields["salt"]),
            *(int(fields[name]) for name in ("n", "r", "p", "generation")),
        )
    except (ValueError, TypeError, KeyError):
        log.error("unreadable panel password record ignored", extra={"principal": principal})
        return None


class PasswordRecords(StorePart):
    """Read and write panel password records (the service hashes and checks them)."""

    async def password(self, principal: str) -> PasswordRecord | None:
        text = await self._redis.hget(self._keys.passwords, principal)
        return None if text is None else _decode(principal, text)

    async def put_password(self, principal: str, record: PasswordRecord) -> None:
        await self._redis.hset(self._keys.passwords, principal, _encode(record))
