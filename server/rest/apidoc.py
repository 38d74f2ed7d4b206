"""The vocabulary of the OpenAPI document: :class:`Op` and :class:`Query`, and its builder.

Every route module ends with ``OPERATIONS``, a list of :class:`Op` describing
its routes with the pydantic models they validate with (request bodies,
query models) and answer with (the ``…Out`` models, :class:`Out`).
:mod:`server.rest.openapi` gathers the lists and serves :func:`build` of
them at ``GET /api/openapi.json``. JSON Schema 2020-12 (what pydantic emits)
is OpenAPI 3.1's schema dialect, so the models go in as they are, under
``components/schemas``.

**Adding a route.** ``tests/e2e/test_openapi.py`` fails for any route under
``/api`` of the application that no ``OPERATIONS`` list documents. Add::

    Op("GET", "/api/progress/streaks", "The caller's practice streaks", "progress",
       response=StreaksOut, query=model_query(ZoneQuery)),

``body``/``response`` take a pydantic model (its schema is generated), a
JSON Schema ``dict``, a function of the :class:`Components` answering a
schema (for a schema made of several models), or ``None`` (no body).
``auth=True`` (the default) adds the bearer scheme and a ``401``; a
``{param}`` in the path adds a ``404`` and a path parameter (a string unless
``path_params`` names a schema for it); a body or query adds ``400``; ``errors``
adds more statuses (each answers :class:`ErrorOut`). Logbook rows have
:class:`RowOut`, :func:`fields_body` and :func:`listing`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from server.services.logbook import Entity
from server.services.schemas import INT64_MAX, INT64_MIN


class Components:
    """``components/schemas``: pydantic models by name, their ``$defs`` hoisted."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def model(self, model: type[BaseModel]) -> dict[str, Any]:
        """The model's schema, inlined (its nested models go to the components)."""
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            self.schemas.setdefault(name, sub)
        return schema

    def ref(self, model: type[BaseModel]) -> dict[str, Any]:
        """``{"$ref": …}`` to the model, added to the components once."""
        if model.__name__ not in self.schemas:
            self.schemas[model.__name__] = self.model(model)
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def schema(self, spec: Schema) -> dict[str, Any]:
        """The JSON Schema of a ``body``/``response`` spec (see the module docstring)."""
        if isinstance(spec, type) and issubclass(spec, BaseModel):
            return self.ref(spec)
        if callable(spec):
            return spec(self)
        return copy.deepcopy(spec)


Schema = type[BaseModel] | dict[str, Any] | Callable[[Components], dict[str, Any]] | None


class Out(BaseModel):
    """An answer: the keys listed are always there; more may be added later."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(Out):
    code: str
    message: str


class ErrorOut(Out):
    """Every error: ``{"error": {"code", "message"}}`` (see the README's error codes)."""

    error: ErrorDetail


@dataclass(frozen=True)
class Query:
    """A query parameter: JSON Schema ``type`` (or a full ``schema``), description."""

    name: str
    type: str = "string"
    description: str = ""
    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Op:
    """One operation; see the module docstring."""

    method: str
    path: str
    summary: str
    tag: str
    response: Schema = None
    status: int = 200
    body: Schema = None
    auth: bool = True
    query: tuple[Query, ...] = ()
    errors: tuple[int, ...] = ()
    response_type: str = "application/json"
    body_type: str = "application/json"
    optional_auth: bool = False
    description: str = ""
    body_required: bool = True
    extra_responses: dict[int, Schema] = field(default_factory=dict)
    # More media types of the success answer (e.g. a query parameter picks JSON over a ZIP).
    alternatives: dict[str, Schema] = field(default_factory=dict)
    # Schemas of path parameters by name (default: a string).
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)


MIDI = {"type": "string", "format": "binary"}
OBJECT = {"type": "object"}


# --------------------------------------------------------------------------- logbook rows


class RowOut(Out):
    """A logbook row: ``{"id", "version", **fields}`` (fields of :mod:`server.services.logbook`)."""

    id: str
    version: int


def fields_body(
    entity: Entity, *, include=None, exclude=frozenset(), required=(), with_id: bool = False
):
    """The schema of a body of ``entity``'s fields (a subset: ``include``, ``exclude``),
    optionally with a client-made ``id``; for an :class:`~server.rest.apidoc.Op`."""

    def schema(components: Components) -> dict[str, Any]:
        assert entity.fields is not None
        fields = components.model(entity.fields)
        props = {
            k: {n: x for n, x in v.items() if not (n == "default" and x is None)}
            for k, v in fields["properties"].items()
            if (include is None or k in include) and k not in exclude
        }  # "default: null" on a field that may not be null would contradict itself
        if with_id:
            props = {"id": {"type": "string", "minLength": 1, "maxLength": 64}, **props}
        out = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            out["required"] = list(required)
        return out

    return schema


