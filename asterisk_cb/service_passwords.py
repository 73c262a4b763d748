"""Panel passwords through the service: set by an admin (``asterisk-cb user set-password``), checked at
a panel sign-in, each for one agent of ``[agents]`` or one user of ``[users]``.

A person's password (or PIN) has little entropy, unlike an API token's 256 random bits, so it is
stored as a slow hash: scrypt from the standard library, a random salt per password, the parameters
kept beside the hash so raising them later does not lock anyone out. Checking runs in a worker thread
(tens of milliseconds of CPU must not stall the daemon's calls) and, for a name without a password,
hashes anyway, so the answer's timing does not say which names exist. Each change bumps the record's
generation: a session signed in with an older one ends at its next request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol

from asterisk_cb.service_access import Actor, ErrorCode, Permission, ServiceError, require
from asterisk_cb.service_roles import RolesService
from asterisk_cb.service_tokens import AGENT, USER
from asterisk_cb.store.passwords import PasswordRecord

PASSWORD_LENGTH = (4, 256)  # a 4-digit PIN is allowed: failed sign-ins are rate-limited per address
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB and ~50 ms a check on a small server
_SALT_BYTES = 16
_DIGEST_BYTES = 32
_MAX_MEMORY = 64 * 1024 * 1024  # above 128 * r * n for any parameters this module writes


class PasswordStore(Protocol):
    """What the password service needs from the store."""

    async def password(self, principal: str) -> PasswordRecord | None: ...

    async def put_password(self, principal: str, record: PasswordRecord) -> None: ...


@dataclass(frozen=True)
class Identity:
    """Whom a password or a session stands for: ``kind`` AGENT or USER, and the agent id or user name."""

    kind: str
    name: str

    @property
    def principal(self) -> str:
        return f"{self.kind}:{self.name}"


def hash_password(password: str, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """The hex scrypt digest of ``password`` with ``salt`` and these parameters."""
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEMORY, dklen=_DIGEST_BYTES
    )
    return digest.hex()


def new_record(password: str, generation: int) -> PasswordRecord:
    """A record for ``password`` with a fresh random salt and the current parameters."""
    salt = secrets.token_bytes(_SALT_BYTES)
    return PasswordRecord(hash_password(password, salt), salt.hex(), SCRYPT_N, SCRYPT_R, SCRYPT_P, generation)


def matches(record: PasswordRecord, password: str) -> bool:
    """Whether ``password`` is the one ``record`` was made from (compared in constant time)."""
    digest = hash_password(password, bytes.fromhex(record.salt), record.n, record.r, record.p)
    return hmac.compare_digest(digest, record.digest)


_DECOY = new_record(secrets.token_urlsafe(16), 0)  # what a name without a password is checked against


class PasswordService:
    """Set passwords (``administer``) and check them at sign-in."""

    def __init__(self, store: PasswordStore, roles: RolesService) -> None:
        self._store = store
        self._roles = roles

    async def identify(self, name: str) -> Identity:
        """``name`` as an agent of ``[agents]``, else a user of ``[users]``; neither is INVALID naming
        ``name``."""
        for kind, actor_of in ((AGENT, self._roles.actor_for_agent), (USER, self._roles.actor_for_user)):
            try:
                await actor_of(name)
            except ServiceError:
                continue
            return Identity(kind, name)
        raise ServiceError(
            ErrorCode.INVALID, f"{name!r} is neither an agent of [agents] nor a [users] user", "name"
        )

    async def set_password(self, actor: Actor, name: str, password: str) -> tuple[Identity, int]:
        """Set ``name``'s password: its identity and the new generation (every session signed in with
        the older password ends). A password outside 4 to 256 characters is INVALID (``password``)."""
        require(actor, Permission.ADMINISTER, "set panel passwords")
        identity = await self.identify(name)
        low, high = PASSWORD_LENGTH
        if not low <= len(password) <= high:
            raise ServiceError(ErrorCode.INVALID, f"a password is {low} to {high} characters", "password")
        before = await self._store.password(identity.principal)
        generation = (before.generation if before else 0) + 1
        record = await asyncio.to_thread(new_record, password, generation)
        await self._store.put_password(identity.principal, record)
        return identity, generation

    async def check(self, name: str, password: str) -> tuple[Identity, int] | None:
        """(identity, generation) when ``password`` is ``name``'s; None for anything else, never saying
        which part was wrong. Never raises for any text (Redis being down is raised as it is)."""
        try:
            identity = await self.identify(name)
        except ServiceError:
            identity = None
        record = await self._store.password(identity.principal) if identity else None
        good = await asyncio.to_thread(matches, record or _DECOY, password[: PASSWORD_LENGTH[1]])
        if identity is None or record is None or not good:
            return None
        return identity, record.generation

    async def generation(self, identity: Identity) -> int | None:
        """The current generation of ``identity``'s password; None when it has none."""
        record = await self._store.password(identity.principal)
        return None if record is None else record.generation
