"""The piece library's REST routes: filtered lists, random picks, recommendations,
generated sight-reading material, analyses.

==================================  ====================================================
route                               does
==================================  ====================================================
``GET /api/pieces``                 the library, filtered (see :mod:`server.services.library`):
                                    ``{"pieces", "total", "limit", "offset"}``
``GET /api/pieces/random``          one matching piece (``seed`` makes the draw
                                    repeatable); ``404 no_match`` when none matches
``GET /api/pieces/recommended``     pieces for the caller (Bearer token), by the rule
                                    of :mod:`rooms.recommend`: ``{"level",
                                    "pieces": [{**piece, "reason"}]}``
``POST /api/pieces/generate``       sight-reading material (:mod:`rooms.generate`),
                                    stored as source ``generated`` → 201, the piece
``GET /api/pieces/{id}/analysis``   difficulty features, key and chords per beat
==================================  ====================================================

Query parameters and bodies are validated with pydantic; bad input answers
``400`` with the codes of :mod:`server.services.schemas` (``unknown_field``,
``out_of_range``, ``invalid_value``, ``wrong_type``…) plus
``duplicate_parameter`` for a query parameter given twice, and changes nothing.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import defer

from rooms.errors import RoomError
from rooms.generate import KEY_PATTERN, GenerateError, Request, generate
from rooms.recommend import recommend, user_level
from server.appkeys import SESSIONMAKER
from server.db import repository
from server.db.models import SheetMusic
from server.rest.common import caller as _caller
from server.rest.common import error, json_response
from server.rest.common import json_body as _json_body
from server.services import library
from server.services.schemas import _Strict, parse

routes = web.RouteTableDef()
M = TypeVar("M", bound=BaseModel)


def _query(request: web.Request, model: type[M]) -> M:
    query = request.rel_url.query
    for name in query:
        if len(query.getall(name)) > 1:
            raise error(400, "duplicate_parameter", f"query parameter {name!r} is given twice")
    try:
        return parse(model, dict(query))
    except RoomError as exc:
        raise error(400, exc.code, exc.message) from None


@routes.get("/api/pieces")
async def list_pieces(request: web.Request) -> web.Response:
    """The library, oldest first, filtered; ``limit``/``offset`` page through it."""
    query = _query(request, library.ListQuery)
    async with request.app[SESSIONMAKER]() as db:
        rows, total = await library.list_pieces(db, query)
        return json_response(
            {
                "pieces": [repository.piece_to_dict(r) for r in rows],
                "total": total,
                "limit": query.limit,
                "offset": query.offset,
            }
        )


@routes.get("/api/pieces/random")
async def random_piece(request: web.Request) -> web.Response:
    query = _query(request, library.RandomQuery)
    async with request.app[SESSIONMAKER]() as db:
        row = await library.random_piece(db, query)
        if row is None:
            raise error(404, "no_match", "no piece in the library matches these criteria")
        return json_response(repository.piece_to_dict(row))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


@routes.get("/api/pieces/recommended")
async def recommended(request: web.Request) -> web.Response:
    """What the caller should practise next (rule in :mod:`rooms.recommend`)."""
    user_id = _caller(request)["sub"]
    query = _query(request, library.RecommendQuery)
    async with request.app[SESSIONMAKER]() as db:
        played = await library.history(db, user_id)
        pool = await library.candidates(db, query.instrument)
        chosen = recommend(pool, played, now=datetime.now(UTC), limit=query.limit)
        level = user_level(played)
        rows = {r.id: r for r in await _rows(db, [c.piece_id for c in chosen])}
        pieces = []
        for choice in chosen:
            body = repository.piece_to_dict(rows[choice.piece_id])
            body["reason"] = {
                "level": choice.level,
                "difficulty": choice.difficulty,
                "best_accuracy": choice.best_accuracy,
                "last_practised": _iso(choice.last_practised),
            }
            pieces.append(body)
    return json_response({"level": level, "pieces": pieces})


async def _rows(db, ids: list[str]):
    if not ids:
        return []
    stmt = (
        select(SheetMusic)
        .where(SheetMusic.id.in_(ids))
        .options(defer(SheetMusic.midi_data, raiseload=True))
    )
    return (await db.scalars(stmt)).all()


class GenerateIn(_Strict):
    """``POST /api/pieces/generate`` body; ``seed`` defaults to a fresh random one
    (returned in the piece's ``generator``, so the piece can be made again)."""

    kind: Literal["scale", "arpeggio", "phrase"] = "phrase"
    difficulty: int = Field(default=3, ge=1, le=10)
    key: Annotated[str, Field(max_length=16, pattern=KEY_PATTERN)] = "C major"
    parts: int = Field(default=1, ge=1, le=2)
    measures: int = Field(default=8, ge=1, le=64)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)


@routes.post("/api/pieces/generate")
async def generate_piece(request: web.Request) -> web.Response:
    caller = _caller(request)
    try:
        body = parse(GenerateIn, await _json_body(request))
        req = Request(
            kind=body.kind,
            difficulty=body.difficulty,
            key=body.key,
            parts=body.parts,
            measures=body.measures,
            seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
        )
    except (RoomError, GenerateError) as exc:
        raise error(400, exc.code, getattr(exc, "message", str(exc))) from None
    generated = await asyncio.to_thread(generate, req)
    metadata = await asyncio.to_thread(repository.library_metadata, generated.piece, composer=None)
    async with request.app[SESSIONMAKER].begin() as db:
        if await repository.get_user(db, caller["sub"]) is None:
            raise error(401, "unknown_user", "this token's user no longer exists")
        row = await repository.add_piece(
            db,
            piece=generated.piece,
            midi_data=generated.midi,
            title=req.title,
            composer=None,
            source_type="generated",
            split_pitch=None,
            uploaded_by=caller["sub"],
            generator=asdict(req),
            metadata=metadata,
        )
        return json_response(repository.piece_to_dict(row), status=201)


@routes.get("/api/pieces/{piece_id}/analysis")
async def piece_analysis(request: web.Request) -> web.Response:
    """:meth:`rooms.analysis.Analysis.to_json` of the piece, plus its ``id``."""
    piece_id = request.match_info["piece_id"]
    async with request.app[SESSIONMAKER]() as db:
        found = (
            await db.execute(select(SheetMusic.analysis).where(SheetMusic.id == piece_id))
        ).one_or_none()
    if found is None:
        raise error(404, "unknown_piece", f"no piece with id {piece_id!r}")
    return json_response({"id": piece_id, **(found[0] or {})})


async def backfill_on_startup(app: web.Application) -> None:
    """Analyse pieces stored before the analysis existed.

    See :func:`server.services.library.backfill`.
    """
    await library.backfill(app[SESSIONMAKER])