def listing(key: str):
    """The schema of a list answer ``{key: [row], "total", "limit", "offset"}``."""

    def schema(components: Components) -> dict[str, Any]:
        return {
            "type": "object",
            "required": [key, "total", "limit", "offset"],
            "properties": {
                key: {"type": "array", "items": components.ref(RowOut)},
                "total": {"type": "integer", "minimum": 0},
                "limit": {"type": "integer", "minimum": 1},
                "offset": {"type": "integer", "minimum": 0},
            },
        }

    return schema


def model_query(model: type[BaseModel]) -> tuple[Query, ...]:
    """The query parameters a pydantic query model takes, one :class:`Query` per field.

    A query string has no null: ``anyOf [X, null]`` becomes ``X``. A field's
    alias (``from``) is its parameter's name. An integer without a bound gets
    the 64-bit ones that :func:`server.services.schemas.parse` holds every
    model's integers to.
    """
    out = []
    for name, prop in model.model_json_schema()["properties"].items():
        branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
        if len(branches) == 1:
            schema = {k: v for k, v in branches[0].items() if k != "title"}
        else:
            schema = {"anyOf": [{k: v for k, v in b.items() if k != "title"} for b in branches]}
        if schema.get("type") == "integer":
            schema.setdefault("minimum", INT64_MIN)
            schema.setdefault("maximum", INT64_MAX)
        if prop.get("default") is not None:
            schema["default"] = prop["default"]
        out.append(Query(name, description=prop.get("description", ""), schema=schema))
    return tuple(out)


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad request: a validation error code",
    401: "Missing, invalid or expired token, or an unknown user",
    404: "Not found (or not the caller's)",
    409: "Conflict",
    413: "Payload too large",
    429: "Too many requests",
    503: "Unavailable",
}

INFO = {
    "title": "Tutti REST API",
    "version": "0.1.0",
    "description": (
        "Real-time collaborative practice server: accounts, the piece library, saved "
        "sessions, the synced practice logbook. Times are ISO 8601; errors are "
        '`{"error": {"code", "message"}}`. The Socket.IO protocol is in the README.'
    ),
}


def build(operations: list[Op]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``."""
    components = Components()
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, components)
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _operation(op: Op, components: Components) -> dict[str, Any]:
    item: dict[str, Any] = {
        "summary": op.summary,
        "tags": [op.tag],
        "operationId": _operation_id(op),
    }
    if op.description:
        item["description"] = op.description
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": copy.deepcopy(op.path_params.get(name, {"type": "string"})),
        }
        for name in _path_params(op.path)
    ]
    for q in op.query:
        schema = q.schema or {"type": q.type}
        param = {"name": q.name, "in": "query", "required": False, "schema": schema}
        if q.description:
            param["description"] = q.description
        params.append(param)
    if params:
        item["parameters"] = params
    if op.body is not None:
        item["requestBody"] = {
            "required": op.body_required,
            "content": {op.body_type: {"schema": components.schema(op.body)}},
        }
    item["responses"] = _responses(op, components)
    if op.auth:
        item["security"] = [{"bearerAuth": []}]
    elif op.optional_auth:
        item["security"] = [{}, {"bearerAuth": []}]
    else:
        item["security"] = []
    return item


def _responses(op: Op, components: Components) -> dict[str, Any]:
    error_ref = components.ref(ErrorOut)
    responses: dict[str, Any] = {}
    ok: dict[str, Any] = {"description": _REASONS.get(op.status, "OK")}
    if op.response is not None:
        ok["content"] = {op.response_type: {"schema": components.schema(op.response)}}
        for media_type, schema in op.alternatives.items():
            ok["content"][media_type] = {"schema": components.schema(schema)}
    responses[str(op.status)] = ok
    errors = set(op.errors)
    if op.body is not None or op.query or op.path_params:
        errors.add(400)
    if op.auth:
        errors.add(401)
    if _path_params(op.path):
        errors.add(404)
    for status in sorted(errors):
        responses[str(status)] = {
            "description": _REASONS.get(status, "Error"),
            "content": {"application/json": {"schema": error_ref}},
        }
    for status, schema in op.extra_responses.items():
        responses[str(status)] = {
            "description": _REASONS.get(status, "Error"),
            "content": {"application/json": {"schema": components.schema(schema)}},
        }
    return responses


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _operation_id(op: Op) -> str:
    words = [p.strip("{}").replace(".", "_").replace("-", "_") for p in op.path.split("/") if p]
    if words[:1] == ["api"]:
        words = words[1:]
    return "_".join([op.method.lower(), *words])
