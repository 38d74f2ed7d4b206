"""A recorded performance scored afterwards, exactly as a live player in a room is.

:func:`score_recording` takes notes transcribed from a recording (onset and
offset in seconds from the start of the audio, MIDI pitch, velocity) and plays
them, in time order, into a one-player :class:`rooms.room.Room` as note-on/off
events: the same :class:`rooms.scoring.Scorer` with its tempo tracker, the same
result fields, the same :class:`rooms.finished.FinishedRoom` (its recording is
the transcribed notes), saved the same way.

Where the piece starts in the recording (a recording has no count-in) is found
by :func:`align`: of the first transcribed onsets, the one that, taken as the
first expected note, lets the most of the following notes land on an expected
note of their pitch (within 100 ms at the room tempo). Without a part, the
recording is scored against every note of the piece merged into one part,
:data:`WHOLE_PIECE` (a solo piano piece played in full).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import replace

from rooms.finished import FinishedRoom
from rooms.notes import NoteEvent
from rooms.piece import Part, Piece
from rooms.room import Room, RoomSettings

WHOLE_PIECE = "All parts"
"""The part name a whole-piece recording is scored (and saved) under."""
ALIGN_CANDIDATES = 12  # first transcribed onsets tried as the piece's first note
ALIGN_NOTES = 24  # expected notes an alignment is judged on
ALIGN_WINDOW_MS = 100.0

TranscribedNote = tuple[float, float, int, int]
"""``(onset_s, offset_s, pitch, velocity)``: seconds from the start of the audio,
MIDI note number, MIDI velocity 1–127."""


def whole_piece(piece: Piece) -> Piece:
    """``piece`` with every part's notes merged into one part, :data:`WHOLE_PIECE`."""
    notes = sorted((n for p in piece.parts for n in p.notes), key=lambda n: (n.onset_tick, n.pitch))
    return replace(piece, parts=(Part(WHOLE_PIECE, tuple(notes)),))


def align(expected: Sequence[tuple[float, int]], played: Sequence[tuple[float, int]]) -> float:
    """Offset (ms) to add to expected times so that they line up with the played ones.

    ``expected`` and ``played`` are ``(ms, pitch)`` sorted by time. Each of the
    first :data:`ALIGN_CANDIDATES` played onsets is tried as the first expected
    note; the one under which most of the first :data:`ALIGN_NOTES` expected
    notes have a played note of their pitch within :data:`ALIGN_WINDOW_MS` wins
    (the earliest on a tie). 0.0 when either is empty.
    """
    if not expected or not played:
        return 0.0
    by_pitch: dict[int, list[float]] = {}
    for t, p in played:
        by_pitch.setdefault(p, []).append(t)
    first = expected[0][0]
    best, best_hits = played[0][0] - first, -1
    for t0, _ in played[:ALIGN_CANDIDATES]:
        offset = t0 - first
        hits = 0
        for t, p in expected[:ALIGN_NOTES]:
            times = by_pitch.get(p, [])
            i = bisect.bisect_left(times, t + offset - ALIGN_WINDOW_MS)
            if i < len(times) and times[i] <= t + offset + ALIGN_WINDOW_MS:
                hits += 1
        if hits > best_hits:
            best, best_hits = offset, hits
    return best


def score_recording(
    piece: Piece,
    part: str | None,
    notes: Sequence[TranscribedNote],
    *,
    session_id: str,
    room_id: str,
    user_id: str,
    display_name: str,
    recorded_at_ms: int,
    piece_id: str | None = None,
    tempo_bpm: float | None = None,
    instrument: str | None = None,
    settings: RoomSettings | None = None,
) -> FinishedRoom:
    """Score ``notes`` against ``part`` of ``piece`` (``None``: the whole piece).

    ``recorded_at_ms``: Unix epoch ms of the start of the audio (the session's
    times are laid from there). ``tempo_bpm``: the tempo the recording is
    judged at (default: the file's). Returns the finished room (``reason``
    ``"piece_ended"``, ``extra`` ``{"source": "audio"}``). Raises
    :class:`rooms.errors.RoomError` ``unknown_part`` or ``invalid_tempo``.
    """
    if part is None:
        piece, part = whole_piece(piece), WHOLE_PIECE
    room = Room(
        room_id,
        name=f"Recording: {piece.title}",
        mode="ensemble",
        host_user_id=user_id,
        piece=piece,
        piece_id=piece_id,
        tempo_bpm=tempo_bpm,
        count_in_beats=0,
        settings=settings,
        created_at_ms=recorded_at_ms,
    )
    room.join(
        user_id,
        display_name,
        role="player",
        part=part,
        instrument=instrument,
        now_ms=recorded_at_ms,
    )
    reference = sorted(
        (n.onset_s * room.time_scale * 1000.0, n.pitch) for n in piece.part(part).notes
    )
    ordered = sorted(notes, key=lambda n: (n[0], n[2]))
    offset_ms = align(reference, [(n[0] * 1000.0, n[2]) for n in ordered])
    start_at = recorded_at_ms + round(offset_ms)
    room.start(user_id, now_ms=start_at - round(room.settings.start_delay_ms))
    events: list[NoteEvent] = []
    for onset_s, offset_s, pitch, velocity in ordered:
        events.append(NoteEvent("on", pitch, velocity, recorded_at_ms + onset_s * 1000.0))
        events.append(NoteEvent("off", pitch, 0, recorded_at_ms + offset_s * 1000.0))
    events.sort(key=lambda e: (e.t_ms, e.type == "on"))  # a note-off before a note-on at a tie
    for event in events:
        room.accept(user_id, [event], now_ms=event.t_ms)
    last = max((e.t_ms for e in events), default=float(start_at))
    due = room.finish_due_ms() or float(start_at)  # the piece's end, as a room's timer
    ended = int(max(last, due)) + 1
    finished = room.finish("piece_ended", ended, session_id)
    return replace(finished, extra={"source": "audio"})
