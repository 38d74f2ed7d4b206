"""The piece library's table: uploaded and imported pieces with their MIDI bytes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models.base import (
    ID_LENGTH,
    Base,
    new_id,
    utcnow,
)


class SheetMusic(Base):
    """A piece: metadata derived from the MIDI file, plus the file itself.

    ``parts`` is a JSON list, one entry per playable part::

        {"name": str, "notes": int (note count), "channel": int | None,
         "program": int | None, "lowest_pitch": int | None,
         "highest_pitch": int | None}

    ``tempo_bpm`` is the file's initial tempo, ``duration_seconds`` the length
    at that tempo map. ``difficulty`` is a 1–10 heuristic (see
    :mod:`rooms.analysis`). ``split_pitch`` is set
    when the piece is the file split into right/left hands at that pitch
    (right hand ≥ ``split_pitch``). ``midi_data`` is deferred: it is only
    loaded when asked for.

    Library metadata (``0003``, see :mod:`server.services.library`): ``key_name`` the
    Krumhansl–Schmuckler key (``"F# minor"``), ``analysis`` the JSON of
    :meth:`rooms.analysis.Analysis.to_json` (features, key, chords per beat),
    ``instrument`` (``"piano"``, ``"strings"``… from the General MIDI program
    or given at import), ``style_period`` (``"baroque"``…, given or from the
    composer), ``grade`` 1–8 (from the difficulty), ``generator`` the request
    of a ``generated`` piece (``{"kind", "difficulty", "key", "parts",
    "measures", "seed"}``).

    Notation (``0006``, see :mod:`server.services.notation`): ``musicxml_data``
    the score as uncompressed MusicXML (deferred), ``notation`` how it was made
    (``{"source": "original" | "converted", "warnings": [str]}``) or why not
    (``{"error": str}``), NULL when not tried yet; ``attribution`` the source of
    a bundled (``public_domain``) piece.
    """

    __tablename__ = "sheet_music"
    __table_args__ = (CheckConstraint("difficulty BETWEEN 1 AND 10", name="difficulty_range"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(300))
    composer: Mapped[str | None] = mapped_column(String(300))
    parts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    tempo_bpm: Mapped[float] = mapped_column(Float)
    duration_seconds: Mapped[float] = mapped_column(Float)
    difficulty: Mapped[int] = mapped_column(Integer)
    source_type: Mapped[str] = mapped_column(String(32))
    split_pitch: Mapped[int | None] = mapped_column(Integer)
    ticks_per_beat: Mapped[int] = mapped_column(Integer)
    time_signature: Mapped[str] = mapped_column(String(16))
    midi_data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    key_name: Mapped[str | None] = mapped_column(String(16))
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    instrument: Mapped[str | None] = mapped_column(String(64), index=True)
    style_period: Mapped[str | None] = mapped_column(String(32), index=True)
    grade: Mapped[int | None] = mapped_column(Integer)
    generator: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attribution: Mapped[str | None] = mapped_column(String(500))
    musicxml_data: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    notation: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"SheetMusic(id={self.id!r}, title={self.title!r})"
