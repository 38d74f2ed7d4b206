"""The purge: a deactivated user's data erased after the grace period (rows, their tracks of
shared recordings, Redis keys)."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import datetime, timedelta

import mido
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import (
    Base,
    LoginLink,
    PracticeLog,
    SessionRecording,
    SheetMusic,
    User,
    utcnow,
)
from server.services.privacy import ANONYMOUS_SESSION_NAME, user_sessions

log = logging.getLogger("tutti.privacy")


def drop_track(midi: bytes, match) -> tuple[bytes, int] | None:
    """The recording without the first track whose name satisfies ``match``.

    Returns the new bytes and note event count, or ``None`` when no track matched.
    """
    song = mido.MidiFile(file=io.BytesIO(midi))
    for index, track in enumerate(song.tracks[1:], start=1):
        if match(track.name):
            del song.tracks[index]
            buffer = io.BytesIO()
            song.save(file=buffer)
            events = sum(1 for t in song.tracks for m in t if m.type in ("note_on", "note_off"))
            return buffer.getvalue(), events
    return None


def _track_matcher(display_name: str, part: str | None):
    # rooms/room_finish.py names a player's track "<display name> (<part>)"; parts are unique
    # in a room, so the part identifies the track even after a rename.
    if part:
        return lambda name: name.endswith(f" ({part})")
    return lambda name: name == display_name


async def purge_user(db: AsyncSession, user_id: str) -> None:
    """Delete everything of ``user_id`` in ``db`` (one transaction; see the module doc)."""
    user = await db.get(User, user_id)
    if user is None:
        return
    for session in await user_sessions(db, user_id):
        mine = [p for p in session.participants if p.get("user_id") == user_id]
        others = [p for p in session.participants if p.get("user_id") not in (user_id, None)]
        if not others:
            await db.execute(delete(PracticeLog).where(PracticeLog.session_id == session.id))
            await db.execute(
                delete(SessionRecording).where(SessionRecording.session_id == session.id)
            )
            await db.delete(session)
            continue
        session.participants = [
            {**p, "user_id": None, "deleted": True} if p.get("user_id") == user_id else p
            for p in session.participants
        ]
        if session.host_user_id == user_id:
            session.host_user_id = None
            session.name = ANONYMOUS_SESSION_NAME
        recording = await db.get(SessionRecording, session.id)
        for entry in mine:
            if recording is None or entry.get("role") != "player":
                continue
            dropped = drop_track(
                recording.midi_data, _track_matcher(user.display_name, entry.get("part"))
            )
            if dropped is not None:
                recording.midi_data, recording.event_count = dropped
    await db.flush()
    await db.execute(
        update(SheetMusic).where(SheetMusic.uploaded_by == user_id).values(uploaded_by=None)
    )
    conditions = [LoginLink.guest_user_id == user_id]
    if user.email:
        conditions.append(LoginLink.email == user.email)
    await db.execute(delete(LoginLink).where(or_(*conditions)))
    # Every other table with a column pointing at users.id: its rows go (dependents first).
    for table in reversed(Base.metadata.sorted_tables):
        if table.name == "users":
            continue
        for column in table.columns:
            if any(fk.column.table.name == "users" for fk in column.foreign_keys):
                await db.execute(table.delete().where(column == user_id))
    await db.execute(delete(User).where(User.id == user_id))


async def due_users(db: AsyncSession, *, now: datetime, purge_after: timedelta) -> list[str]:
    """Ids of users deactivated at ``now - purge_after`` or earlier."""
    return list(
        (
            await db.scalars(
                select(User.id).where(
                    User.deactivated_at.is_not(None), User.deactivated_at <= now - purge_after
                )
            )
        ).all()
    )


async def purge_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    purge_after: timedelta,
    redis_url: str = "",
    now: datetime | None = None,
) -> list[str]:
    """Purge every user due (each in its own transaction), then scrub Redis; their ids."""
    now = now or utcnow()
    async with sessionmaker() as db:
        ids = await due_users(db, now=now, purge_after=purge_after)
    for user_id in ids:
        async with sessionmaker.begin() as db:
            await purge_user(db, user_id)
        log.info("user %s purged", user_id)
    if ids and redis_url:
        await scrub_redis(redis_url, ids)
    return ids


async def scrub_redis(redis_url: str, user_ids: list[str], prefix: str = "tutti:") -> int:
    """Remove every trace of ``user_ids`` from Redis keys under ``prefix``; changes made.

    A key whose name holds an id is deleted; otherwise by type: a string
    holding one is deleted, hash fields / set and sorted-set members / list
    items / stream entries holding one are removed. Run after the user left
    every room, so only finished state (recovery streams, finished payloads,
    rate-limit windows) remains.
    """
    import redis.asyncio as aioredis

    ids = [i.encode() for i in user_ids]

    def named(blob: bytes | None) -> bool:
        return blob is not None and any(i in blob for i in ids)

    changes = 0
    client = aioredis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=prefix.encode() + b"*", count=500):
            if named(key):
                changes += await client.delete(key)
                continue
            kind = (await client.type(key)).decode()
            if kind == "string":
                if named(await client.get(key)):
                    changes += await client.delete(key)
            elif kind == "hash":
                fields = [f for f, v in (await client.hgetall(key)).items() if named(f) or named(v)]
                if fields:
                    changes += await client.hdel(key, *fields)
            elif kind == "set":
                members = [m for m in await client.smembers(key) if named(m)]
                if members:
                    changes += await client.srem(key, *members)
            elif kind == "zset":
                members = [m for m in await client.zrange(key, 0, -1) if named(m)]
                if members:
                    changes += await client.zrem(key, *members)
            elif kind == "list":
                for item in {i for i in await client.lrange(key, 0, -1) if named(i)}:
                    changes += await client.lrem(key, 0, item)
            elif kind == "stream":
                entries = [
                    entry_id
                    for entry_id, fields in await client.xrange(key)
                    if any(named(k) or named(v) for k, v in fields.items())
                ]
                if entries:
                    changes += await client.xdel(key, *entries)
    finally:
        await client.aclose()
    return changes


async def purge_loop(settings, sessionmaker) -> None:
    """``tutti serve``'s purge job: :func:`purge_due` now and every ``purge_interval_s``."""
    purge_after = timedelta(days=settings.purge_after_days)
    while True:
        try:
            await purge_due(sessionmaker, purge_after=purge_after, redis_url=settings.redis_url)
        except asyncio.CancelledError:
            raise
        except Exception:  # the next round tries again
            log.exception("purge job failed")
        await asyncio.sleep(settings.purge_interval_s)
