"""Write the starter library (``server/music/starter/``) from music21's corpus.

Dev-time only (music21 is a dev dependency); the server reads the files it
writes without music21 (:mod:`server.services.starter`). Run it from the
repository root when the selection below changes::

    .venv-test/bin/python -m tests.make_starter_library
    .venv-test/bin/python -m tests.make_starter_library --check-conversion

For each work of :data:`WORKS` it writes ``<slug>.mid`` (what the room plays:
``music21.midi.translate.streamToMidiFile``, repeats expanded, one track per
part, as :mod:`tests.music` describes), ``<slug>.mxl`` (the score the browser
shows: music21's MusicXML export of the same parsed score, compressed) and one
entry of ``manifest.json``: ``id`` (fixed: a UUID5 of the corpus path, so
seeding is idempotent), ``title``, ``composer``, ``key``, ``difficulty``,
``parts`` (names), ``style_period``, ``source_type`` ``"public_domain"``,
``attribution`` (the corpus path, music21's version and the encoding's own
copyright line when it has one), ``corpus_path``, ``midi``, ``musicxml``.
``key`` and ``difficulty`` are what the server's own analysis
(:func:`server.db.repository.library_metadata`) finds in the MIDI file, so
the manifest and the stored pieces agree. ``--check-conversion`` converts
each MIDI file as a MIDI upload would be (music21's MIDI reader and MusicXML
writer) and counts the pieces that convert without a warning.

The works are public domain as compositions (composers dead for centuries);
the encodings come from music21's corpus, whose sources are named in each
attribution. Works whose encoding carries a restrictive copyright line were
left out (see the README's starter library section).
"""

from __future__ import annotations

import json
import sys
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import music21

from rooms.piece import load_midi
from server.db.repository import library_metadata

OUT = Path(__file__).resolve().parent.parent / "server" / "music" / "starter"
NAMESPACE = uuid.UUID("6f1c2d8e-5b7a-4f3e-9a41-2c6d0e8b7f15")  # Tutti's starter library
SATB = ["Soprano", "Alto", "Tenor", "Bass"]


@dataclass(frozen=True)
class Work:
    corpus_path: str
    title: str
    composer: str
    parts: list[str] | None = None  # rename the score's parts (None: keep them)
    style_period: str | None = None


BACH = "Johann Sebastian Bach"
WORKS = [
    Work("bach/bwv66.6", "Chorale from Cantata BWV 66 (66.6)", BACH, SATB),
    Work("bach/bwv269", "Chorale BWV 269", BACH, SATB),
    Work("bach/bwv253", "Chorale BWV 253", BACH, SATB),
    Work("bach/bwv347", "Chorale BWV 347", BACH, SATB),
    Work("bach/bwv153.1", "Chorale from Cantata BWV 153 (153.1)", BACH, SATB),
    Work("bach/bwv26.6", "Chorale from Cantata BWV 26 (26.6)", BACH, SATB),
    Work("bach/bwv40.8", "Chorale from Cantata BWV 40 (40.8)", BACH, SATB),
    Work("bach/bwv86.6", "Chorale from Cantata BWV 86 (86.6)", BACH, SATB),
    Work(
        "bach/bwv250",
        "Chorale BWV 250 (with two horns)",
        BACH,
        ["Horn 1", "Horn 2", *SATB],
    ),
    Work(
        "corelli/opus3no1/1grave",
        "Trio Sonata Op. 3 No. 1: I. Grave",
        "Arcangelo Corelli",
        ["Violin I", "Violin II", "Violone and Organ"],
    ),
    Work(
        "haydn/opus1no1/movement3",
        "String Quartet Op. 1 No. 1: III. Adagio",
        "Joseph Haydn",
        ["Violin I", "Violin II", "Viola", "Cello"],
        "classical",
    ),
    Work(
        "mozart/k80/movement4",
        "String Quartet No. 1 in G major, K. 80: IV. Rondeau",
        "Wolfgang Amadeus Mozart",
        ["Violin I", "Violin II", "Viola", "Cello"],
    ),
    Work(
        "handel/rinaldo/Lascia_chio_pianga",
        "Lascia ch'io pianga (Rinaldo)",
        "George Frideric Handel",
        ["Voice", "Piano right hand", "Piano left hand"],
    ),
    Work(
        "joplin/maple_leaf_rag",
        "Maple Leaf Rag",
        "Scott Joplin",
        ["Right hand", "Left hand"],
        "romantic",
    ),
]


