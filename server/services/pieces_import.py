"""``tutti pieces import``: MIDI and MusicXML files straight into the library database."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from rooms.generate import Request, generate
from rooms.piece import PieceError
from server.config import Settings
from server.db import repository
from server.db.engine import make_engine, make_sessionmaker, upgrade_database
from server.services.pieces import load_piece_file


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
    """
    engine = make_engine(settings.resolved_database_url())
    failed = 0
    try:
        await upgrade_database(engine)
        sessionmaker = make_sessionmaker(engine)
        for index, path in enumerate(files, 1):
            prefix = f"[{index}/{len(files)}] {path}"
            try:
                data = path.read_bytes()
                loaded = load_piece_file(
                    data, filename=path.name, title=title, split_pitch=split_pitch
                )
            except (OSError, PieceError) as exc:
                print(f"{prefix}: not imported: {exc}", file=sys.stderr, flush=True)
                failed += 1
                continue
            async with sessionmaker.begin() as db:
                row = await repository.add_piece(
                    db,
                    piece=loaded.piece,
                    midi_data=loaded.midi,
                    title=loaded.title
                    or (loaded.piece.title if loaded.piece.title != "Untitled" else path.stem),
                    composer=composer or loaded.composer,
                    source_type="cli_import",
                    split_pitch=split_pitch,
                    uploaded_by=None,
                    instrument=instrument,
                    style_period=style_period,
                )
                parts = ", ".join(p["name"] for p in row.parts)
                print(
                    f"{prefix}: {row.id}  {row.title!r}  parts: {parts}  "
                    f"difficulty {row.difficulty}  key {row.key_name or '-'}",
                    flush=True,
                )
    finally:
        await engine.dispose()
    return 1 if failed else 0


async def generate_piece(settings: Settings, request: Request, *, out: Path | None) -> int:
    """Generate sight-reading material, store it (source ``generated``) and print its id.

    With ``out`` the MIDI file is also written there.
    """
    generated = generate(request)
    if out is not None:
        out.write_bytes(generated.midi)
    engine = make_engine(settings.resolved_database_url())
    try:
        await upgrade_database(engine)
        async with make_sessionmaker(engine).begin() as db:
            row = await repository.add_piece(
                db,
                piece=generated.piece,
                midi_data=generated.midi,
                title=request.title,
                composer=None,
                source_type="generated",
                split_pitch=None,
                uploaded_by=None,
                generator=asdict(request),
            )
            print(
                f"{row.id}  {row.title!r}  difficulty {row.difficulty}  "
                f"tempo {generated.tempo_bpm} BPM  key {row.key_name or '-'}",
                flush=True,
            )
    finally:
        await engine.dispose()
    return 0
