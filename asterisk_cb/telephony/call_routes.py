"""Which run hears what: ARI events go to the run following their channel, a person's change request
to the run holding its callback, and a resync to every run.

One owner for the routing tables, so a run registers and leaves through methods and nothing writes
another object's maps. Each run reads its signals from one inbox, in the order they came.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from asterisk_cb.runner import ChangeNotice
from asterisk_cb.telephony.ari_events import AriEvent, Channel, ChannelEvent, Dial
from asterisk_cb.telephony.ari_stream import AriEventStream, ResyncSnapshot


@dataclass(frozen=True)
class Resynced:
    """The channels Asterisk holds after an events gap (reconnect, resumed claim, silence), by id."""

    alive: Mapping[str, Channel]


Signal = AriEvent | Resynced | ChangeNotice
Inbox = asyncio.Queue[Signal]


class CallRoutes:
    """Routes signals to the inboxes of the runs; a run follows channels and holds one callback."""

    def __init__(self, events: AriEventStream) -> None:
        self._by_channel: dict[str, Inbox] = {}
        self._by_callback: dict[str, Inbox] = {}
        events.subscribe(self._route, ChannelEvent, Dial)
        events.on_resync(self._resync)

    def hold(self, callback_id: str, inbox: Inbox) -> None:
        """Change requests of ``callback_id`` go to ``inbox`` (the latest holder wins)."""
        self._by_callback[callback_id] = inbox

    def follow(self, channel_ids: Iterable[str], inbox: Inbox) -> None:
        for channel_id in channel_ids:
            self._by_channel[channel_id] = inbox

    def leave(self, callback_id: str, inbox: Inbox) -> None:
        """Forget what ``inbox`` registered (a newer run of the same callback keeps its own)."""
        if self._by_callback.get(callback_id) is inbox:
            del self._by_callback[callback_id]
        for channel_id in [key for key, target in self._by_channel.items() if target is inbox]:
            del self._by_channel[channel_id]

    def change_requested(self, callback_id: str | None) -> None:
        """A change of ``callback_id`` awaits its holder; None (a gap in the channel): every run looks."""
        if callback_id is None:
            targets: Iterable[Inbox] = self._by_callback.values()
        else:
            targets = [inbox] if (inbox := self._by_callback.get(callback_id)) is not None else []
        for inbox in targets:
            inbox.put_nowait(ChangeNotice())

    def _route(self, event: AriEvent) -> None:
        channel = event.peer if isinstance(event, Dial) else getattr(event, "channel", None)
        inbox = self._by_channel.get(channel.id) if channel is not None else None
        if inbox is not None:
            inbox.put_nowait(event)

    def _resync(self, snapshot: ResyncSnapshot) -> None:
        """Events may have been lost while the websocket was down: every run re-checks its channels."""
        alive = {channel.id: channel for channel in snapshot.channels}
        for inbox in {id(inbox): inbox for inbox in self._by_channel.values()}.values():
            inbox.put_nowait(Resynced(alive))