def slug(path: str) -> str:
    return path.replace("/", "-").replace(".", "_").lower()


def piece_id(path: str) -> str:
    return uuid.uuid5(NAMESPACE, "tutti-starter:" + path).hex


def write_mxl(xml: bytes, name: str, path: Path) -> None:
    """A compressed MusicXML file (MusicXML 4.0, "Compressed MusicXML files")."""
    container = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<container>\n  <rootfiles>\n'
        f'    <rootfile full-path="{name}.musicxml" '
        'media-type="application/vnd.recordare.musicxml+xml"/>\n'
        "  </rootfiles>\n</container>\n"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        # The mimetype entry comes first and is stored uncompressed, as the standard asks.
        archive.writestr("mimetype", "application/vnd.recordare.musicxml", zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", container)
        archive.writestr(f"{name}.musicxml", xml)


def build(work: Work) -> dict:
    score = music21.corpus.parse(work.corpus_path)
    copyright_line = score.metadata.copyright if score.metadata else None
    if work.parts is not None:
        if len(work.parts) != len(score.parts):
            raise SystemExit(f"{work.corpus_path}: {len(score.parts)} parts, not {work.parts}")
        for part, name in zip(score.parts, work.parts, strict=True):
            part.partName = name
            # The MIDI track name comes from the part's instruments.
            for inst in part.recurse().getElementsByClass(music21.instrument.Instrument):
                inst.partName = name
    score.metadata = score.metadata or music21.metadata.Metadata()
    score.metadata.title = work.title
    score.metadata.composer = work.composer
    midi = music21.midi.translate.streamToMidiFile(score).writestr()
    xml = music21.musicxml.m21ToXml.GeneralObjectExporter(score).parse()
    name = slug(work.corpus_path)
    (OUT / f"{name}.mid").write_bytes(midi)
    write_mxl(xml, name, OUT / f"{name}.mxl")
    piece = load_midi(midi, title=work.title)
    meta = library_metadata(piece, composer=work.composer, style_period=work.style_period)
    attribution = (
        f"Score and parts from the music21 corpus ({work.corpus_path}, music21 "
        f"{music21.__version__}, https://github.com/cuthbertLab/music21)"
    )
    if copyright_line:
        attribution += f"; encoding: {copyright_line}"
    return {
        "id": piece_id(work.corpus_path),
        "title": work.title,
        "composer": work.composer,
        "key": meta["key_name"],
        "difficulty": meta["difficulty"],
        "parts": [p.name for p in piece.parts],
        "style_period": meta["style_period"],
        "source_type": "public_domain",
        "attribution": attribution,
        "corpus_path": work.corpus_path,
        "midi": f"{name}.mid",
        "musicxml": f"{name}.mxl",
    }


def check_conversion() -> int:
    """Convert each starter MIDI file as a MIDI upload is (:func:`midi_to_musicxml`) and print
    its time and music21's warnings: how many convert without one."""
    import time

    from server.services.notation import midi_to_musicxml

    entries = json.loads((OUT / "manifest.json").read_text())["pieces"]
    clean = 0
    for entry in entries:
        midi = (OUT / entry["midi"]).read_bytes()
        piece = load_midi(midi)
        notes = sum(len(p.notes) for p in piece.parts)
        beats = max(n.offset_beat for p in piece.parts for n in p.notes)
        started = time.perf_counter()
        result = midi_to_musicxml(midi, notes=notes, beats=beats, parts=len(piece.parts))
        took = time.perf_counter() - started
        state = result.state or {}
        warnings = state.get("warnings", [])
        clean += result.musicxml is not None and not warnings
        verdict = state.get("error") or f"{len(warnings)} warning(s)"
        print(f"{entry['corpus_path']:36} {notes:5} notes {took:6.2f} s  {verdict}")
        for warning in warnings[:3]:
            print(f"    {warning[:150]}")
    print(f"{clean} of {len(entries)} convert without a warning")
    return 0


def main() -> int:
    if "--check-conversion" in sys.argv[1:]:
        return check_conversion()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in [*OUT.glob("*.mid"), *OUT.glob("*.mxl")]:
        old.unlink()
    entries = []
    for work in WORKS:
        entry = build(work)
        print(f"{entry['id']}  {work.corpus_path:36} {entry['parts']}  {entry['attribution']}")
        entries.append(entry)
    manifest = {"format": 1, "pieces": entries}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"{len(entries)} pieces written to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
