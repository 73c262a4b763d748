"""An in-memory stand-in for the store parts the panel's services use (passwords, sessions, tokens, run-time
roles), with a clock the test moves; the Redis versions are exercised by tests/integration/api."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from asterisk_cb import roles
from asterisk_cb.service_passwords import PasswordService
from asterisk_cb.service_roles import RolesService
from asterisk_cb.service_tokens import TokenService
from asterisk_cb.store.passwords import PasswordRecord
from asterisk_cb.store.sessions import SessionRecord
from asterisk_cb.store.tokens import TokenRecord
from asterisk_cb.web.sessions import SessionLimits, Sessions

AGENTS = ("1001", "1002")
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, span: timedelta) -> None:
        self.now += span


@dataclass
class MemoryStore:
    passwords: dict[str, PasswordRecord] = field(default_factory=dict)
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    token_records: dict[str, TokenRecord] = field(default_factory=dict)

    async def role_overrides(self) -> tuple[dict[str, str], dict[str, str]]:
        return {}, {}

    async def password(self, principal: str) -> PasswordRecord | None:
        return self.passwords.get(principal)

    async def put_password(self, principal: str, record: PasswordRecord) -> None:
        self.passwords[principal] = record

    async def put_session(self, digest: str, record: SessionRecord, ttl_ms: int) -> bool:
        if digest in self.sessions:
            return False
        self.sessions[digest] = record
        return True

    async def session(self, digest: str) -> SessionRecord | None:
        return self.sessions.get(digest)

    async def touch_session(self, digest: str, record: SessionRecord) -> None:
        if digest in self.sessions:
            self.sessions[digest] = record

    async def remove_session(self, digest: str) -> None:
        self.sessions.pop(digest, None)

    async def add_token(self, record: TokenRecord) -> bool:
        return self.token_records.setdefault(record.token_id, record) is record

    async def token(self, token_id: str) -> TokenRecord | None:
        return self.token_records.get(token_id)

    async def tokens(self) -> list[TokenRecord]:
        return list(self.token_records.values())

    async def remove_tokens(self, token_ids: list[str]) -> int:
        return sum(self.token_records.pop(token_id, None) is not None for token_id in token_ids)


@dataclass
class Panel:
    """The panel's services over one ``MemoryStore`` and ``Clock``."""

    store: MemoryStore
    clock: Clock
    passwords: PasswordService
    tokens: TokenService
    sessions: Sessions


def panel(limits: SessionLimits | None = None) -> Panel:
    store, clock = MemoryStore(), Clock()
    role_service = RolesService(store, roles.NO_ROLES, AGENTS)
    passwords = PasswordService(store, role_service)
    tokens = TokenService(store, role_service, clock)
    sessions = Sessions(store, passwords, tokens, role_service, limits or SessionLimits(), clock=clock)
    return Panel(store, clock, passwords, tokens, sessions)
