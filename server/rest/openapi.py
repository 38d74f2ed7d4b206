"""The OpenAPI 3.1 document of the REST API, served at ``GET /api/openapi.json``.

:data:`OPERATIONS` gathers the ``OPERATIONS`` table at the end of each route
module (the vocabulary and the builder are :mod:`server.rest.apidoc`, whose
docstring says how to document a route). ``tests/e2e/test_openapi.py`` fails
for a route under ``/api`` that no table documents, and for a documented
operation that is not routed.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from aiohttp import web
from pydantic import Field

from server.rest import (
    analytics,
    auth,
    health,
    lobby,
    logbook,
    practice_timers,
    privacy,
    progress,
    sessions,
    sync,
    users,
)
from server.rest import library as library_api
from server.rest.apidoc import MIDI, Op, Out, Query, build, model_query
from server.services import library

# --------------------------------------------------------------------------- the piece routes
# TEMPORARY: the piece routes (/api/pieces…, in server/rest/api.py and server/rest/library.py)
# are being moved into server/rest/pieces.py; their table moves there with them, like every
# other route module's. Until then it is kept here.


class PieceOut(Out):
    id: str
    title: str
    composer: str | None
    parts: list[Any]
    tempo_bpm: float | None
    duration_seconds: float | None
    difficulty: int | float | None
    source_type: str | None
    split_pitch: int | None
    ticks_per_beat: int | None
    time_signature: Any
    created_at: str | None


class PieceListOut(Out):
    pieces: list[PieceOut]
    total: int = Field(ge=0)
    limit: int | None
    offset: int = Field(ge=0)


class RecommendedOut(Out):
    level: int | float | None
    pieces: list[PieceOut]


class AnalysisOut(Out):
    id: str


PIECE_OPERATIONS = [
    Op("GET", "/api/pieces", "The piece library, filtered and paged", "pieces", PieceListOut,
       auth=False, query=model_query(library.ListQuery)),
    Op("GET", "/api/pieces/random", "A random piece matching the filters", "pieces", PieceOut,
       auth=False, query=model_query(library.RandomQuery), errors=(404,)),
    Op("GET", "/api/pieces/recommended", "What the caller should practise next", "pieces",
       RecommendedOut, query=model_query(library.RecommendQuery)),
    Op("POST", "/api/pieces/generate", "Generate sight-reading material", "pieces", PieceOut,
       201, library_api.GenerateIn),
    Op("GET", "/api/pieces/{piece_id}/analysis", "A piece's analysis (difficulty, key, chords)",
       "pieces", AnalysisOut, auth=False),
    Op("POST", "/api/pieces", "Import a Standard MIDI File", "pieces", PieceOut, 201, MIDI,
       body_type="audio/midi", errors=(413,), query=(
           Query("title", schema={"type": "string", "maxLength": 200}),
           Query("composer"),
           Query("split_hands", schema={"type": "string", "enum": ["true", "false", "1", "0"]}),
           Query("split_pitch", schema={"type": "integer", "minimum": 0, "maximum": 127}),
       )),
    Op("GET", "/api/pieces/{piece_id}", "One piece", "pieces", PieceOut, auth=False),
    Op("GET", "/api/pieces/{piece_id}/midi", "A piece's MIDI file", "pieces", MIDI,
       auth=False, response_type="audio/midi"),
]  # fmt: skip
"""The piece routes' operations (temporary home, see above)."""

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
    *PIECE_OPERATIONS,
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
