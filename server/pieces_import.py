"""``tutti pieces import``: MIDI files straight into the library database."""

from __future__ import annotations

import sys
from pathlib import Path

from rooms.piece import PieceError
from server.config import Settings
from server.db import repository
from server.db.engine import make_engine, make_sessionmaker, upgrade_database
from server.pieces import piece_from_midi


async def import_files(
    settings: Settings,
    files: list[Path],
    *,
    title: str | None,
    composer: str | None,
    split_pitch: int | None,
) -> int:
    """Import each file, printing one line per file; return 0, or 1 if any file failed."""
    engine = make_engine(settings.resolved_database_url())
    failed = 0
    try:
        await upgrade_database(engine)
        sessionmaker = make_sessionmaker(engine)
        for index, path in enumerate(files, 1):
            prefix = f"[{index}/{len(files)}] {path}"
            try:
                data = path.read_bytes()
                piece = piece_from_midi(data, title=title, split_pitch=split_pitch)
            except (OSError, PieceError) as exc:
                print(f"{prefix}: not imported: {exc}", file=sys.stderr, flush=True)
                failed += 1
                continue
            async with sessionmaker.begin() as db:
                row = await repository.add_piece(
                    db,
                    piece=piece,
                    midi_data=data,
                    title=title or (piece.title if piece.title != "Untitled" else path.stem),
                    composer=composer,
                    source_type="cli_import",
                    split_pitch=split_pitch,
                    uploaded_by=None,
                )
                parts = ", ".join(p["name"] for p in row.parts)
                print(f"{prefix}: {row.id}  {row.title!r}  parts: {parts}", flush=True)
    finally:
        await engine.dispose()
    return 1 if failed else 0
