"""A user's data: export it, deactivate the account, purge it for good.

* :func:`export_user` — everything stored about a user as one JSON-ready
  dict plus the MIDI files that go with it (recordings of their sessions,
  pieces they uploaded). Secrets are left out: refresh tokens and login
  links appear as metadata only (no hashes).
* :func:`deactivate` — ``DELETE /api/users/me``: ``users.deactivated_at`` is
  set, refresh tokens are revoked and the user's sockets are disconnected
  (leaving their rooms; on other processes through :class:`PrivacyBus`);
  from then on every access token of the user is refused (``401
  account_deleted``, REST and Socket.IO), as are login links and refreshes
  (``403 account_deleted``).
* :func:`purge_due` — deletes the users deactivated ``purge_after_days`` ago
  or more (run every ``purge_interval_s`` by ``tutti serve``, and by
  ``tutti users purge``): every row of theirs in every table, their track in
  shared recordings, and every Redis key, hash field, set member or stream
  entry naming them (:func:`scrub_redis`).

Shared sessions: the partners keep their own logs and results. The deleted
user's part is anonymised: their ``participants`` entry keeps part and role
but ``user_id`` becomes ``null`` (``"deleted": true``), ``host_user_id``
becomes ``null`` if they hosted (and the room's name, which the host typed,
becomes ``"Shared session"``), their log is deleted and their track (named
``"<display name> (<part>)"``) is dropped from the recording. A session with
no one else left is deleted with its recording. Pieces they uploaded stay in
the library without an uploader (``uploaded_by`` null).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import zipfile
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import undefer

from server.db.models import (
    ClientMutation,
    Goal,
    LoginLink,
    PracticeLog,
    PracticeSession,
    PracticeTemplate,
    RefreshToken,
    RepertoireItem,
    SessionRecording,
    SheetMusic,
    StarredPiece,
    User,
    UserAchievement,
    UserPreferences,
    UserProgress,
    UserSync,
    utcnow,
)

log = logging.getLogger("tutti.privacy")

SECRET_COLUMNS = frozenset({"token_hash"})
ANONYMOUS_SESSION_NAME = "Shared session"
EXPORT_FORMAT_VERSION = 1


# --------------------------------------------------------------------------- export


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def row_dict(row: Any, *, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Every column of an ORM row but secrets, binaries and ``skip``, JSON-ready."""
    out = {}
    for column in row.__table__.columns:
        if column.name in SECRET_COLUMNS or column.name in skip:
            continue
        if column.name in ("midi_data", "musicxml_data"):  # files, not metadata
            continue
        out[column.name] = _jsonable(getattr(row, column.key))
    return out


def _participates(user_id: str):
    # participants is JSON: compare its text form (SQLite TEXT, PostgreSQL json::text).
    return or_(
        PracticeSession.host_user_id == user_id,
        cast(PracticeSession.participants, Text).like(f'%"{user_id}"%'),
    )


async def user_sessions(db: AsyncSession, user_id: str) -> list[PracticeSession]:
    """Sessions the user hosted, played or listened in (from their participants)."""
    rows = (await db.scalars(select(PracticeSession).where(_participates(user_id)))).all()
    return [
        r
        for r in rows
        if r.host_user_id == user_id or any(p.get("user_id") == user_id for p in r.participants)
    ]


