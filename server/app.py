"""The application factory: aiohttp + python-socketio + the database, no globals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from pathlib import Path

import socketio
from aiohttp import web

from rooms.room import RoomSettings
from server.appkeys import (
    INVITES,
    MANAGER,
    PRESENCE,
    PRIVACY_BUS,
    PROGRESS_REFRESHER,
    PURGE_TASK,
    SECRET,
    SESSIONMAKER,
    SETTINGS,
    SIO,
    SYNC,
)
from server.config import Settings
from server.db.engine import make_engine, make_sessionmaker, upgrade_database
from server.observability import logs, metrics
from server.realtime import codec
from server.realtime.clustered import ClusteredRoomService
from server.realtime.fanout import RoomChannelManager
from server.realtime.guard import Guard
from server.realtime.namespace import TuttiNamespace
from server.realtime.presence import make_presence
from server.realtime.room_directory import RoomDirectory
from server.realtime.room_service import RoomService
from server.realtime.saving import SessionSaver
from server.realtime.sio_manager import LocalManager
from server.realtime.transport import TuttiServer, transport_middleware
from server.rest import analytics as analytics_api
from server.rest import audio as audio_api
from server.rest import auth as auth_api
from server.rest import health, openapi
from server.rest import lobby as lobby_api
from server.rest import logbook as logbook_api
from server.rest import pieces as pieces_api
from server.rest import practice_timers as practice_timers_api
from server.rest import privacy as privacy_api
from server.rest import progress as progress_api
from server.rest import sessions as sessions_api
from server.rest import sync as sync_api
from server.rest import users as users_api
from server.rest.common import errors_middleware
from server.rest.ratelimit import RateLimiter, rest_middleware
from server.rest.security import (
    headers_middleware,
    json_too_large,
    server_header,
    socketio_cors,
)
from server.services import progress_refresh
from server.services.heap import freeze_startup_heap
from server.services.pieces import PieceLibrary
from server.services.privacy import PrivacyBus
from server.services.purge import purge_loop
from server.services.spool import FinishedRoomSpool
from server.services.sync import SyncService

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


def _exit_after(seconds: float) -> None:
    """Exit the process (status 3) if it is still shutting down ``seconds`` from now."""

    def stuck() -> None:
        log.error("shutdown still running after %.0f s: exiting", seconds)
        logging.shutdown()
        os._exit(3)

    timer = threading.Timer(seconds, stuck)
    timer.daemon = True  # a shutdown that finishes in time exits without waiting for it
    timer.start()


async def _freeze_heap(app: web.Application) -> None:
    # The collector stops walking the startup heap (server/services/heap.py).
    log.debug("froze %d startup objects for the garbage collector", freeze_startup_heap())


def create_app(settings: Settings) -> web.Application:
    """Build the Tutti application for ``settings``.

    The database is migrated to the latest schema on startup; started rooms
    are saved as they stand on shutdown. Raises
    :class:`server.config.ConfigError` without a secret key outside dev mode.
    """
    secret = settings.resolved_secret_key()
    if not settings.secret_key:
        log.warning("dev mode: an ephemeral secret key; tokens end with this process")
    elif len(settings.secret_key) < 32:
        log.warning("the secret key is shorter than 32 characters (RFC 7518 §3.2 wants 256 bits)")
    limiter = RateLimiter(settings)
    app = web.Application(
        client_max_size=settings.max_upload_bytes + 1024,
        middlewares=[
            headers_middleware(settings),
            json_too_large,
            rest_middleware(limiter, settings, secret),
            privacy_api.deactivated_middleware,
            errors_middleware,  # innermost: a TuttiError a handler raised → its JSON answer
        ],
    )
    engine = make_engine(settings.resolved_database_url())
    sessionmaker = make_sessionmaker(engine)
    # Progress is recomputed after each log write commits (server/services/progress_refresh.py).
    progress_refresher = progress_refresh.install(sessionmaker)
    client_manager: socketio.AsyncManager = LocalManager()
    if settings.redis_url:
        if settings.fanout == "stock":
            client_manager = socketio.AsyncRedisManager(settings.redis_url)
        elif settings.fanout == "rooms":
            client_manager = RoomChannelManager(settings.redis_url)
        else:
            raise ValueError(f"fanout must be 'rooms' or 'stock', got {settings.fanout!r}")
    sio = TuttiServer(  # python-socketio with the transport checks (realtime/transport.py)
        async_mode="aiohttp",
        cors_allowed_origins=socketio_cors(settings),
        json=codec,
        serializer=codec.Packet,  # a cheaper binary check (server/realtime/codec.py)
        client_manager=client_manager,
        max_http_buffer_size=settings.max_socket_payload_bytes,
        # Several workers share the port (SO_REUSEPORT): a polling session's requests could
        # reach different processes, a websocket stays on the one that accepted it.
        transports=["websocket"] if settings.websocket_only else ["polling", "websocket"],
        limiter=limiter,  # counts refusals: past max_refusals a connection is closed
        handshake_timeout_s=settings.handshake_timeout_s,
        max_connections_per_ip=settings.max_connections_per_ip,
        trust_forwarded_for=settings.trust_forwarded_for,
    )
    sio.attach(app, socketio_path="socket.io")
    app.middlewares.append(transport_middleware(sio))  # before engine.io sees a request
    presence = make_presence(settings, sio)
    sync = SyncService(sessionmaker, sio)
    room_settings = RoomSettings(
        start_delay_ms=settings.start_delay_ms,
        grace_ms=settings.grace_ms,
        max_note_skew_ms=settings.max_note_skew_ms,
        max_spectators=settings.max_spectators,
    )
    service_args = (sio, sessionmaker, PieceLibrary(sessionmaker))
    # Finished rooms go to DATA_DIR/spool before the database (server/services/spool.py).
    saver = SessionSaver(sessionmaker, FinishedRoomSpool(Path(settings.data_dir) / "spool"))
    service_kwargs = dict(
        room_settings=room_settings,
        score_interval_ms=settings.score_interval_ms,
        reconnect_grace_s=settings.reconnect_grace_s,
        presence=presence,
        sync=sync,
        saver=saver,
    )
    directory: RoomDirectory | None = None
    manager: RoomService
    if settings.redis_url:
        # Several processes: rooms are shared through Redis (server/realtime/clustered.py).
        directory = RoomDirectory(settings.redis_url)
        manager = ClusteredRoomService(*service_args, directory=directory, **service_kwargs)
    else:
        manager = RoomService(*service_args, **service_kwargs)
    sio.register_namespace(
        TuttiNamespace(manager, sync, Guard(limiter, settings, sessionmaker), secret)
    )
    app[INVITES] = manager  # the lobby hides the private rooms
    app[SETTINGS] = settings
    app[SESSIONMAKER] = sessionmaker
    app[MANAGER] = manager
    app[SECRET] = secret
    app[SIO] = sio
    app[PROGRESS_REFRESHER] = progress_refresher
    app[SYNC] = sync
    app[PRESENCE] = presence
    app.add_routes(pieces_api.routes)  # every /api/pieces… route
    for feature in (
        auth_api,
        sessions_api,
        sync_api,
        users_api,
        practice_timers_api,
        logbook_api,
        lobby_api,
        privacy_api,
        progress_api,
        analytics_api,
    ):
        app.add_routes(feature.routes)
    audio_api.install(app, saver)  # /api/performances, /api/jobs: jobs saved like rooms
    # Observability and the API description: correlation ids, /metrics, /livez, /readyz,
    # /api/openapi.json (server/observability/logs.py, metrics.py, health.py, openapi.py).
    logs.install(app, sio)
    metrics.install(app, manager=manager, engine=engine)
    health.install(app)
    openapi.install(app)
    if STATIC_DIR is not None:
        app.router.add_get("/", _index)
        app.router.add_get("/sw.js", _service_worker)
        app.router.add_static("/static/", STATIC_DIR)

    async def on_startup(app: web.Application) -> None:
        await upgrade_database(engine)
        # A process killed between a log's commit and its progress refresh left it stale.
        await progress_refresh.refresh_stale(sessionmaker, progress_refresher)
        await presence.start()
        await manager.start_cluster()
        await saver.replay()  # finished rooms an earlier process could not save
        log.info("database ready at %s", _redact(settings.resolved_database_url()))
        app[PURGE_TASK] = asyncio.create_task(purge_loop(settings, sessionmaker))
        if settings.redis_url:
            app[PRIVACY_BUS] = PrivacyBus(settings.redis_url, manager)
            app[PRIVACY_BUS].start()

    async def on_shutdown(app: web.Application) -> None:
        # A bound on the whole shutdown: once an aiohttp shutdown waited forever on
        # engine.io's service task. Past the bound the process exits (status 3), logged.
        _exit_after(settings.shutdown_timeout_s)
        await manager.finish_all()
        # Open websockets would otherwise hold the shutdown until aiohttp's timeout.
        for sid in list(manager.connections):
            await sio.disconnect(sid)
        await sio.shutdown()  # engine.io's service task ends (it does not on cancellation alone)
        await presence.stop()

    async def on_cleanup(app: web.Application) -> None:
        task = app.get(PURGE_TASK)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if PRIVACY_BUS in app:
            await app[PRIVACY_BUS].stop()
        if directory is not None:
            await directory.stop()
        await saver.close()  # what is still unsaved stays spooled for the next start
        await progress_refresher.close()  # the last saves' progress
        await engine.dispose()

    app.on_response_prepare.append(server_header)  # no library version in Server
    app.on_startup.append(on_startup)
    app.on_startup.append(pieces_api.backfill_on_startup)  # after the migrations
    app.on_startup.append(_freeze_heap)  # last: the startup heap is built
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(pieces_api.stop_backfill)  # before on_cleanup disposes the engine
    app.on_cleanup.append(on_cleanup)
    return app


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


async def _service_worker(request: web.Request) -> web.FileResponse:
    # Served from the root so its scope is the whole page (a worker under /static/ could only
    # control /static/); never cached by HTTP, so a new version is picked up on the next visit.
    return web.FileResponse(
        STATIC_DIR / "sw.js",
        headers={"Content-Type": "text/javascript", "Cache-Control": "no-cache"},
    )


def _redact(url: str) -> str:
    # Keep passwords out of the log.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
