"""Benchmark: audio → notes (Basic Pitch through ONNX Runtime) and scoring a recording.

Run with ``python -m loadtests.bench.audio`` (``--quick``: the chorale cases only). Not
collected by pytest. Needs the ``audio`` extra, ``fluidsynth`` and
``fluid-soundfont-gm`` (tests/install-test-deps.sh).

Each case is a piece of music21's corpus rendered to a 44.1 kHz WAV by FluidSynth
with the GM soundfont (:mod:`tests.audio`): Bach's BWV 66.6 soprano (piano, flute and
violin timbres), all four voices of it on a piano, and Joplin's Maple Leaf Rag on a
piano (all of it, 132 s). For each, in a **fresh spawned process** (one worker, as the
server's ``"audio"`` lane runs a job) the job's own steps run
(:mod:`server.services.audio_work`: decode and resample, the model a batch of
windows at a time, frames → notes), timed with ``time.perf_counter``:

* **RTF** (real-time factor) = transcription time ÷ audio duration, one core
  (ONNX Runtime with one intra-op thread); target ≤ 0.3;
* **peak MB**: the worker's peak resident memory (``ru_maxrss``) during the job, and
  beside it the same for a worker that only imported the modules and loaded the model
  (the baseline measured in the same run);
* **P / R / F1**: note-level precision, recall, F1 of the transcription against the
  notes of the rendered MIDI file, ``mir_eval.transcription.precision_recall_f1_overlap``
  with a 50 ms onset tolerance and no offset criterion; target F1 ≥ 0.85 on the piano
  piece;
* **accuracy**: the recording scored as a room player (:func:`rooms.recorded.score_recording`,
  the live scorer with its tempo tracker): matched ÷ expected; target ≥ 0.9 on the
  chorale. ``ref acc.`` is the same for the MIDI file's own notes fed in as if they had
  been transcribed perfectly (the scorer's part of any loss).
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import resource
import sys
import time
from typing import Any

import mir_eval
import numpy as np

from rooms.piece import load_midi
from rooms.recorded import score_recording
from server.services import audio_work, basic_pitch
from tests import audio
from tests.music import chorale_midi

CHORALE, PIANO = "bach/bwv66.6", "joplin/maple_leaf_rag"
CASES = [  # (label, corpus work, part or None, GM program or None)
    ("chorale soprano, piano", CHORALE, "Soprano", None),
    ("chorale soprano, flute", CHORALE, "Soprano", 73),
    ("chorale soprano, violin", CHORALE, "Soprano", 40),
    ("chorale SATB, piano", CHORALE, None, None),
    ("Maple Leaf Rag, piano", PIANO, None, None),
]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def _idle() -> float:
    """Runs in a fresh worker: the model loaded, nothing transcribed; peak MB."""
    basic_pitch._model()
    return _peak_mb()


def _job(wav: bytes) -> dict[str, Any]:
    """Runs in a fresh worker: the job's steps, as :class:`AudioJobs` calls them."""
    t0 = time.perf_counter()
    samples = audio_work.decode(wav, "audio/wav", 3600)
    padded = audio_work.pad(samples)
    total = basic_pitch.window_count(len(samples))
    frames, onsets = [], []
    for first in range(0, total, audio_work.WINDOWS_PER_STEP):
        count = min(audio_work.WINDOWS_PER_STEP, total - first)
        f, o = audio_work.transcribe_step(audio_work.segment(padded, first), count)
        frames.append(f)
        onsets.append(o)
    notes = audio_work.notes_of(np.concatenate(frames), np.concatenate(onsets), len(samples))
    elapsed = time.perf_counter() - t0
    return {
        "seconds": len(samples) / basic_pitch.SAMPLE_RATE,
        "elapsed": elapsed,
        "notes": notes,
        "peak_mb": _peak_mb(),
    }


def _in_fresh_worker(fn, *args):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(fn, args)


def _prf(reference, estimated) -> tuple[float, float, float]:
    ri = np.array([[n.onset_s, max(n.offset_s, n.onset_s + 0.01)] for n in reference])
    rp = mir_eval.util.midi_to_hz(np.array([n.pitch for n in reference], float))
    ei = np.array([[n[0], max(n[1], n[0] + 0.01)] for n in estimated])
    ep = mir_eval.util.midi_to_hz(np.array([n[2] for n in estimated], float))
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ri, rp, ei, ep, onset_tolerance=0.05, offset_ratio=None
    )
    return p, r, f


def _accuracy(midi: bytes, part: str | None, notes) -> float:
    finished = score_recording(
        load_midi(midi), part, notes, session_id="bench", room_id="bench", user_id="u",
        display_name="bench", recorded_at_ms=0,
    )  # fmt: skip
    return finished.players[0].result["accuracy"]


def run_case(label: str, work: str, part: str | None, program: int | None) -> dict[str, Any]:
    midi = chorale_midi(work)
    if part is not None:
        midi = audio.part_only(midi, part)
    wav = audio.render(midi, program=program)
    job = _in_fresh_worker(_job, wav)
    piece = load_midi(midi)
    reference = [n for p in piece.parts for n in p.notes]
    precision, recall, f1 = _prf(reference, job["notes"])
    perfect = [(n.onset_s + 0.5, n.offset_s + 0.5, n.pitch, n.velocity) for n in reference]
    return {
        "case": label,
        "audio_s": job["seconds"],
        "elapsed_s": job["elapsed"],
        "rtf": job["elapsed"] / job["seconds"],
        "peak_mb": job["peak_mb"],
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": _accuracy(midi, part, job["notes"]),
        "ref_accuracy": _accuracy(midi, part, perfect),
    }


def table(rows: list[dict[str, Any]], idle_mb: float) -> str:
    head = (
        f"| case | audio s | transcribe s | RTF | peak MB (idle {idle_mb:.0f}) | P | R | F1 "
        "| accuracy | ref acc. |"
    )
    lines = [head, "|" + " --- |" * 10]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['audio_s']:.1f} | {r['elapsed_s']:.2f} | {r['rtf']:.3f} "
            f"| {r['peak_mb']:.0f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} "
            f"| {r['accuracy']:.3f} | {r['ref_accuracy']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the chorale cases only")
    args = parser.parse_args(argv)
    if not (basic_pitch.available() and audio.available()):
        print("needs the audio extra, fluidsynth and fluid-soundfont-gm", file=sys.stderr)
        return 2
    cases = [c for c in CASES if not args.quick or c[1] == CHORALE]
    idle = _in_fresh_worker(_idle)
    rows = []
    for case in cases:
        rows.append(run_case(*case))
        print(f"  {case[0]}: done", file=sys.stderr)
    print(f"Python {platform.python_version()}, {platform.machine()}, one core per job")
    print(table(rows, idle))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
