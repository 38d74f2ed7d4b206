"""The starter library: real public-domain pieces bundled with the server, added to an
empty library on first start (``tutti serve --no-starter-library`` turns it off).

The files live in the package (``server/music/starter/``, written by
``tests/make_starter_library.py`` from music21's corpus): per piece a MIDI
file (what the room plays), a compressed MusicXML file (its score) and an
entry of ``manifest.json`` (``id``, ``title``, ``composer``, ``key``,
``difficulty``, ``parts``, ``style_period``, ``source_type``
``"public_domain"``, ``attribution``, ``midi``, ``musicxml``). No music21 is
needed to read them. Each piece goes in through
:func:`server.services.intake.add_piece` with its fixed id, so two processes
seeding one database at once store each piece once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import SheetMusic
from server.services.intake import PieceFile, add_piece
from server.services.pieces import PieceLimits

log = logging.getLogger(__name__)
PACKAGE = "server.music.starter"


@dataclass(frozen=True, slots=True)
class StarterPiece:
    """One manifest entry (see the module docstring) with its two files' bytes."""

    entry: dict[str, Any]
    midi: bytes
    musicxml: bytes


def manifest() -> list[dict[str, Any]]:
    """The entries of ``manifest.json``, in library order."""
    text = resources.files(PACKAGE).joinpath("manifest.json").read_text(encoding="utf-8")
    return json.loads(text)["pieces"]


def load() -> list[StarterPiece]:
    """Every starter piece with its files (about 300 kB in all)."""
    folder = resources.files(PACKAGE)
    return [
        StarterPiece(
            entry,
            folder.joinpath(entry["midi"]).read_bytes(),
            folder.joinpath(entry["musicxml"]).read_bytes(),
        )
        for entry in manifest()
    ]


async def seed(sessionmaker: async_sessionmaker[AsyncSession], limits: PieceLimits) -> int:
    """Add the starter pieces when the library is empty; return how many were added.

    A library with any piece in it is left alone (the pieces were added
    before, or the operator has their own). A piece whose id another process
    has just stored is skipped.
    """
    async with sessionmaker() as db:
        if await db.scalar(select(func.count()).select_from(SheetMusic)):
            return 0
    added = 0
    for starter in load():
        entry = starter.entry
        source = PieceFile(
            starter.midi,
            filename=entry["midi"],
            title=entry["title"],
            composer=entry["composer"],
            style_period=entry.get("style_period"),
            source_type=entry["source_type"],
            musicxml=starter.musicxml,
            attribution=entry["attribution"],
        )
        try:
            await add_piece(
                sessionmaker, source, limits=limits, uploaded_by=None, piece_id=entry["id"]
            )
        except IntegrityError:
            continue  # another process seeding the same database stored it first
        added += 1
    log.info("added %d starter piece(s) to the empty library", added)
    return added
