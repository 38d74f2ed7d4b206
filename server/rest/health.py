"""Health: liveness and readiness probes (Kubernetes' ``/livez`` and ``/readyz``
conventions) and ``/api/health``.

* ``GET /livez`` → ``200 {"status": "ok"}`` while the process serves HTTP
  at all (nothing else is checked: a failing dependency must not get the
  process restarted).
* ``GET /readyz`` → ``200 {"status": "ok", "checks": {"database": "ok",
  "redis": "ok"}}`` when every dependency answers within
  :data:`CHECK_TIMEOUT_S`; otherwise ``503 {"status": "unavailable",
  "checks": {...}, "failed": [names]}`` where a failed check reads
  ``"timeout"`` or ``"error: <exception type>: <message>"``. ``database``:
  a committed no-op write (``UPDATE alembic_version``) through the app's
  session factory (a read-only or full disk still reads); ``redis`` (only
  with ``--redis-url``): ``PING`` on the room directory's client. The checks run concurrently, so
  the answer takes at most about :data:`CHECK_TIMEOUT_S`.
* ``GET /api/health`` → ``200 {"status": "ok", "database": "ok", "rooms",
  "connections", "rejections": {limit: count}, "fanout"?}``: counts of this
  process (rooms held, Socket.IO connections, refusals by limit since start;
  ``fanout`` the per-room Redis fan-out's counters when it is in use).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import Field
from sqlalchemy import text

from server.appkeys import MANAGER, SESSIONMAKER
from server.rest.apidoc import Op, Out
from server.rest.common import json_response
from server.services import limits_counter

CHECK_TIMEOUT_S = 1.0


async def livez(request: web.Request) -> web.Response:
    return _json({"status": "ok"}, 200)


async def readyz(request: web.Request) -> web.Response:
    checks = {"database": _database(request.app)}
    directory = request.app[MANAGER].directory
    if directory is not None:
        checks["redis"] = directory.redis.ping()
    names = list(checks)
    outcomes = await asyncio.gather(*(_check(c) for c in checks.values()))
    results = dict(zip(names, outcomes, strict=True))
    failed = [name for name, outcome in results.items() if outcome != "ok"]
    # Finished rooms spooled, not yet in the database (saved as soon as it takes them).
    backlog = {"finished_rooms": request.app[MANAGER].saver.backlog}
    if failed:
        body = {"status": "unavailable", "checks": results, "failed": failed, "backlog": backlog}
        return _json(body, 503)
    return _json({"status": "ok", "checks": results, "backlog": backlog}, 200)


async def _database(app: web.Application) -> None:
    # A committed write, not a read: a read-only or full disk still answers SELECT 1.
    async with app[SESSIONMAKER].begin() as db:
        await db.execute(text("UPDATE alembic_version SET version_num = version_num"))


async def _check(awaitable) -> str:
    try:
        await asyncio.wait_for(awaitable, CHECK_TIMEOUT_S)
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # any failure means "not ready", named for the operator
        return f"error: {type(exc).__name__}: {exc}"[:300]
    return "ok"


def _json(data: dict, status: int) -> web.Response:
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def api_health(request: web.Request) -> web.Response:
    """``GET /api/health``: see the module docstring."""
    async with request.app[SESSIONMAKER]() as db:
        await db.execute(text("SELECT 1"))
    manager = request.app[MANAGER]
    body = {
        "status": "ok",
        "database": "ok",
        "rooms": len(manager.rooms),
        "connections": len(manager.connections),
    }
    body["rejections"] = limits_counter.snapshot()  # refusals by limit, this process
    client_manager = manager.sio.manager
    if hasattr(client_manager, "stats"):  # the per-room Redis fan-out's counters
        body["fanout"] = client_manager.stats()
    return json_response(body)


def install(app: web.Application) -> None:
    """Add ``/livez``, ``/readyz`` and ``/api/health`` to ``app``."""
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/health", api_health)


# --------------------------------------------------------------------------- the document


class HealthOut(Out):
    status: Literal["ok"]
    database: Literal["ok"]
    rooms: int = Field(ge=0)
    connections: int = Field(ge=0)
    fanout: dict[str, Any] | None = None


class LiveOut(Out):
    status: Literal["ok"]


class ReadyOut(Out):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]
    failed: list[str] | None = None
    backlog: dict[str, int]  # {"finished_rooms": spooled rooms not yet in the database}


OPERATIONS = [
    Op("GET", "/livez", "Liveness: the process serves HTTP", "operations", LiveOut, auth=False),
    Op("GET", "/readyz", "Readiness: database and Redis reachable", "operations", ReadyOut,
       auth=False, extra_responses={503: ReadyOut}),
    Op("GET", "/api/health", "Health and counts of this process", "operations", HealthOut,
       auth=False),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
