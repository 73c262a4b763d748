"""A panel form checked like the API's JSON body: the same pydantic model, then the same service call,
so a refusal names the same field (``due_at``, ``timezone``, ``contact_number``...) and the page shows
its message beside that field."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from asterisk_cb.api.errors import ApiError
from asterisk_cb.service_access import ServiceError

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
GENERAL = "form"  # the key of a refusal that names no field


@dataclass
class Problems:
    """Messages by field name; ``next_allowed``: a due time outside calling hours, the next one."""

    by_field: dict[str, str] = field(default_factory=dict)
    next_allowed: datetime | None = None

    def __bool__(self) -> bool:
        return bool(self.by_field)

    def get(self, name: str) -> str | None:
        return self.by_field.get(name)


def parsed(model: type[M], values: Mapping[str, object], problems: Problems) -> M | None:
    """``values`` as ``model`` (empty fields left out, as a JSON body would leave them); None with
    every field's problem noted."""
    try:
        return model.model_validate({name: value for name, value in values.items() if value != ""})
    except ValidationError as error:
        for found in error.errors(include_url=False, include_input=False):
            name = ".".join(str(part) for part in found["loc"]) or GENERAL
            problems.by_field.setdefault(name, found["msg"])
        return None


async def asked(call: Awaitable[T], problems: Problems) -> T | None:
    """The service call's answer; None with its refusal noted beside its field."""
    try:
        return await call
    except (ServiceError, ApiError) as error:
        problems.by_field[error.field or GENERAL] = error.message
        problems.next_allowed = getattr(error, "next_allowed", None)
        return None
