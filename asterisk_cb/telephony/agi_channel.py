"""A call's channel as the daemon sees it through a helper channel's FastAGI session.

res_agi waits for a FastAGI server without any time limit, so the shipped Gosubs (feature code, inbound
hook) never run AGI on the call's own channel: a helper Local channel does, its extension naming the
call channel's uniqueid. The daemon reads that channel with ``IMPORT()`` and answers in ``SHARED()``
variables of it; the Gosub, which waits with a limit Asterisk enforces, reads them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

# Asterisk's uniqueid (optionally prefixed by systemname) and channel names as IMPORT() takes them: no
# character that would end the dialplan expression the daemon builds around them.
_UNIQUEID = re.compile(r"[A-Za-z0-9._-]{1,150}\Z")
_CHANNEL = re.compile(r"[A-Za-z0-9/@._;:+#~-]{1,150}\Z")


class AgiSession(Protocol):
    """What is needed of a FastAGI session (``telephony.fastagi.AgiSession``)."""

    async def get_full_variable(self, expression: str) -> str | None: ...

    async def set_variable(self, name: str, value: str) -> None: ...


class AgiRequest(Protocol):
    @property
    def env(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class CallChannel:
    """The call's channel, seen through the helper channel's AGI session."""

    session: AgiSession
    uniqueid: str

    async def get(self, expression: str) -> str:
        """A variable or function of the call's channel; "" when unset (or the channel is gone)."""
        return await self.session.get_full_variable(f"${{IMPORT({self.uniqueid},{expression})}}") or ""

    async def get_of(self, channel: str, expression: str) -> str:
        """The same, of another channel (the bridged peer), by name."""
        if not _CHANNEL.match(channel):
            return ""
        return await self.session.get_full_variable(f"${{IMPORT({channel},{expression})}}") or ""

    async def answer(self, values: Mapping[str, str]) -> None:
        """``SHARED(<name>)`` of the call's channel, in order: the Gosub waits for the last one."""
        for name, value in values.items():
            await self.session.set_variable(f"SHARED({name},{self.uniqueid})", value)


def call_channel(request: AgiRequest, session: AgiSession) -> CallChannel | None:
    """The call channel the helper channel names in its extension; None for anything else."""
    uniqueid = request.env.get("extension", "")
    return CallChannel(session, uniqueid) if _UNIQUEID.match(uniqueid) else None
