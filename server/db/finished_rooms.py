"""Finished rooms in the database: the session row, one practice log per player, the
recording; read back as the session answer (``GET /api/sessions/{id}``)."""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import mido
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms.finished import FinishedRoom, PlayerOutcome
from server.db.models import (
    ACTIVITY_ENSEMBLE,
    ACTIVITY_REPERTOIRE,
    PracticeLog,
    PracticeSession,
    SessionRecording,
    new_id,
)
from server.db.versions import next_version

if TYPE_CHECKING:
    pass
from server.db.repository import iso_or_none

log = logging.getLogger("server.db.repository")  # the name operators filter on


def ms_to_datetime(ms: float) -> datetime:
    """Unix epoch milliseconds → aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def count_midi_events(midi_data: bytes) -> int:
    """Number of note-on/note-off messages in a Standard MIDI File.

    Returns 0 for empty bytes; raises ``ValueError`` (or ``EOFError``) from
    :mod:`mido` for a file it cannot parse.
    """
    if not midi_data:
        return 0
    midi = mido.MidiFile(file=io.BytesIO(midi_data))
    return sum(1 for track in midi.tracks for msg in track if msg.type in ("note_on", "note_off"))


def _log_row(finished: FinishedRoom, player: PlayerOutcome, activity: str) -> PracticeLog:
    result = player.result
    accuracy = result.get("accuracy")
    # Players join before the start (lobby time is not practice): clip to the start.
    start_ms = max(player.joined_at_ms, finished.start_at_ms)
    end_ms = max(player.left_at_ms, start_ms)
    return PracticeLog(
        id=new_id(),
        user_id=player.user_id,
        session_id=finished.session_id,
        piece_id=finished.piece_id,
        work_title=finished.piece_title,
        part=player.part,
        activity_type=activity,
        source=finished.extra.get("source", "room"),  # "audio": a recording scored afterwards
        instrument=player.instrument,
        start_time=ms_to_datetime(start_ms),
        end_time=ms_to_datetime(end_ms),
        duration_seconds=(end_ms - start_ms) / 1000,
        tempo_practiced=result.get("tempo_bpm_played"),
        tempo_target=float(finished.tempo_bpm),
        notes_played=result.get("notes_played"),
        notes_correct=result.get("notes_matched"),
        accuracy_percentage=accuracy * 100 if accuracy is not None else None,
        complete=bool(player.complete),
        result=result,
    )


def _session_row(finished: FinishedRoom) -> PracticeSession:
    participants: list[dict[str, Any]] = [
        {"user_id": p.user_id, "part": p.part, "role": "player", "complete": bool(p.complete)}
        for p in finished.players
    ]
    participants += [
        {"user_id": u, "part": None, "role": "spectator", "complete": None}
        for u in finished.spectators
    ]
    return PracticeSession(
        id=finished.session_id,
        room_id=finished.room_id,
        name=finished.name,
        mode=finished.mode,
        piece_id=finished.piece_id,
        piece_title=finished.piece_title,
        tempo_bpm=float(finished.tempo_bpm),
        host_user_id=finished.host_user_id,
        start_time=ms_to_datetime(finished.start_at_ms),
        end_time=ms_to_datetime(finished.ended_at_ms),
        duration_seconds=(finished.ended_at_ms - finished.start_at_ms) / 1000,
        end_reason=finished.reason,
        participants=participants,
        asynchrony_ms=finished.asynchrony_ms,
    )


async def save_finished_room(
    sessionmaker: async_sessionmaker[AsyncSession],
    finished: FinishedRoom,
    after_write: Callable[[AsyncSession, str], Awaitable[None]] | None = None,
) -> bool:
    """Persist a finished room in one transaction; ``True`` if written.

    Writes the ``practice_sessions`` row, one ``practice_logs`` row per
    player (``activity_type`` ``"ensemble_reading"`` with ≥ 2 players, else
    ``"repertoire"``) and, when ``recording_midi`` is not empty, the
    ``session_recordings`` row, then awaits ``after_write(db, user_id)`` once per
    player inside the transaction (the room service passes
    :func:`server.services.progress_refresh.refresh_after_commit`: XP, streaks,
    achievements after the commit). Either all of it is written or none.

    Idempotent: when a session with ``finished.session_id`` already exists
    (also when a concurrent save won the race) nothing is written and
    ``False`` is returned. Other database errors propagate after rollback,
    e.g. :class:`sqlalchemy.exc.IntegrityError` for a user, host or piece id
    that is not in the database.
    """
    activity = ACTIVITY_ENSEMBLE if len(finished.players) >= 2 else ACTIVITY_REPERTOIRE
    recording = None
    if finished.recording_midi:
        try:
            events = count_midi_events(finished.recording_midi)
        except Exception as exc:  # keep the bytes anyway; mido raises assorted errors
            log.warning("session %s: unreadable recording (%s)", finished.session_id, exc)
            events = 0
        recording = SessionRecording(
            session_id=finished.session_id,
            midi_data=finished.recording_midi,
            event_count=events,
        )
    try:
        async with sessionmaker.begin() as db:
            if await db.get(PracticeSession, finished.session_id) is not None:
                return False
            db.add(_session_row(finished))
            await db.flush()  # the parent row first: logs and recording refer to it
            for player in finished.players:
                row = _log_row(finished, player, activity)
                # The log joins its owner's synced logbook, in the same transaction.
                row.version = await next_version(db, player.user_id)
                db.add(row)
            if recording is not None:
                db.add(recording)
            await db.flush()
            if after_write is not None:
                for user_id in dict.fromkeys(p.user_id for p in finished.players):
                    await after_write(db, user_id)
    except IntegrityError:
        async with sessionmaker() as db:
            if await db.get(PracticeSession, finished.session_id) is not None:
                return False
        raise
    return True


def _log_to_dict(row: PracticeLog) -> dict[str, Any]:
    return {
        "id": row.id,
        "user_id": row.user_id,
        "session_id": row.session_id,
        "piece_id": row.piece_id,
        "work_title": row.work_title,
        "part": row.part,
        "activity_type": row.activity_type,
        "source": row.source,
        "instrument": row.instrument,
        "start_time": iso_or_none(row.start_time),
        "end_time": iso_or_none(row.end_time),
        "duration_seconds": row.duration_seconds,
        "tempo_practiced": row.tempo_practiced,
        "tempo_target": row.tempo_target,
        "notes_played": row.notes_played,
        "notes_correct": row.notes_correct,
        "accuracy_percentage": row.accuracy_percentage,
        "complete": row.complete,
        "result": row.result,
        "created_at": iso_or_none(row.created_at),
    }


async def get_session(db: AsyncSession, session_id: str) -> dict[str, Any] | None:
    """A saved session as a JSON-ready dict, or ``None``.

    Keys: ``session_id``, ``room_id``, ``name``, ``mode``, ``piece_id``,
    ``piece_title``, ``tempo_bpm``, ``host_user_id``, ``start_time``,
    ``end_time`` (ISO 8601), ``duration_seconds``, ``end_reason``,
    ``participants``, ``asynchrony_ms``, ``logs`` (one dict per player with
    every ``practice_logs`` column, ``result`` included, ordered by start
    time then user id) and ``results`` (``{user_id: result}``, the scorer's
    dicts as saved).
    """
    row = await db.get(PracticeSession, session_id)
    if row is None:
        return None
    logs = (
        await db.scalars(
            select(PracticeLog)
            .where(PracticeLog.session_id == session_id)
            .order_by(PracticeLog.start_time, PracticeLog.user_id)
        )
    ).all()
    return {
        "session_id": row.id,
        "room_id": row.room_id,
        "name": row.name,
        "mode": row.mode,
        "piece_id": row.piece_id,
        "piece_title": row.piece_title,
        "tempo_bpm": row.tempo_bpm,
        "host_user_id": row.host_user_id,
        "start_time": iso_or_none(row.start_time),
        "end_time": iso_or_none(row.end_time),
        "duration_seconds": row.duration_seconds,
        "end_reason": row.end_reason,
        "participants": row.participants,
        "asynchrony_ms": row.asynchrony_ms,
        "logs": [_log_to_dict(log_row) for log_row in logs],
        "results": {log_row.user_id: log_row.result for log_row in logs},
    }


async def get_recording(db: AsyncSession, session_id: str) -> bytes | None:
    """The session's MIDI recording (Standard MIDI File bytes), or ``None``."""
    return await db.scalar(
        select(SessionRecording.midi_data).where(SessionRecording.session_id == session_id)
    )