async def export_user(db: AsyncSession, user_id: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The user's data: ``(data, files)``.

    ``data`` keys: ``format`` (1), ``exported_at``, ``account`` (the users
    row), ``preferences``, ``sync`` (version, clients' last mutation ids),
    ``practice_logs``, ``goals``, ``repertoire``, ``templates`` (every row,
    tombstones included with ``deleted_at``), ``progress`` (XP, level,
    streaks), ``achievements``, ``starred_pieces``, ``sessions`` (each session
    taken part in: its columns, ``participants`` with other people's ids
    left out (``"you": true`` marks the user's entry), ``your_result`` and
    ``recording`` — the file name in ``files``, or null), ``uploaded_pieces``
    (metadata and ``file``), ``devices`` (refresh tokens: device id, created,
    expires, used, revoked — no token), ``login_links`` (address, created,
    expires, used). ``files`` maps ``recordings/<session id>.mid`` and
    ``pieces/<piece id>.mid`` to Standard MIDI File bytes.

    Raises ``LookupError`` for an unknown user.
    """
    user = await db.get(User, user_id)
    if user is None:
        raise LookupError(user_id)
    files: dict[str, bytes] = {}

    async def owned(model) -> list[dict[str, Any]]:
        rows = (await db.scalars(select(model).where(model.user_id == user_id))).all()
        return [row_dict(r, skip=frozenset({"user_id"})) for r in rows]

    prefs = await db.get(UserPreferences, user_id)
    sync = await db.get(UserSync, user_id)
    logs = (await db.scalars(select(PracticeLog).where(PracticeLog.user_id == user_id))).all()
    log_by_session = {r.session_id: r for r in logs if r.session_id is not None}
    sessions = []
    for session in await user_sessions(db, user_id):
        entry = row_dict(session, skip=frozenset({"host_user_id"}))
        entry["you_hosted"] = session.host_user_id == user_id
        entry["participants"] = [
            {
                "part": p.get("part"),
                "role": p.get("role"),
                "complete": p.get("complete"),
                "you": p.get("user_id") == user_id,
            }
            for p in session.participants
        ]
        own = log_by_session.get(session.id)
        entry["your_result"] = own.result if own is not None else None
        midi = await db.scalar(
            select(SessionRecording.midi_data).where(SessionRecording.session_id == session.id)
        )
        entry["recording"] = None
        if midi:
            name = f"recordings/{session.id}.mid"
            files[name] = midi
            entry["recording"] = name
        sessions.append(entry)
    pieces = []
    for piece in (
        await db.scalars(
            # Every column at once: a lazy load of a deferred one cannot run here (async).
            select(SheetMusic).where(SheetMusic.uploaded_by == user_id).options(undefer("*"))
        )
    ).all():
        entry = row_dict(piece, skip=frozenset({"uploaded_by"}))
        name = f"pieces/{piece.id}.mid"
        files[name] = piece.midi_data
        entry["file"] = name
        pieces.append(entry)
    links = (
        await db.scalars(
            select(LoginLink).where(
                or_(LoginLink.guest_user_id == user_id, LoginLink.email == user.email)
                if user.email
                else LoginLink.guest_user_id == user_id
            )
        )
    ).all()
    data = {
        "format": EXPORT_FORMAT_VERSION,
        "exported_at": utcnow().isoformat(),
        "account": row_dict(user),
        "preferences": row_dict(prefs, skip=frozenset({"user_id"})) if prefs else None,
        "sync": {
            "version": sync.version if sync else 0,
            "clients": await owned(ClientMutation),
        },
        "practice_logs": [row_dict(r, skip=frozenset({"user_id"})) for r in logs],
        "goals": await owned(Goal),
        "repertoire": await owned(RepertoireItem),
        "templates": await owned(PracticeTemplate),
        "progress": await owned(UserProgress),
        "achievements": await owned(UserAchievement),
        "starred_pieces": await owned(StarredPiece),
        "sessions": sessions,
        "uploaded_pieces": pieces,
        "devices": await owned(RefreshToken),
        "login_links": [row_dict(r, skip=frozenset({"guest_user_id"})) for r in links],
    }
    return data, files


def export_zip(data: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """``data.json`` (UTF-8, indented) and ``files`` in one ZIP archive."""
    import orjson

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", orjson.dumps(data, option=orjson.OPT_INDENT_2))
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


# --------------------------------------------------------------------------- deactivate


async def is_deactivated(sessionmaker: async_sessionmaker[AsyncSession], user_id: str) -> bool:
    """True when the user asked for deletion (and is not purged yet)."""
    async with sessionmaker() as db:
        when = await db.scalar(select(User.deactivated_at).where(User.id == user_id))
    return when is not None


async def mark_deactivated(
    sessionmaker: async_sessionmaker[AsyncSession], user_id: str, now: datetime | None = None
) -> bool:
    """Set ``deactivated_at`` and revoke refresh tokens; False if unknown or already done."""
    now = now or utcnow()
    async with sessionmaker.begin() as db:
        done = await db.execute(
            update(User)
            .where(User.id == user_id, User.deactivated_at.is_(None))
            .values(deactivated_at=now)
        )
        if done.rowcount != 1:
            return False
        await db.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    return True


async def deactivate(sessionmaker, manager, user_id: str, bus: PrivacyBus | None = None) -> bool:
    """Deactivate ``user_id`` and disconnect their sockets here and, through ``bus``
    (Redis), on every other process (see module doc)."""
    if not await mark_deactivated(sessionmaker, user_id):
        return False
    await disconnect_user(manager, user_id)
    if bus is not None:
        await bus.announce(user_id)
    log.info("user %s deactivated; purge scheduled", user_id)
    return True


class PrivacyBus:
    """Tells the other processes (Redis pub/sub ``tutti:privacy``) to let a deactivated
    user's sockets go. A process that misses the message (Redis away) still refuses
    the user's next connection and REST request; only an open socket lingers."""

    CHANNEL = "tutti:privacy"

    def __init__(self, redis_url: str, manager) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(redis_url)
        self.manager = manager
        self._task: asyncio.Task | None = None

    async def announce(self, user_id: str) -> None:
        try:
            await self.redis.publish(self.CHANNEL, user_id)
        except Exception as exc:  # noqa: BLE001 - logged; the refusals above still hold
            log.warning("could not announce the deactivation of %s (%s)", user_id, exc)

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await disconnect_user(self.manager, message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: subscribe again
                log.warning("privacy channel lost (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.redis.aclose()


async def disconnect_user(manager, user_id: str) -> int:
    """Disconnect every socket of ``user_id`` on this process (they leave their rooms)."""
    sids = [sid for sid, c in manager.connections.items() if c.user_id == user_id]
    for sid in sids:
        with contextlib.suppress(Exception):
            await manager.sio.emit(
                "account:deleted",
                {"code": "account_deleted", "message": "this account was deleted"},
                to=sid,
            )
        await manager.sio.disconnect(sid)
    return len(sids)


# --------------------------------------------------------------------------- purge
