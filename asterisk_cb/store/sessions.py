"""Panel sessions at rest: ``session:<digest>`` -> a JSON record, under the SHA-256 of the session id
(the cookie), so a Redis dump or MONITOR holds no cookie to replay. Redis forgets a session at its
maximum age; the idle timeout is the service's (``web.sessions``), from ``last_seen``."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime

from asterisk_cb.store.base import StorePart

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionRecord:
    """Who signed in (``kind`` "agent" or "user", ``name``), with what: ``via`` "password" (then
    ``credential`` is the password's generation) or "token" (the token's id); its CSRF token; when it
    began and when it was last used."""

    kind: str
    name: str
    via: str
    credential: str
    csrf: str
    created_at: datetime
    last_seen: datetime

    def seen(self, now: datetime) -> SessionRecord:
        return replace(self, last_seen=now)


def _encode(record: SessionRecord) -> str:
    fields = vars(record) | {
        "created_at": record.created_at.isoformat(),
        "last_seen": record.last_seen.isoformat(),
    }
    return json.dumps(fields)


def _decode(text: str) -> SessionRecord | None:
    """The record, or None for one this version cannot read (that session is over)."""
    try:
        fields = json.loads(text)
        return SessionRecord(
            *(str(fields[name]) for name in ("kind", "name", "via", "credential", "csrf")),
            created_at=datetime.fromisoformat(fields["created_at"]),
            last_seen=datetime.fromisoformat(fields["last_seen"]),
        )
    except (ValueError, TypeError, KeyError):
        log.error("unreadable panel session record ignored")
        return None


class SessionRecords(StorePart):
    """Keep, read, refresh and remove sessions by digest."""

    async def put_session(self, digest: str, record: SessionRecord, ttl_ms: int) -> bool:
        """A new session, gone after ``ttl_ms``; False (nothing written) when the digest is taken."""
        written = await self._redis.set(self._keys.session(digest), _encode(record), px=ttl_ms, nx=True)
        return bool(written)

    async def session(self, digest: str) -> SessionRecord | None:
        text = await self._redis.get(self._keys.session(digest))
        return None if text is None else _decode(text)

    async def touch_session(self, digest: str, record: SessionRecord) -> None:
        """Write the record back (its ``last_seen`` moved) keeping its expiry; a session removed
        meanwhile (signed out) stays removed."""
        await self._redis.set(self._keys.session(digest), _encode(record), keepttl=True, xx=True)

    async def remove_session(self, digest: str) -> None:
        await self._redis.delete(self._keys.session(digest))
