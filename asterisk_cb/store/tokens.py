"""API tokens at rest: one hash, token id -> a JSON record holding the SHA-256 of the token's secret,
never the secret itself (``service_tokens`` makes and checks them; it alone knows the token's text)."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from asterisk_cb.store.base import StorePart

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenRecord:
    """One token as stored: ``digest`` is the hex SHA-256 of its secret; ``kind`` "agent" or "user"
    and ``name`` say whom it stands for."""

    token_id: str
    digest: str
    kind: str
    name: str
    created_at: datetime
    expires_at: datetime
    label: str


def _encode(record: TokenRecord) -> str:
    return json.dumps(
        {
            "digest": record.digest,
            "kind": record.kind,
            "name": record.name,
            "created_at": record.created_at.isoformat(),
            "expires_at": record.expires_at.isoformat(),
            "label": record.label,
        }
    )


def _decode(token_id: str, text: str) -> TokenRecord | None:
    """The record, or None for one this version cannot read (written by hand or by a newer version):
    such a token authenticates nobody, and the look-up of every other token still answers."""
    try:
        fields = json.loads(text)
        created_at, expires_at = (_moment(fields[name]) for name in ("created_at", "expires_at"))
        return TokenRecord(
            token_id,
            str(fields["digest"]),
            str(fields["kind"]),
            str(fields["name"]),
            created_at,
            expires_at,
            str(fields.get("label", "")),
        )
    except (ValueError, TypeError, KeyError):
        log.error("unreadable API token record ignored", extra={"token_id": token_id})
        return None


def _moment(text: str) -> datetime:
    """A time with its offset: a naive one could not be compared with the clock's."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment


class TokenRecords(StorePart):
    """Add, read and remove API token records (the service checks every value)."""

    async def add_token(self, record: TokenRecord) -> bool:
        """Store a new record; False (nothing written) when its id is taken already."""
        return bool(await self._redis.hsetnx(self._keys.tokens, record.token_id, _encode(record)))

    async def token(self, token_id: str) -> TokenRecord | None:
        text = await self._redis.hget(self._keys.tokens, token_id)
        return None if text is None else _decode(token_id, text)

    async def tokens(self) -> list[TokenRecord]:
        """Every readable record, in no particular order."""
        stored = await self._redis.hgetall(self._keys.tokens)
        records = (_decode(token_id, text) for token_id, text in stored.items())
        return [record for record in records if record is not None]

    async def remove_tokens(self, token_ids: Collection[str]) -> int:
        """Remove these records (revoked or expired); how many were there."""
        if not token_ids:
            return 0
        return int(await self._redis.hdel(self._keys.tokens, *token_ids))
