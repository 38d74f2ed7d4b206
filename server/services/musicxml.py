"""MusicXML (``.musicxml``, ``.xml``, compressed ``.mxl``) to MIDI, through music21.

music21 is an optional extra (``pip install 'tutti[musicxml]'``): without it
:func:`musicxml_to_midi` raises :class:`MusicXMLUnavailable`. The score is
written to MIDI with ``music21.midi.translate.streamToMidiFile`` (repeats
expanded, one track per part, see ``tests/music.py``), so a MusicXML piece is
stored and played like any MIDI upload.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from rooms.piece import PieceError

MUSICXML_SUFFIXES = (".musicxml", ".mxl", ".xml")
EXTRA_HINT = "pip install 'tutti[musicxml]'"


class MusicXMLUnavailable(PieceError):
    """music21, needed to read MusicXML, is not installed."""

    code = "musicxml_unavailable"


class InvalidMusicXML(PieceError):
    """music21 could not read the data as MusicXML, or the score has no notes."""

    code = "invalid_musicxml"


@dataclass(frozen=True, slots=True)
class Converted:
    """The score as MIDI bytes, with the title and composer of its metadata (or ``None``)."""

    midi: bytes
    title: str | None
    composer: str | None


def looks_like_musicxml(data: bytes, filename: str | None = None) -> bool:
    """True for a MusicXML file name, a zip (``.mxl``) or an XML document with a score root."""
    if filename and filename.lower().endswith(MUSICXML_SUFFIXES):
        return True
    if data.startswith(b"PK\x03\x04"):
        return True
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<") and (
        b"<score-partwise" in head or b"<score-timewise" in head or head.startswith(b"<?xml")
    )


def musicxml_to_midi(data: bytes) -> Converted:
    """Convert MusicXML bytes (plain or ``.mxl`` zip) to Standard MIDI File bytes.

    Raises :class:`MusicXMLUnavailable` without music21, :class:`InvalidMusicXML`
    when music21 cannot read it.
    """
    try:
        import music21
    except ImportError:
        raise MusicXMLUnavailable(
            f"MusicXML import needs music21, an optional extra: {EXTRA_HINT}"
        ) from None
    suffix = ".mxl" if data.startswith(b"PK\x03\x04") else ".musicxml"
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="tutti-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        try:
            score = music21.converter.parse(path, format="musicxml", forceSource=True)
        except Exception as exc:  # music21 raises many kinds (XML, zip, its own)
            raise InvalidMusicXML(f"not a readable MusicXML file: {exc}") from None
    finally:
        os.unlink(path)
    if not score.recurse().notes:
        raise InvalidMusicXML("the MusicXML score has no notes", code="no_notes")
    try:
        midi = music21.midi.translate.streamToMidiFile(score).writestr()
    except Exception as exc:
        raise InvalidMusicXML(f"music21 could not write this score as MIDI: {exc}") from None
    metadata = score.metadata
    title = metadata.title if metadata else None
    if metadata and not title and metadata.movementName != os.path.basename(path):
        title = metadata.movementName  # music21 puts the file name there when there is none
    composer = metadata.composer if metadata else None
    return Converted(midi, title or None, composer or None)
