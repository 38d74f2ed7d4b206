"""Real music for tests: scores from music21's bundled corpus, as MIDI bytes.

``chorale_midi(name)`` converts a corpus work (any corpus path, not only
chorales) with ``music21.midi.translate.streamToMidiFile`` and returns the
Standard MIDI File bytes. Conversion is cached on disk under
``$TUTTI_MUSIC_CACHE`` (default ``<tempdir>/tutti-music-cache``), keyed by work
name and music21 version, and in memory, so a test run converts each work once.

What music21 (10.x) writes, checked with mido:

* a type 1 file, 10080 ticks per quarter note;
* track 0 is a conductor track **without** a ``track_name`` (so
  :func:`rooms.piece.load_midi` titles the piece ``"Untitled"``), holding
  ``set_tempo``, ``key_signature`` and ``time_signature``; then one track per
  score part named by ``track_name`` = the part name (``bach/bwv66.6``:
  Soprano, Alto, Tenor, Bass);
* **every part on channel 0** with ``program_change`` 0 (the parts share one
  instrument class), so merging tracks into a type 0 file puts all voices on
  one channel — use :func:`one_channel_per_track` first to keep them apart;
* tempo: the score's metronome mark, else music21's default. ``bwv66.6`` has a
  playback-only mark of 96 BPM (625000 µs/beat); ``bach/bwv4.8`` has
  "animato" = 120 BPM; ``joplin/maple_leaf_rag`` starts at 100 BPM and switches
  to 120 BPM at tick 7560 (0.75 beat, where its pickup starts);
* repeats are expanded (``bwv4.8`` and the rag play their repeated sections
  twice), ties are merged into one note and the first measure (pickup or not)
  starts at tick 0. Compare with ``score.expandRepeats()`` then
  ``part.stripTies().flatten().notes`` (:func:`music21_notes` does this);
* ``joplin/maple_leaf_rag`` is a piano piece: two tracks, both named "Piano"
  (treble and bass staff), 2/4 time.
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
from pathlib import Path

import mido
import music21

__all__ = [
    "chorale_midi",
    "chorale_score",
    "music21_notes",
    "one_channel_per_track",
    "to_type0",
]

_CHANNELS = [c for c in range(16) if c != 9]  # channel 9 (10 in 1-based) is drums


def _cache_dir() -> Path:
    default = Path(tempfile.gettempdir()) / "tutti-music-cache"
    path = Path(os.environ.get("TUTTI_MUSIC_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def chorale_score(name: str = "bach/bwv66.6") -> music21.stream.Score:
    """The parsed corpus work. Shared between callers: do not modify it in place."""
    return music21.corpus.parse(name)


@functools.cache
def chorale_midi(name: str = "bach/bwv66.6") -> bytes:
    """MIDI bytes of corpus work ``name`` as music21 writes them (cached)."""
    key = name.replace("/", "__").replace("\\", "__")
    path = _cache_dir() / f"{key}-music21-{music21.__version__}.mid"
    if path.exists():
        return path.read_bytes()
    data = music21.midi.translate.streamToMidiFile(chorale_score(name)).writestr()
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(data)
    os.replace(partial, path)  # atomic, so parallel test runs never read half a file
    return data


def music21_notes(name: str = "bach/bwv66.6") -> list[tuple[str, list[tuple[float, int]]]]:
    """music21's own view of the notes MIDI export writes, per part.

    A list of ``(part name, [(onset in quarter notes, MIDI pitch), ...])`` in
    part order, repeats expanded and ties merged, chord members counted as
    separate notes, rests excluded; sorted by (onset, pitch).
    """
    expanded = chorale_score(name).expandRepeats()
    result = []
    for part in expanded.parts:
        flat = part.stripTies().flatten()
        notes = sorted(
            (float(element.getOffsetBySite(flat)), pitch.midi)
            for element in flat.notes
            for pitch in element.pitches
        )
        result.append((part.partName, notes))
    return result


def one_channel_per_track(midi: bytes) -> bytes:
    """Give each track that has channel messages its own channel (0, 1, … skipping 9).

    music21 puts every part on channel 0; after this a type 0 merge keeps the
    parts apart by channel.
    """
    source = mido.MidiFile(file=io.BytesIO(midi))
    out = mido.MidiFile(type=source.type, ticks_per_beat=source.ticks_per_beat)
    index = 0
    for track in source.tracks:
        if any(hasattr(msg, "channel") for msg in track):
            channel = _CHANNELS[index % len(_CHANNELS)]
            index += 1
            track = mido.MidiTrack(
                msg.copy(channel=channel) if hasattr(msg, "channel") else msg for msg in track
            )
        out.tracks.append(track)
    return _save(out)


def to_type0(midi: bytes) -> bytes:
    """The same music as a type 0 file: all tracks merged into one, channels kept."""
    source = mido.MidiFile(file=io.BytesIO(midi))
    out = mido.MidiFile(type=0, ticks_per_beat=source.ticks_per_beat)
    out.tracks.append(mido.merge_tracks(source.tracks))
    return _save(out)


def _save(midi: mido.MidiFile) -> bytes:
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()
