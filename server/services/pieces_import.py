"""``tutti pieces import`` and ``tutti pieces generate``: MIDI and MusicXML files, or
generated material, straight into the library database (through
:func:`server.services.intake.add_piece`)."""

from __future__ import annotations

import sys
from pathlib import Path

from rooms.generate import Request
from rooms.piece import PieceError
from server.config import Settings
from server.db.engine import make_engine, make_sessionmaker, upgrade_database
from server.services.intake import PieceFile, add_piece
from server.services.pieces import PieceLimits


async def import_files(
    settings: Settings,
    files: list[Path],
    *,
    title: str | None,
    composer: str | None,
    split_pitch: int | None,
    instrument: str | None = None,
    style_period: str | None = None,
) -> int:
    """Import each file, printing one line per file; return 0, or 1 if any file failed.

    MusicXML files (``.musicxml``, ``.mxl``, ``.xml``) need the ``musicxml``
    extra; without it each one fails with a line naming the extra to install.
    A file over the settings' piece limits (:class:`~server.services.pieces.PieceLimits`)
    fails with ``piece_too_large``'s message.
    """
    engine = make_engine(settings.resolved_database_url())
    limits = PieceLimits.from_settings(settings)
    failed = 0
    try:
        await upgrade_database(engine)
        sessionmaker = make_sessionmaker(engine)
        for index, path in enumerate(files, 1):
            prefix = f"[{index}/{len(files)}] {path}"
            try:
                source = PieceFile(
                    path.read_bytes(),
                    filename=path.name,
                    title=title,
                    composer=composer,
                    split_pitch=split_pitch,
                    instrument=instrument,
                    style_period=style_period,
                    fallback_title=path.stem,
                    source_type="cli_import",
                )
                added = await add_piece(sessionmaker, source, limits=limits, uploaded_by=None)
            except (OSError, PieceError) as exc:
                print(f"{prefix}: not imported: {exc}", file=sys.stderr, flush=True)
                failed += 1
                continue
            row = added.piece
            parts = ", ".join(p["name"] for p in row["parts"])
            print(
                f"{prefix}: {row['id']}  {row['title']!r}  parts: {parts}  "
                f"difficulty {row['difficulty']}  key {row['key'] or '-'}",
                flush=True,
            )
    finally:
        await engine.dispose()
    return 1 if failed else 0


async def generate_piece(settings: Settings, request: Request, *, out: Path | None) -> int:
    """Generate sight-reading material, store it (source ``generated``) and print its id.

    With ``out`` the MIDI file is also written there.
    """
    engine = make_engine(settings.resolved_database_url())
    try:
        await upgrade_database(engine)
        added = await add_piece(
            make_sessionmaker(engine),
            request,
            limits=PieceLimits.from_settings(settings),
            uploaded_by=None,
        )
        if out is not None:
            out.write_bytes(added.midi)
        row = added.piece
        print(
            f"{row['id']}  {row['title']!r}  difficulty {row['difficulty']}  "
            f"tempo {added.tempo_bpm} BPM  key {row['key'] or '-'}",
            flush=True,
        )
    finally:
        await engine.dispose()
    return 0
