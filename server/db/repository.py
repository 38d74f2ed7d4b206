"""Small async data-access functions over :mod:`server.db.models`.

Every function takes an :class:`~sqlalchemy.ext.asyncio.AsyncSession` and
leaves the transaction to the caller (it may ``flush`` so that returned rows
are complete), except :func:`save_finished_room`, which takes the session
factory and owns its transaction.

Dicts returned for the API are JSON-ready: datetimes as ISO 8601 strings in
UTC (``"2025-01-31T18:04:05.123000+00:00"``), durations in seconds, tempi in
BPM (quarter notes per minute), asynchrony in ms.
"""

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
from sqlalchemy.orm import defer, undefer

from rooms.analysis import analyse
from rooms.catalogue import grade_of, instrument_of, style_period_of
from rooms.finished import FinishedRoom, PlayerOutcome
from server.db.models import (
    ACTIVITY_ENSEMBLE,
    ACTIVITY_REPERTOIRE,
    SOURCE_TYPES,
    PracticeLog,
    PracticeSession,
    SessionRecording,
    SheetMusic,
    User,
    new_id,
)
from server.db.versions import next_version

if TYPE_CHECKING:
    from rooms.piece import Piece

log = logging.getLogger(__name__)

DISPLAY_NAME_MAX = 100

# --------------------------------------------------------------------------- users


async def create_guest(db: AsyncSession, display_name: str) -> User:
    """Add a guest user and flush it; returns the row (``id`` is uuid4 hex).

    ``display_name`` is stripped; raises ``ValueError`` when it is empty or
    longer than 100 characters.
    """
    name = display_name.strip()
    if not name:
        raise ValueError("display_name must not be empty")
    if len(name) > DISPLAY_NAME_MAX:
        raise ValueError(f"display_name must be at most {DISPLAY_NAME_MAX} characters")
    user = User(id=new_id(), display_name=name, is_guest=True)
    db.add(user)
    await db.flush()
    return user


async def get_user(db: AsyncSession, user_id: str) -> User | None:
    """The user with ``user_id``, or ``None``."""
    return await db.get(User, user_id)


# --------------------------------------------------------------------------- pieces


def estimate_difficulty(piece: Piece) -> int:
    """The 1–10 difficulty of :func:`rooms.analysis.analyse` (see its formula)."""
    return analyse(piece, chords=False).difficulty


def library_metadata(
    piece: Piece,
    *,
    composer: str | None,
    instrument: str | None = None,
    style_period: str | None = None,
) -> dict[str, Any]:
    """The analysed columns of a piece: ``difficulty``, ``key_name``, ``analysis``,
    ``grade``, ``instrument`` (given or from the GM programs) and ``style_period``
    (given or from the composer), see :mod:`rooms.analysis` and
    :mod:`rooms.catalogue`."""
    result = analyse(piece)
    return {
        "difficulty": result.difficulty,
        "key_name": result.key.name if result.key else None,
        "analysis": result.to_json(),
        "grade": grade_of(result.difficulty),
        "instrument": instrument or instrument_of(piece.parts),
        "style_period": style_period or style_period_of(composer),
    }


def _parts_json(piece: Piece) -> list[dict[str, Any]]:
    out = []
    for part in piece.parts:
        pitches = [n.pitch for n in part.notes]
        out.append(
            {
                "name": part.name,
                "notes": len(part.notes),
                "channel": part.channel,
                "program": part.program,
                "lowest_pitch": min(pitches) if pitches else None,
                "highest_pitch": max(pitches) if pitches else None,
            }
        )
    return out


def _time_signature(piece: Piece) -> str:
    signatures = getattr(piece, "time_signatures", ()) or ()
    if not signatures:
        return "4/4"
    first = signatures[0]
    return f"{first.numerator}/{first.denominator}"


