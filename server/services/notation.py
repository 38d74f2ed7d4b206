"""Every piece's score as MusicXML: kept from a MusicXML import, converted from MIDI.

A MusicXML import keeps its original (a ``.mxl`` zip is unpacked to its
score document, see :func:`score_document`). A MIDI file is converted once,
at import, by :func:`midi_to_musicxml` (music21: ``converter.parse`` of the
MIDI file with its quantisation, then its MusicXML writer, which spells the
notes and makes measures, beams and ties), in the ``"notation"`` lane of
:mod:`server.services.process_pool` (a worker of its own: conversions take
seconds and must not hold up piece loads). Generated material is stored
without a score and converted by :func:`backfill` right after. music21 is the optional
``musicxml`` extra: without it the piece is stored with notation NULL (to
convert later); a conversion that fails is stored as ``{"error"}`` and the
piece still plays. Either way ``GET /api/pieces/{id}/musicxml`` answers
``404 notation_unavailable``. :func:`backfill` converts, at start-up and in
the background, the pieces stored without notation.

The score is MusicXML 4.0 (W3C Music Notation Community Group), served as
``application/vnd.recordare.musicxml+xml`` (:data:`MEDIA_TYPE`, the type the
standard registers for uncompressed files).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import tempfile
import threading
import warnings
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms.errors import TuttiError
from server.db.models import SheetMusic
from server.services import process_pool

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/vnd.recordare.musicxml+xml"
MAX_NOTES = 5000
"""Largest piece converted (notes): music21 takes about 2.5 ms a note (the 2,308 notes of
the Maple Leaf Rag: 6 s of a worker), and a hostile upload must not hold a worker for minutes."""
MAX_BEATS = 2000.0
"""Longest piece converted (quarter-note beats, about 17 minutes at 120 BPM): music21's time
grows with the measures too (one note 100,000 beats long took over five minutes)."""
MAX_PARTS = 64
"""Most parts converted (a MIDI file of 5,000 one-note tracks kept music21 busy for minutes)."""
TIME_LIMIT_S = 20.0
"""The backstop for what the caps miss: a conversion still running then is stopped (SIGALRM in
the worker; the Maple Leaf Rag takes 4 s)."""


class _Expired(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float):
    # Signals reach only a process's main thread, where a pool worker runs its tasks.
    in_main = threading.current_thread() is threading.main_thread()
    if not hasattr(signal, "setitimer") or not in_main:
        yield
        return

    def expire(signum, frame):
        raise _Expired(f"the conversion took more than {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class NotationUnavailable(TuttiError):
    """The piece has no score: its conversion failed, or music21 is not installed
    (``notation_unavailable``, HTTP 404)."""

    def __init__(self, message: str) -> None:
        super().__init__("notation_unavailable", message)


@dataclass(frozen=True, slots=True)
class Notation:
    """A score: ``musicxml`` (uncompressed MusicXML bytes, or ``None`` when there is
    none) and ``state``, the ``notation`` column (``None``: not tried, e.g. no music21)."""

    musicxml: bytes | None
    state: dict[str, Any] | None


def score_document(data: bytes) -> bytes:
    """The score document of MusicXML bytes: the bytes themselves, or for a
    compressed ``.mxl`` zip its root file (named by ``META-INF/container.xml``,
    else the first ``.musicxml``/``.xml`` entry). Call it after
    :func:`server.services.musicxml.check_size`. Raises ``ValueError`` when
    the zip holds no score."""
    if not data.startswith(b"PK\x03\x04"):
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        root = None
        if "META-INF/container.xml" in names:
            container = ET.fromstring(archive.read("META-INF/container.xml"))
            found = container.find(".//rootfile")
            root = found.get("full-path") if found is not None else None
        if root not in names:
            candidates = [
                n
                for n in names
                if n.lower().endswith((".musicxml", ".xml")) and not n.startswith("META-INF/")
            ]
            if not candidates:
                raise ValueError("the MusicXML archive holds no score")
            root = candidates[0]
        return archive.read(root)


def original(data: bytes) -> Notation:
    """The notation of a MusicXML file: its own score document."""
    try:
        return Notation(score_document(data), {"source": "original", "warnings": []})
    except (ValueError, zipfile.BadZipFile, ET.ParseError, KeyError) as exc:
        return Notation(None, {"error": f"the MusicXML archive cannot be read: {exc}"})


def midi_to_musicxml(
    midi: bytes, *, notes: int = 0, beats: float = 0.0, parts: int = 0
) -> Notation:
    """Convert a Standard MIDI File to MusicXML with music21, once, at import.

    Returns ``Notation(xml, {"source": "converted", "warnings": [...]})`` with
    what music21 warned about (``warnings`` and its own messages on stderr),
    ``Notation(None, {"error": message})`` when music21 fails, and
    ``Notation(None, None)`` without music21 (not tried: a later start with
    the extra installed converts it). A piece of more than :data:`MAX_NOTES`
    ``notes``, :data:`MAX_BEATS` ``beats`` (to the last note's end) or
    :data:`MAX_PARTS` ``parts`` is not tried, and one that takes longer than
    :data:`TIME_LIMIT_S` is stopped: ``{"error"}``. CPU-heavy (half a second
    for a chorale): call it in a worker.
    """
    for count, cap, what in ((notes, MAX_NOTES, "notes"), (parts, MAX_PARTS, "parts")):
        if count > cap:
            error = f"{count} {what} are too many to convert (at most {cap})"
            return Notation(None, {"error": error})
    if beats > MAX_BEATS:
        return Notation(
            None, {"error": f"{beats:.0f} beats are too long to convert (at most {MAX_BEATS:.0f})"}
        )
    try:
        import music21
    except ImportError:
        return Notation(None, None)
    fd, path = tempfile.mkstemp(suffix=".mid", prefix="tutti-")
    caught: list[str] = []
    stderr = io.StringIO()
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(midi)
        with (
            _time_limit(TIME_LIMIT_S),
            warnings.catch_warnings(record=True) as recorded,
            contextlib.redirect_stderr(stderr),
        ):
            warnings.simplefilter("always")
            score = music21.converter.parse(path, format="midi", forceSource=True)
            xml = music21.musicxml.m21ToXml.GeneralObjectExporter(score).parse()
        caught = [str(w.message) for w in recorded]
    except Exception as exc:  # music21 raises many kinds (its own, ValueError, ZeroDivision…)
        return Notation(None, {"error": f"music21 could not convert the MIDI file: {exc}"})
    finally:
        os.unlink(path)
    caught += [line for line in stderr.getvalue().splitlines() if line.strip()]
    return Notation(xml, {"source": "converted", "warnings": caught[:20]})


async def backfill(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Convert every piece stored without notation (``notation`` NULL), one at a
    time in a worker; return how many got a score or an error.

    Stops at the first piece when music21 is not installed (the rest stay NULL,
    for a start with the extra). A piece another process converted meanwhile is
    left as it is (the update only touches NULL rows).
    """
    async with sessionmaker() as db:
        rows = (
            await db.execute(
                select(
                    SheetMusic.id,
                    SheetMusic.parts,
                    SheetMusic.duration_seconds,
                    SheetMusic.tempo_bpm,
                )
                .where(SheetMusic.notation.is_(None))
                .order_by(SheetMusic.id)
            )
        ).all()
    done = 0
    for piece_id, parts, duration_s, bpm in rows:
        async with sessionmaker() as db:
            midi = await db.scalar(select(SheetMusic.midi_data).where(SheetMusic.id == piece_id))
        if midi is None:
            continue
        notes = sum(int(part.get("notes") or 0) for part in parts or [])
        beats = (duration_s or 0.0) * (bpm or 120.0) / 60.0  # the first tempo's: close enough
        notation = await process_pool.run_in(
            "notation", midi_to_musicxml, midi, notes=notes, beats=beats, parts=len(parts or [])
        )
        if notation.state is None:
            log.info("music21 is not installed: %d piece(s) stay without notation", len(rows))
            break
        async with sessionmaker.begin() as db:
            await db.execute(
                update(SheetMusic)
                .where(SheetMusic.id == piece_id, SheetMusic.notation.is_(None))
                .values(musicxml_data=notation.musicxml, notation=notation.state)
            )
        done += 1
    if done:
        log.info("converted %d piece(s) stored without notation", done)
    return done


async def musicxml(db: AsyncSession, piece_id: str) -> bytes | None:
    """The piece's score (MusicXML bytes); ``None`` for an unknown id.

    Raises :class:`NotationUnavailable` for a piece without a score.
    """
    found = (
        await db.execute(
            select(SheetMusic.musicxml_data, SheetMusic.notation).where(SheetMusic.id == piece_id)
        )
    ).one_or_none()
    if found is None:
        return None
    data, state = found
    if data is None:
        if state is None:
            reason = "this piece has not been converted to notation (yet, or music21 is missing)"
        else:
            reason = state.get("error", "this piece has no notation")
        raise NotationUnavailable(reason)
    return data
