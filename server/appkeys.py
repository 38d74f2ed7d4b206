"""Typed keys of what the application factory puts on the aiohttp app."""

from __future__ import annotations

from typing import TYPE_CHECKING

import socketio
from aiohttp import web

if TYPE_CHECKING:
    import asyncio

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from server.config import Settings
    from server.observability.metrics import Metrics
    from server.realtime.presence import PresenceService
    from server.realtime.room_service import RoomService
    from server.services.audio_jobs import AudioJobs
    from server.services.privacy import PrivacyBus
    from server.services.progress_refresh import ProgressRefresher
    from server.services.sync import SyncService

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SESSIONMAKER: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("sessionmaker")
MANAGER: web.AppKey[RoomService] = web.AppKey("manager")
SECRET: web.AppKey[str] = web.AppKey("secret")
SYNC: web.AppKey[SyncService] = web.AppKey("sync")
PRESENCE: web.AppKey[PresenceService] = web.AppKey("presence")
SIO: web.AppKey[socketio.AsyncServer] = web.AppKey("sio")
PRIVACY_BUS: web.AppKey[PrivacyBus] = web.AppKey("privacy_bus")
# What the lobby asks ``is_private(room_id)`` (private rooms are not listed).
INVITES: web.AppKey[RoomService] = web.AppKey("invites")
PROGRESS_REFRESHER: web.AppKey[ProgressRefresher] = web.AppKey("progress_refresher")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
PURGE_TASK: web.AppKey[asyncio.Task] = web.AppKey("purge_task")
NOTATION_TASK: web.AppKey[dict[str, asyncio.Task]] = web.AppKey("notation_task")
"""``{"task": the running notation backfill}`` (a holder: requests start new ones)."""
AUDIO_JOBS: web.AppKey[AudioJobs] = web.AppKey("audio_jobs")
"""The audio jobs of this process (:mod:`server.rest.audio`)."""
