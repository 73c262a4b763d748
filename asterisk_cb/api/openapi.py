"""The OpenAPI 3.1 document, generated from the route table and its pydantic models (served at
``/api/v1/openapi.json``): one source for what is validated and what is documented.

Every route documents the refusals it can give with the one error shape (``ErrorReply``): the common
ones of its kind (a token route may answer 401, 403, 422, 429, 500, 503; one with a body also 400,
413, 415; one with a path value 404), plus its own (409 for a change while the contact talks).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from asterisk_cb import __version__
from asterisk_cb.api.models import IDENTIFIER, ErrorReply
from asterisk_cb.api.routing import PREFIX, Auth, Route

_REF = "#/components/schemas/{model}"
_PLACEHOLDER = re.compile(r"{(\w+)}")
_TOKEN_REFUSALS = (401, 403, 422, 429, 500, 503)
_BODY_REFUSALS = (400, 413, 415)
_DESCRIPTIONS = {
    200: "OK",
    201: "created",
    400: "the body is not JSON",
    401: "no token, or one that is unknown, expired or revoked",
    403: "the caller's role does not allow this",
    404: "no such callback (or another agent's)",
    409: "the callback cannot change now (the contact talks, or it finished)",
    413: "the body is over [api] max_body",
    415: "the body is not application/json",
    422: "a field is wrong: error.field names it",
    429: "too many failed authentications from this address",
    500: "a bug: the daemon's log has it",
    503: "Redis or the CDR database cannot be reached",
}


def document(routes: Sequence[Route]) -> dict[str, Any]:
    """The whole document for ``routes``."""
    models = _models(routes)
    schemas = _schemas(models)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "asterisk-cb",
            "version": __version__,
            "description": "Scheduled callbacks for Asterisk: callbacks, settings, roles, history, events.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _models(routes: Iterable[Route]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {ErrorReply.__name__: ErrorReply}
    for route in routes:
        for model in (route.reply, route.body, route.query):
            if model is not None:
                found[model.__name__] = model
    return list(found.values())


def _schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    """Every model and the models and enums they use, by name, referencing each other."""
    modes = [
        (model, "serialization" if model.__name__.endswith(("Reply", "Out")) else "validation")
        for model in models
    ]
    _, definitions = models_json_schema(modes, ref_template=_REF)  # type: ignore[arg-type]
    return dict(definitions.get("$defs", {}))


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": _path_parameters(route) + _query_parameters(route, schemas) + _headers(route),
        "responses": _responses(route),
    }
    if route.auth is Auth.NONE:
        operation["security"] = []
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=route.body.__name__)}}},
        }
    return operation


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": IDENTIFIER},
        }
        for name in _PLACEHOLDER.findall(route.path)
    ]


def _headers(route: Route) -> list[dict[str, Any]]:
    return [
        {
            "name": header.name,
            "in": "header",
            "required": False,
            "description": header.description,
            "schema": {"type": "string", "pattern": header.pattern},
        }
        for header in route.headers
    ]


def _query_parameters(route: Route, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    if route.query is None:
        return []
    model = schemas[route.query.__name__]
    required = set(model.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": _not_null(schema)}
        for name, schema in model["properties"].items()
    ]


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value, never JSON null: drop pydantic's ``anyOf [..., null]``."""
    choices = [choice for choice in schema.get("anyOf", ()) if choice.get("type") != "null"]
    if len(choices) == 1:
        kept = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
        return {**kept, **choices[0]}
    return {key: value for key, value in schema.items() if key != "default" or value is not None}


def _responses(route: Route) -> dict[str, Any]:
    success: dict[str, Any] = (
        {"text/event-stream": {"schema": {"type": "string"}}}
        if route.reply is None
        else {"application/json": {"schema": {"$ref": _REF.format(model=route.reply.__name__)}}}
    )
    responses: dict[str, Any] = {
        str(route.status): {"description": _DESCRIPTIONS.get(route.status, "OK"), "content": success}
    }
    for status, meaning in route.also.items():
        responses[str(status)] = {"description": meaning, "content": success}
    error = {"application/json": {"schema": {"$ref": _REF.format(model=ErrorReply.__name__)}}}
    for status in sorted(_refusals(route)):
        responses[str(status)] = {"description": _DESCRIPTIONS[status], "content": error}
    return responses


def _refusals(route: Route) -> set[int]:
    refusals = set(route.refusals)
    if route.auth is not Auth.NONE:
        refusals |= set(_TOKEN_REFUSALS)
    if route.query is not None:
        refusals.add(422)
    if route.body is not None:
        refusals |= {*_BODY_REFUSALS, 422}
    if _PLACEHOLDER.search(route.path):
        refusals.add(404)
    return refusals