async def add_piece(
    db: AsyncSession,
    *,
    piece: Piece,
    midi_data: bytes,
    title: str | None,
    composer: str | None,
    source_type: str,
    split_pitch: int | None,
    uploaded_by: str | None,
    instrument: str | None = None,
    style_period: str | None = None,
    generator: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> SheetMusic:
    """Add a piece and flush it; returns the row.

    ``piece`` is the parsed file (:func:`rooms.piece.load_midi`), already
    split into hands by the caller when ``split_pitch`` is given (the column
    only records it). ``midi_data`` is the original file's bytes. ``title``
    defaults to ``piece.title`` (then ``"Untitled"``). Tempo (BPM), duration
    (s), ticks per beat, the first time signature (``"4/4"`` if none) and the
    parts come from the piece; difficulty, key, analysis, grade, instrument
    and style period from :func:`library_metadata` (``instrument`` and
    ``style_period`` override what it infers); ``generator`` is the request of
    a ``generated`` piece. ``metadata`` is :func:`library_metadata` computed
    beforehand (e.g. off the event loop), used as given.
    Raises ``ValueError`` for an unknown ``source_type`` (see
    :data:`server.db.models.SOURCE_TYPES`); an unknown ``uploaded_by`` fails
    at flush with :class:`sqlalchemy.exc.IntegrityError`.
    """
    if source_type not in SOURCE_TYPES:
        raise ValueError(f"source_type must be one of {SOURCE_TYPES}, got {source_type!r}")
    row = SheetMusic(
        id=new_id(),
        title=(title or piece.title or "Untitled").strip() or "Untitled",
        composer=composer,
        parts=_parts_json(piece),
        tempo_bpm=float(piece.bpm),
        duration_seconds=float(piece.duration_s),
        source_type=source_type,
        split_pitch=split_pitch,
        ticks_per_beat=int(piece.ticks_per_beat),
        time_signature=_time_signature(piece),
        midi_data=bytes(midi_data),
        uploaded_by=uploaded_by,
        generator=generator,
        **(
            metadata
            or library_metadata(
                piece, composer=composer, instrument=instrument, style_period=style_period
            )
        ),
    )
    db.add(row)
    await db.flush()
    return row


async def list_pieces(db: AsyncSession) -> list[SheetMusic]:
    """All pieces, oldest first, without their MIDI bytes.

    ``midi_data`` is not loaded (touching it raises); use :func:`get_piece`.
    """
    stmt = (
        select(SheetMusic)
        .options(defer(SheetMusic.midi_data, raiseload=True))
        .order_by(SheetMusic.created_at, SheetMusic.id)
    )
    return list((await db.scalars(stmt)).all())


async def get_piece(db: AsyncSession, piece_id: str) -> SheetMusic | None:
    """The piece with ``piece_id`` including ``midi_data``, or ``None``."""
    stmt = (
        select(SheetMusic)
        .where(SheetMusic.id == piece_id)
        .options(undefer(SheetMusic.midi_data))
        .execution_options(populate_existing=True)
    )
    return (await db.scalars(stmt)).one_or_none()


def piece_to_dict(row: SheetMusic) -> dict[str, Any]:
    """A piece as a JSON-ready dict (no MIDI bytes).

    Keys: ``id``, ``title``, ``composer``, ``parts`` (see
    :class:`~server.db.models.SheetMusic`), ``tempo_bpm``,
    ``duration_seconds``, ``difficulty``, ``source_type``, ``split_pitch``,
    ``ticks_per_beat``, ``time_signature``, ``created_at`` (ISO 8601),
    ``key`` (``"F# minor"`` or ``None``), ``instrument``, ``style_period``,
    ``grade`` (1–8), ``generator`` (``None`` unless generated). The full
    analysis is at ``GET /api/pieces/{id}/analysis``.
    """
    return {
        "id": row.id,
        "title": row.title,
        "composer": row.composer,
        "parts": row.parts,
        "tempo_bpm": row.tempo_bpm,
        "duration_seconds": row.duration_seconds,
        "difficulty": row.difficulty,
        "source_type": row.source_type,
        "split_pitch": row.split_pitch,
        "ticks_per_beat": row.ticks_per_beat,
        "time_signature": row.time_signature,
        "created_at": _iso(row.created_at),
        "key": row.key_name,
        "instrument": row.instrument,
        "style_period": row.style_period,
        "grade": row.grade,
        "generator": row.generator,
    }


# --------------------------------------------------------------------------- sessions


def ms_to_datetime(ms: float) -> datetime:
    """Unix epoch milliseconds → aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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
        "instrument": row.instrument,
        "start_time": _iso(row.start_time),
        "end_time": _iso(row.end_time),
        "duration_seconds": row.duration_seconds,
        "tempo_practiced": row.tempo_practiced,
        "tempo_target": row.tempo_target,
        "notes_played": row.notes_played,
        "notes_correct": row.notes_correct,
        "accuracy_percentage": row.accuracy_percentage,
        "complete": row.complete,
        "result": row.result,
        "created_at": _iso(row.created_at),
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
        "start_time": _iso(row.start_time),
        "end_time": _iso(row.end_time),
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
