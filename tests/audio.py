"""Real audio for tests and benchmarks: MIDI rendered by FluidSynth with a General MIDI
soundfont (Debian's ``fluidsynth`` and ``fluid-soundfont-gm``, installed by
tests/install-test-deps.sh), and MIDI edited before rendering (one part, an
excerpt, injected mistakes).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mido

from rooms.piece import load_midi

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE = 44100


def available() -> bool:
    """Whether FluidSynth and the GM soundfont are installed."""
    return shutil.which("fluidsynth") is not None and SOUNDFONT.is_file()


def render(midi: bytes, *, program: int | None = None, gain: float = 0.8) -> bytes:
    """``midi`` played by FluidSynth through the GM soundfont: 16-bit stereo WAV bytes at
    44.1 kHz. ``program``: a General MIDI program (0 piano, 40 violin, 73 flute, 52
    choir aahs) set on every channel before the first note."""
    if program is not None:
        midi = _with_program(midi, program)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        src.write_bytes(midi)
        subprocess.run(
            ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(SAMPLE_RATE), "-F", str(out)]
            + [str(SOUNDFONT), str(src)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        return out.read_bytes()


def _save(midi: mido.MidiFile) -> bytes:
    buf = io.BytesIO()
    midi.save(file=buf)
    return buf.getvalue()


def _with_program(midi: bytes, program: int) -> bytes:
    mf = mido.MidiFile(file=io.BytesIO(midi))
    for track in mf.tracks:
        kept = [m for m in track if m.type != "program_change"]
        channels = sorted({m.channel for m in kept if m.type in ("note_on", "note_off")})
        track[:] = [mido.Message("program_change", channel=c, program=program) for c in channels]
        track.extend(kept)
    return _save(mf)


def part_only(midi: bytes, part: str) -> bytes:
    """The file with only the tracks of ``part`` (by ``track_name``) and those without notes
    (the conductor track): what one player of the part plays."""
    mf = mido.MidiFile(file=io.BytesIO(midi))
    mf.tracks[:] = [
        t
        for t in mf.tracks
        if not any(m.type == "note_on" for m in t)
        or any(m.type == "track_name" and m.name == part for m in t)
    ]
    return _save(mf)


def excerpt(midi: bytes, seconds: float) -> bytes:
    """The file with only the notes that start in its first ``seconds`` s (every part)."""
    tempo_map = load_midi(midi).tempo_map
    mf = mido.MidiFile(file=io.BytesIO(midi))
    for track in mf.tracks:
        tick, events = 0, []
        for msg in track:
            tick += msg.time
            late = tempo_map.tick_to_seconds(tick) >= seconds
            if late and msg.type == "note_on" and msg.velocity > 0:
                continue
            events.append((tick, msg))
        _retime(track, events)
    return _save(mf)


def _retime(track: mido.MidiTrack, events: list[tuple[int, mido.Message]]) -> None:
    """Rewrite ``track`` from absolute-tick events, dropping note-offs without a note-on."""
    sounding: dict[tuple[int, int], int] = {}
    out, last = [], 0
    for tick, msg in events:
        if msg.type == "end_of_track":
            tick = last  # no silence after the last note kept
        if msg.type == "note_on" and msg.velocity > 0:
            sounding[(msg.channel, msg.note)] = sounding.get((msg.channel, msg.note), 0) + 1
        elif msg.type in ("note_off", "note_on"):
            key = (msg.channel, msg.note)
            if not sounding.get(key):
                continue
            sounding[key] -= 1
        out.append(msg.copy(time=tick - last))
        last = tick
    track[:] = out


@dataclass(frozen=True)
class Injected:
    """Mistakes edited into a part: ``dropped`` and ``wrong`` are indices into the part's
    notes (sorted by onset tick, then pitch); ``wrong_pitch`` maps each wrong one to the
    pitch played instead."""

    dropped: tuple[int, ...]
    wrong_pitch: dict[int, int]


def with_mistakes(
    midi: bytes, part: str, *, dropped: tuple[int, ...], wrong: tuple[int, ...], shift: int = 2
) -> tuple[bytes, Injected]:
    """``part_only(midi, part)`` with the notes at ``dropped`` removed and those at
    ``wrong`` played ``shift`` semitones higher; returns the file and what was injected."""
    single = part_only(midi, part)
    notes = sorted(load_midi(single).part(part).notes, key=lambda n: (n.onset_tick, n.pitch))
    starts = {(n.onset_tick, n.pitch): i for i, n in enumerate(notes)}
    mf = mido.MidiFile(file=io.BytesIO(single))
    changed: dict[int, int] = {i: notes[i].pitch + shift for i in wrong}
    for track in mf.tracks:
        tick, events, open_as = 0, [], {}
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                i = starts.get((tick, msg.note))
                if i in dropped:
                    open_as[msg.note] = None
                    continue
                if i in changed:
                    open_as[msg.note] = changed[i]
                    msg = msg.copy(note=changed[i])
                else:
                    open_as.pop(msg.note, None)
            elif msg.type in ("note_off", "note_on") and msg.note in open_as:
                played = open_as.pop(msg.note)
                if played is None:
                    continue
                msg = msg.copy(note=played)
            events.append((tick, msg))
        _retime(track, events)
    return _save(mf), Injected(tuple(dropped), changed)
