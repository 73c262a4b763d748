"""Who asks, what they may do, and how the service says no: shared by every part of the service.

A face (CLI, FastAGI, API, panel) turns its caller into an ``Actor``; the service checks the actor's
permissions and answers a refusal with a ``ServiceError`` whose ``code`` the face maps to its own
terms (an HTTP status, an exit code, a prompt).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Permission(StrEnum):
    """What a caller may do; roles are sets of these (the API maps tokens to roles)."""

    SCHEDULE = "schedule_callback"  # schedule, and change or cancel one's own callbacks
    MANAGE = "manage_callbacks"  # change or cancel anyone's callbacks
    VIEW_ALL = "view_all_callbacks"  # list every agent's callbacks, not only one's own
    MANAGE_SETTINGS = "manage_settings"  # read and change the run-time settings overrides
    ADMINISTER = "administer"  # the deployment's upkeep: the event stream's consumer groups


@dataclass(frozen=True)
class Actor:
    """Who asks: an agent id or user name (recorded as created_by/cancelled_by) and what it may do."""

    name: str
    permissions: frozenset[Permission]

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions


ADMIN = Actor("admin", frozenset(Permission))


class ErrorCode(StrEnum):
    """Stable error codes (the API maps them to HTTP statuses, the CLI to exit codes)."""

    INVALID = "invalid"  # 422: a field is wrong; ``field`` names it
    FORBIDDEN = "forbidden"  # 403
    NOT_FOUND = "not_found"  # 404
    CONFLICT = "conflict"  # 409: the callback is ringing, talking or finished, or changed meanwhile
    UNAVAILABLE = "unavailable"  # 503: a backing service (the CDR database) is down or not configured


class ServiceError(Exception):
    """A refusal a person can act on: ``code``, the ``field`` at fault (if any) and a full sentence;
    ``next_allowed``: for a due time outside calling hours, the next time that is not."""

    def __init__(
        self, code: ErrorCode, message: str, field: str | None = None, next_allowed: datetime | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message
        self.next_allowed = next_allowed


def require(actor: Actor, permission: Permission, doing: str = "") -> None:
    """Refuse (FORBIDDEN) an actor without ``permission``; ``doing`` words the refusal."""
    if not actor.may(permission):
        what = doing or permission.value.replace("_", " ")
        raise ServiceError(ErrorCode.FORBIDDEN, f"{actor.name} is not allowed to {what}")
