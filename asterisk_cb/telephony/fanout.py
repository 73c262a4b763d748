"""Hand each event to the subscribers that want its type, in order, shared by the ARI and AMI links.

Handlers run one after the other on the link's single consumer, so a subscriber sees events in the
order Asterisk sent them; a failing handler is logged and skipped, never allowed to stop the link.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Event = TypeVar("Event")
Handler = Callable[[Event], Awaitable[None] | None]


async def _call(handler: Callable[..., Awaitable[None] | None], *args: object) -> None:
    """Call a plain or async handler alike."""
    result = handler(*args)
    if inspect.isawaitable(result):
        await result


class Fanout(Generic[Event]):
    """Subscribers of one kind of thing (events, resync snapshots) on one link."""

    def __init__(self, component: str, logger: logging.Logger) -> None:
        self._component = component
        self._log = logger
        self._handlers: list[tuple[tuple[type, ...], Handler[Event]]] = []

    def subscribe(self, handler: Handler[Event], *types: type) -> Callable[[], None]:
        """Call `handler` for events of `types` (every event when none given); returns an unsubscriber."""
        entry = (types, handler)
        self._handlers.append(entry)
        return lambda: self._handlers.remove(entry)

    async def dispatch(self, event: Event, event_name: str) -> None:
        for types, handler in list(self._handlers):
            if types and not isinstance(event, types):
                continue
            try:
                await _call(handler, event)
            except Exception as exc:  # a handler bug must not kill the event stream
                self._log.error(
                    "event handler failed",
                    extra={"component": self._component, "event": event_name, "error": repr(exc)},
                    exc_info=self._log.isEnabledFor(logging.DEBUG),
                )
