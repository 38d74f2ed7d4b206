"""The OpenAPI 3.1 document of the REST API, served at ``GET /api/openapi.json``.

:data:`OPERATIONS` gathers the ``OPERATIONS`` table at the end of each route
module (the vocabulary and the builder are :mod:`server.rest.apidoc`, whose
docstring says how to document a route). ``tests/e2e/test_openapi.py`` fails
for a route under ``/api`` that no table documents, and for a documented
operation that is not routed.
"""

from __future__ import annotations

import functools

import orjson
from aiohttp import web

from server.rest import (
    analytics,
    audio,
    auth,
    health,
    lobby,
    logbook,
    pieces,
    practice_timers,
    privacy,
    progress,
    sessions,
    sync,
    users,
)
from server.rest.apidoc import Op, build

# --------------------------------------------------------------------------- the document

OWN_OPERATIONS = [
    Op("GET", "/metrics", "Prometheus metrics (text exposition 0.0.4)", "operations",
       {"type": "string"}, auth=False, response_type="text/plain"),
    Op("GET", "/api/openapi.json", "This document", "operations", {"type": "object"},
       auth=False),
]  # fmt: skip
"""``/metrics`` (:mod:`server.observability.metrics`, outside the REST layer) and this route."""

OPERATIONS: list[Op] = [
    *health.OPERATIONS,
    *OWN_OPERATIONS,
    *auth.OPERATIONS,
    *pieces.OPERATIONS,
    *audio.OPERATIONS,
    *lobby.OPERATIONS,
    *sessions.OPERATIONS,
    *progress.OPERATIONS,
    *analytics.OPERATIONS,
    *sync.OPERATIONS,
    *users.OPERATIONS,
    *privacy.OPERATIONS,
    *practice_timers.OPERATIONS,
    *logbook.OPERATIONS,
]
"""Every documented operation. A route under ``/api`` missing here fails the tests."""


@functools.cache
def document() -> bytes:
    """The document as JSON bytes, built once per process (it does not change)."""
    return orjson.dumps(build(OPERATIONS))


async def openapi_handler(request: web.Request) -> web.Response:
    """``GET /api/openapi.json``: the document."""
    return web.Response(body=document(), content_type="application/json")


def install(app: web.Application) -> None:
    """Add ``GET /api/openapi.json`` to ``app``."""
    app.router.add_get("/api/openapi.json", openapi_handler)
