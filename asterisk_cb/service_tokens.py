"""API tokens through the service: made and shown once, stored hashed, each standing for one agent of
``[agents]`` or one user of ``[users]``.

A token reads ``acb_<id>_<secret>``. The id (8 hex characters) is public: lists and revocations name
it. The secret (32 random bytes, URL-safe base64) is shown once and only its SHA-256 is stored. A slow
password hash (bcrypt, scrypt, argon2) makes guessing a person's low-entropy password from a leaked hash
expensive; 256 random bits cannot be guessed at any speed, so one SHA-256 is as safe and keeps
``authenticate``, run on every API request, cheap.

A token holds no permissions: ``authenticate`` resolves its agent's or user's role at each call, so a
role changed at run time, an agent removed from ``[agents]`` or a user from ``[users]`` applies to the
very next request, and so does a revocation (the record is gone).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from asterisk_cb.core.durations import format_duration
from asterisk_cb.service_access import Actor, ErrorCode, Permission, ServiceError, require
from asterisk_cb.service_roles import RolesService
from asterisk_cb.store.tokens import TokenRecord

AGENT, USER = "agent", "user"  # TokenInfo.kind: whom a token stands for
DEFAULT_LIFETIME = timedelta(days=90)
LIFETIME_BOUNDS = (timedelta(minutes=1), timedelta(days=730))
MAX_LABEL = 80

_PREFIX = "acb_"
_ID_BYTES = 4  # 8 hex characters
_SECRET_BYTES = 32  # token_urlsafe: 43 characters of [A-Za-z0-9_-]
TOKEN_LENGTH = len(_PREFIX) + 2 * _ID_BYTES + 1 + 43
_TOKEN = re.compile(r"acb_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_TOKEN_ID = re.compile(r"[0-9a-f]{8}")


def format_token(token_id: str, secret: str) -> str:
    return f"{_PREFIX}{token_id}_{secret}"


def parse_token(text: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None. The length and charset are checked before the
    pattern: a face may hand over anything a client sent, megabytes or other scripts included."""
    if len(text) != TOKEN_LENGTH or not text.isascii():
        return None
    match = _TOKEN.fullmatch(text)
    return (match[1], match[2]) if match else None


def secret_digest(secret: str) -> str:
    """What is stored of a secret: its SHA-256, hex (fast on purpose: see the module's docstring)."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


class TokenStore(Protocol):
    """What the token service needs from the store."""

    async def add_token(self, record: TokenRecord) -> bool: ...

    async def token(self, token_id: str) -> TokenRecord | None: ...

    async def tokens(self) -> list[TokenRecord]: ...

    async def remove_tokens(self, token_ids: list[str]) -> int: ...


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: everything but its secret (which is not kept)."""

    token_id: str
    kind: str  # AGENT or USER
    name: str  # the agent id or user name
    created_at: datetime
    expires_at: datetime
    label: str

    @classmethod
    def of(cls, record: TokenRecord) -> TokenInfo:
        return cls(
            record.token_id, record.kind, record.name, record.created_at, record.expires_at, record.label
        )


