"""MusicXML (``.musicxml``, ``.xml``, compressed ``.mxl``) to MIDI, through music21.

music21 is an optional extra (``pip install 'tutti[musicxml]'``): without it
:func:`musicxml_to_midi` raises :class:`MusicXMLUnavailable`. The score is
written to MIDI with ``music21.midi.translate.streamToMidiFile`` (repeats
expanded, one track per part, see ``tests/music.py``), so a MusicXML piece is
stored and played like any MIDI upload.

Before music21 sees it, a document is held to :class:`XmlLimits`: at most
``max_bytes`` of XML (a plain file's size; a ``.mxl`` zip's entries
unpacked, by the sizes its directory declares — :mod:`zipfile` stops every
entry there, failing its CRC check past that, so a zip bomb cannot inflate
further) and at most ``max_entries`` entries in a zip; over a limit is
:class:`rooms.piece.PieceTooLargeError` (``piece_too_large``), checked without
inflating anything.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from dataclasses import dataclass

from rooms.piece import PieceError, PieceTooLargeError

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


@dataclass(frozen=True, slots=True)
class XmlLimits:
    """Caps on a MusicXML document: ``max_bytes`` of XML (unpacked), ``max_entries`` in a zip."""

    max_bytes: int
    max_entries: int


def check_size(data: bytes, limits: XmlLimits) -> None:
    """Raise :class:`PieceTooLargeError` when ``data`` is over ``limits``.

    A zip that cannot be read is let through: music21 then says what is wrong with it.
    """
    if not data.startswith(b"PK\x03\x04"):
        if len(data) > limits.max_bytes:
            raise PieceTooLargeError(
                f"the MusicXML document is {len(data)} bytes; at most {limits.max_bytes} "
                "are accepted"
            )
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        return
    if len(entries) > limits.max_entries:
        raise PieceTooLargeError(
            f"the MusicXML archive has {len(entries)} entries; at most {limits.max_entries} "
            "are accepted"
        )
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > limits.max_bytes:
        raise PieceTooLargeError(
            f"the MusicXML archive unpacks to {unpacked} bytes; at most {limits.max_bytes} "
            "are accepted"
        )


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


def musicxml_to_midi(data: bytes, limits: XmlLimits | None = None) -> Converted:
    """Convert MusicXML bytes (plain or ``.mxl`` zip) to Standard MIDI File bytes.

    Raises :class:`MusicXMLUnavailable` without music21, :class:`PieceTooLargeError`
    over ``limits`` (see :func:`check_size`; none by default),
    :class:`InvalidMusicXML` when music21 cannot read it.
    """
    if limits is not None:
        check_size(data, limits)
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
