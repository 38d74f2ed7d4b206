"""The application factory: aiohttp + python-socketio + the database, no globals."""

from __future__ import annotations

import logging
from pathlib import Path

import socketio
from aiohttp import web

from rooms.room import RoomSettings
from server import (
    analytics_api,
    auth_api,
    codec,
    events,
    logbook_api,
    progress_api,
    sync_api,
    sync_events,
)
from server.api import routes
from server.config import Settings
from server.db.engine import make_engine, make_sessionmaker, upgrade_database
from server.fanout import RoomChannelManager
from server.keys import MANAGER, PRESENCE, SECRET, SESSIONMAKER, SETTINGS, SIO, SYNC
from server.pieces import PieceLibrary
from server.presence import make_presence
from server.room_directory import RoomDirectory
from server.room_manager import RoomManager
from server.sync import SyncService

log = logging.getLogger("tutti")

# A checkout has the browser client at the top level; an installed wheel inside the package.
STATIC_DIR = next(
    (
        d
        for d in (
            Path(__file__).resolve().parent.parent / "static",
            Path(__file__).parent / "static",
        )
        if (d / "index.html").is_file()
    ),
    None,
)


def create_app(settings: Settings) -> web.Application:
    """Build the Tutti application for ``settings``.

    The database is migrated to the latest schema on startup; started rooms
    are saved as they stand on shutdown.
    """
    app = web.Application(client_max_size=settings.max_upload_bytes + 1024)
    engine = make_engine(settings.resolved_database_url())
    sessionmaker = make_sessionmaker(engine)
    secret = settings.resolved_secret_key()
    client_manager = None
    if settings.redis_url:
        if settings.fanout == "stock":
            client_manager = socketio.AsyncRedisManager(settings.redis_url)
        elif settings.fanout == "rooms":
            client_manager = RoomChannelManager(settings.redis_url)
        else:
            raise ValueError(f"fanout must be 'rooms' or 'stock', got {settings.fanout!r}")
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins="*",
        json=codec,
        client_manager=client_manager,
        max_http_buffer_size=1_000_000,
    )
    sio.attach(app, socketio_path="socket.io")
    presence = make_presence(settings, sio)
    sync = SyncService(sessionmaker, sio)
    # Several processes: rooms are shared through Redis (server/room_directory.py).
    directory = RoomDirectory(settings.redis_url) if settings.redis_url else None
    manager = RoomManager(
        sio,
        sessionmaker,
        PieceLibrary(sessionmaker),
        room_settings=RoomSettings(
            start_delay_ms=settings.start_delay_ms,
            grace_ms=settings.grace_ms,
            max_note_skew_ms=settings.max_note_skew_ms,
        ),
        score_interval_ms=settings.score_interval_ms,
        presence=presence,
        sync=sync,
        directory=directory,
    )
    events.register(sio, manager, secret)
    sync_events.register(sio, manager, sync)
    app[SETTINGS] = settings
    app[SESSIONMAKER] = sessionmaker
    app[MANAGER] = manager
    app[SECRET] = secret
    app[SIO] = sio
    app[SYNC] = sync
    app[PRESENCE] = presence
    app.add_routes(routes)
    for feature in (auth_api, sync_api, logbook_api, progress_api, analytics_api):
        app.add_routes(feature.routes)
    if STATIC_DIR is not None:
        app.router.add_get("/", _index)
        app.router.add_static("/static/", STATIC_DIR)

    async def on_startup(app: web.Application) -> None:
        await upgrade_database(engine)
        await presence.start()
        await manager.start_cluster()
        log.info("database ready at %s", _redact(settings.resolved_database_url()))

    async def on_shutdown(app: web.Application) -> None:
        await manager.finish_all()
        # Open websockets would otherwise hold the shutdown until aiohttp's timeout.
        for sid in list(manager.connections):
            await sio.disconnect(sid)
        await presence.stop()

    async def on_cleanup(app: web.Application) -> None:
        if directory is not None:
            await directory.stop()
        await engine.dispose()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


def _redact(url: str) -> str:
    # Keep passwords out of the log.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