class TokenService:
    """Create, list and revoke tokens (``administer``), and turn a token into its ``Actor``.

    ``clock``: the current time, aware (tests move it to expire tokens)."""

    def __init__(self, store: TokenStore, roles: RolesService, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock
        self._actor_of: dict[str, Callable[[str], Awaitable[Actor]]] = {
            AGENT: roles.actor_for_agent,
            USER: roles.actor_for_user,
        }

    async def create(
        self,
        actor: Actor,
        *,
        agent: str | None = None,
        user: str | None = None,
        lifetime: timedelta = DEFAULT_LIFETIME,
        label: str = "",
    ) -> tuple[str, TokenInfo]:
        """A new token for exactly one of ``agent`` (of ``[agents]``) or ``user`` (of ``[users]``): its
        text, to show once (nothing can show it again), and its record. Refusals are INVALID naming
        ``agent``, ``user``, ``expires`` (``lifetime`` outside 1 minute to 2 years) or ``label``."""
        require(actor, Permission.ADMINISTER, "create API tokens")
        kind, name = _identity(agent, user)
        await self._actor_of[kind](name)  # refuses an unknown agent or user, naming its field
        _check_lifetime(lifetime)
        _check_label(label)
        now = self._clock()
        await self._live(now)  # purges the expired ones
        while True:  # an id already taken (1 in 2**32 per token held) is drawn again
            secret = secrets.token_urlsafe(_SECRET_BYTES)
            record = TokenRecord(
                secrets.token_hex(_ID_BYTES), secret_digest(secret), kind, name, now, now + lifetime, label
            )
            if await self._store.add_token(record):
                return format_token(record.token_id, secret), TokenInfo.of(record)

    async def list(self, actor: Actor) -> list[TokenInfo]:
        """The tokens not expired (the expired ones are removed), oldest first; never a secret."""
        require(actor, Permission.ADMINISTER, "list API tokens")
        live = await self._live(self._clock())
        return [TokenInfo.of(record) for record in sorted(live, key=lambda record: record.created_at)]

    async def revoke(self, actor: Actor, token_id: str) -> TokenInfo:
        """Remove a token: the next ``authenticate`` with it fails. An id that is not 8 hex characters
        is INVALID (field ``token_id``); an unknown one NOT_FOUND."""
        require(actor, Permission.ADMINISTER, "revoke API tokens")
        if not (token_id.isascii() and _TOKEN_ID.fullmatch(token_id)):
            raise ServiceError(
                ErrorCode.INVALID, f"{token_id!r} is not a token id (8 hex digits)", "token_id"
            )
        record = await self._store.token(token_id)
        if record is None or not await self._store.remove_tokens([token_id]):
            raise ServiceError(ErrorCode.NOT_FOUND, f"no token {token_id}", "token_id")
        return TokenInfo.of(record)

    async def authenticate(self, token: str) -> Actor | None:
        """The token's agent or user as an ``Actor`` with its role's permissions now; None for a
        malformed, unknown, wrong, expired (then removed) or revoked token, and for an agent or user
        no longer configured. Never raises for any text (Redis being down is raised as it is) and
        never logs the token."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        record = await self._store.token(token_id)
        if record is None or not hmac.compare_digest(record.digest, secret_digest(secret)):
            return None
        return await self._actor_of_record(record)

    async def actor_for_token_id(self, token_id: str) -> Actor | None:
        """The actor of the token ``token_id`` stands for, if it is still valid: what a live-events
        ticket (issued to a token, checked once it is redeemed) resolves to, so revoking the token
        revokes its tickets too. None like ``authenticate``."""
        if not (token_id.isascii() and _TOKEN_ID.fullmatch(token_id)):
            return None
        record = await self._store.token(token_id)
        return None if record is None else await self._actor_of_record(record)

    async def holder(self, token: str) -> tuple[str, str] | None:
        """(kind, name) of a valid token: whom it stands for (a panel session signed in with it keeps
        that, and re-checks the token by id at every request); None like ``authenticate``."""
        parsed = parse_token(token)
        if parsed is None or await self.authenticate(token) is None:
            return None
        record = await self._store.token(parsed[0])
        return None if record is None else (record.kind, record.name)

    async def _actor_of_record(self, record: TokenRecord) -> Actor | None:
        if record.expires_at <= self._clock():
            await self._store.remove_tokens([record.token_id])
            return None
        actor_of = self._actor_of.get(record.kind)
        if actor_of is None:
            return None
        try:
            return await actor_of(record.name)
        except ServiceError:  # the agent left [agents], the user [users]
            return None

    async def _live(self, now: datetime) -> list[TokenRecord]:
        """The records not expired at ``now``; the expired ones are removed on the way."""
        records = await self._store.tokens()
        expired = [record.token_id for record in records if record.expires_at <= now]
        await self._store.remove_tokens(expired)
        return [record for record in records if record.expires_at > now]


def _identity(agent: str | None, user: str | None) -> tuple[str, str]:
    """(kind, name) of exactly one of them; neither is INVALID naming ``agent``, both naming ``user``."""
    if agent is not None and user is None:
        return AGENT, agent
    if user is not None and agent is None:
        return USER, user
    field = USER if agent is not None else AGENT
    raise ServiceError(ErrorCode.INVALID, "a token is for exactly one agent or one user", field)


def _check_lifetime(lifetime: timedelta) -> None:
    low, high = LIFETIME_BOUNDS
    if not low <= lifetime <= high:
        bounds = f"{format_duration(low)} to {format_duration(high)}"
        message = f"a token's lifetime {format_duration(lifetime)} is outside {bounds}"
        raise ServiceError(ErrorCode.INVALID, message, "expires")


def _check_label(label: str) -> None:
    if len(label) > MAX_LABEL or not label.isprintable():
        message = f"a label is at most {MAX_LABEL} printable characters (no control characters)"
        raise ServiceError(ErrorCode.INVALID, message, "label")
