"""Panel sessions: signed in with a password or an API token, held by a random cookie, ended by sign-out,
by the idle timeout or the maximum age, and by the credential going away.

The credential is re-checked at every request, not only at sign-in: a session signed in with a token
ends once the token is revoked or expires, one signed in with a password once the password changes (its
generation moved), and either takes the role the agent or user holds now. Only the SHA-256 of the
cookie is stored (``store.sessions``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from asterisk_cb.service_access import Actor, ServiceError
from asterisk_cb.service_passwords import Identity, PasswordService
from asterisk_cb.service_roles import RolesService
from asterisk_cb.service_tokens import AGENT, TokenService, parse_token
from asterisk_cb.store.sessions import SessionRecord

PASSWORD, TOKEN = "password", "token"  # SessionRecord.via
_ID_BYTES = 32


class SessionStore(Protocol):
    """The store's session methods (``asterisk_cb.store.sessions.SessionRecords``)."""

    async def put_session(self, digest: str, record: SessionRecord, ttl_ms: int) -> bool: ...

    async def session(self, digest: str) -> SessionRecord | None: ...

    async def touch_session(self, digest: str, record: SessionRecord) -> None: ...

    async def remove_session(self, digest: str) -> None: ...


@dataclass(frozen=True)
class SessionLimits:
    """``[api] session_idle``: unused this long, a session ends; ``session_max_age``: it ends this long
    after sign-in however busy it is."""

    idle: timedelta = timedelta(minutes=30)
    max_age: timedelta = timedelta(hours=12)


def expired(record: SessionRecord, now: datetime, limits: SessionLimits) -> bool:
    """Whether ``record`` is over at ``now``: idle too long, or too old."""
    return now - record.last_seen >= limits.idle or now - record.created_at >= limits.max_age


def digest_of(session_id: str) -> str:
    """What is stored of a session id (a cookie): its SHA-256, hex. Any text is accepted: a cookie a
    client made up simply names no session."""
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Signed:
    """A live session: its id's digest (names it for tickets), its record, and who it is now."""

    digest: str
    record: SessionRecord
    actor: Actor

    @property
    def is_agent(self) -> bool:
        return self.record.kind == AGENT


class Sessions:
    """Start, resume and end panel sessions. ``clock``: the current time, aware."""

    def __init__(
        self,
        store: SessionStore,
        passwords: PasswordService,
        tokens: TokenService,
        roles: RolesService,
        limits: SessionLimits,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._tokens = tokens
        self._roles = roles
        self._limits = limits
        self._clock = clock

    @property
    def limits(self) -> SessionLimits:
        return self._limits

    async def sign_in_password(self, name: str, password: str) -> str | None:
        """A new session's id for ``name`` with ``password``; None when they do not match."""
        checked = await self._passwords.check(name, password)
        if checked is None:
            return None
        identity, generation = checked
        return await self._start(identity, PASSWORD, str(generation))

    async def sign_in_token(self, token: str) -> str | None:
        """A new session's id for an API token's agent or user; None for a token that is not valid."""
        holder = await self._tokens.holder(token)
        parsed = parse_token(token)
        if holder is None or parsed is None:
            return None
        return await self._start(Identity(*holder), TOKEN, parsed[0])

    async def _start(self, identity: Identity, via: str, credential: str) -> str:
        now = self._clock()
        ttl_ms = max(1, round(self._limits.max_age.total_seconds() * 1000))
        while True:  # an id drawn twice (never, at 256 bits) is drawn again rather than shared
            session_id = secrets.token_urlsafe(_ID_BYTES)
            csrf = secrets.token_urlsafe(_ID_BYTES)
            record = SessionRecord(identity.kind, identity.name, via, credential, csrf, now, now)
            if await self._store.put_session(digest_of(session_id), record, ttl_ms):
                return session_id

    async def resume(self, session_id: str) -> Signed | None:
        """The session of the cookie ``session_id`` if it lives, now marked used; None (and the
        session removed) once it expired or its credential no longer holds."""
        signed = await self.current(digest_of(session_id))
        if signed is not None:
            await self._store.touch_session(signed.digest, signed.record.seen(self._clock()))
        return signed

    async def current(self, digest: str) -> Signed | None:
        """The session stored under ``digest`` with its actor now, without marking it used (the live
        events re-check a session this way while it streams)."""
        record = await self._store.session(digest)
        if record is None:
            return None
        actor = None if expired(record, self._clock(), self._limits) else await self._actor_of(record)
        if actor is None:
            await self._store.remove_session(digest)
            return None
        return Signed(digest, record, actor)

    async def actor_of_digest(self, digest: str) -> Actor | None:
        signed = await self.current(digest)
        return None if signed is None else signed.actor

    async def end(self, session_id: str) -> None:
        await self._store.remove_session(digest_of(session_id))

    async def _actor_of(self, record: SessionRecord) -> Actor | None:
        """The record's actor with the role held now, if its credential still holds."""
        if record.via == TOKEN:
            return await self._tokens.actor_for_token_id(record.credential)
        identity = Identity(record.kind, record.name)
        if record.via != PASSWORD or await self._passwords.generation(identity) != int(record.credential):
            return None
        actor_of = self._roles.actor_for_agent if record.kind == AGENT else self._roles.actor_for_user
        try:
            return await actor_of(record.name)
        except ServiceError:  # the agent left [agents], the user [users]
            return None
