"""Benchmark: cost of live scoring per played note, against mir_eval as a baseline.

Run with ``python -m loadtests.bench.scoring`` (``--repeats N``, ``--quick``). Not
collected by pytest (the file name does not start with ``test_``).

For each part (all four voices of Bach's BWV 66.6 and both hands of Joplin's
Maple Leaf Rag, from music21's corpus) a performance is planned with
:func:`rooms.performance.humanize`: ±15 ms onset jitter plus dropped notes and
wrong pitches from :func:`rooms.performance.choose_mistakes`. Then:

* **ours**: a fresh :class:`rooms.scoring.Scorer` is fed every note-on and
  note-off in order (``note_on`` does the matching, the tempo tracking, the
  judgement and the incremental mir_eval-equivalent precision/recall). The
  loop is timed with ``time.perf_counter_ns`` (garbage collector off, as
  ``timeit`` does) and divided by the number of note-ons; building the
  scorer is not included; a short part is played by several fresh scorers
  per timed sample (≥ 2000 note-ons). N samples after one warm-up sample:
  median and best.
* **mir_eval batch, once**: ``mir_eval.transcription.precision_recall_f1_overlap``
  (``offset_ratio=None``) on the whole performance, divided by the number of
  note-ons. Its NumPy input arrays are built outside the timing. This only
  gives precision/recall/F1 at the end, not live.
* **mir_eval recomputed per note**: what a naive live implementation would do,
  calling it again on the notes played so far after every note-on; the mean
  cost of one call (= per scored note). For long parts the calls are timed at
  evenly spaced prefix lengths (every k-th note) and averaged, which estimates
  the same mean.

``ratio`` = mir_eval batch ÷ ours (how many times cheaper per note ours is
than even a single batch evaluation). Target in the project: ≤ 20 µs per
scored note.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import mir_eval
import numpy as np

from rooms.notes import Note
from rooms.performance import PlannedEvent, choose_mistakes, humanize
from rooms.piece import load_midi
from rooms.scoring import Scorer
from tests.music import chorale_midi

TARGET_US = 20.0
JITTER_MS = 15.0


@dataclass
class Case:
    label: str
    notes: Sequence[Note]
    bpm: float
    events: list[PlannedEvent]

    @property
    def note_ons(self) -> int:
        return sum(e.type == "on" for e in self.events)


def cases() -> list[Case]:
    out = []
    chorale = load_midi(chorale_midi("bach/bwv66.6"))
    rag = load_midi(chorale_midi("joplin/maple_leaf_rag"))
    parts = [("BWV 66.6", chorale, p) for p in chorale.parts]
    # music21 writes the rag's treble staff (right hand) first, then the bass staff.
    hands = {"Piano": "right hand", "Piano (2)": "left hand"}
    parts += [("Maple Leaf Rag", rag, p) for p in rag.parts]
    for seed, (title, piece, part) in enumerate(parts, start=1):
        mistakes_per_100 = max(1, len(part.notes) // 100)
        mistakes = choose_mistakes(
            part.notes, dropped=2 * mistakes_per_100, wrong=mistakes_per_100, seed=seed
        )
        events = humanize(part.notes, jitter_ms=JITTER_MS, mistakes=mistakes, seed=seed)
        name = hands.get(part.name, part.name)
        out.append(Case(f"{title} / {name}", part.notes, piece.bpm, events))
    return out


def time_ns(fn: Callable[[], object], *, collect: bool = True) -> int:
    """Wall time of one call, ns, with the garbage collector off (collected first)."""
    if collect:
        gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        fn()
        return time.perf_counter_ns() - start
    finally:
        if enabled:
            gc.enable()


def bench_ours(case: Case, repeats: int, min_notes: int = 2000) -> tuple[float, float]:
    """(median, best) µs per note-on for feeding fresh Scorers the whole performance.

    A short part is played by several fresh scorers within one timed sample
    (at least ``min_notes`` note-ons per sample), so that a sample lasts long
    enough to time reliably.
    """
    events = [(e.type == "on", e.pitch, e.t_ms) for e in case.events]
    copies = -(-min_notes // case.note_ons)
    samples = []
    for attempt in range(repeats + 1):  # the first sample only warms up
        scorers = [Scorer(case.notes, tempo_bpm=case.bpm) for _ in range(copies)]

        def run(scorers=scorers) -> None:
            for scorer in scorers:
                note_on, note_off = scorer.note_on, scorer.note_off
                for is_on, pitch, t in events:
                    if is_on:
                        note_on(pitch, t)
                    else:
                        note_off(pitch, t)

        elapsed = time_ns(run)
        assert all(scorer.notes_played == case.note_ons for scorer in scorers)
        if attempt:
            samples.append(elapsed)
    per_note = [ns / 1000 / (case.note_ons * copies) for ns in samples]
    return statistics.median(per_note), min(per_note)


def _arrays(onsets_s: Sequence[float], pitches: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    onsets = np.maximum(np.asarray(onsets_s, dtype=float), 0.0)  # mir_eval rejects t < 0
    intervals = np.column_stack([onsets, onsets + 0.1])
    hz = 440.0 * 2.0 ** ((np.asarray(pitches, dtype=float) - 69.0) / 12.0)
    return intervals, hz


def mir_eval_call(ref, est) -> Callable[[], object]:
    ref_intervals, ref_hz = ref
    est_intervals, est_hz = est

    def call():
        return mir_eval.transcription.precision_recall_f1_overlap(
            ref_intervals, ref_hz, est_intervals, est_hz, offset_ratio=None
        )

    return call


def bench_mir_eval(case: Case, repeats: int, max_prefix_calls: int) -> tuple[float, float, int]:
    """(batch µs per note-on, µs per recomputation, number of prefixes timed)."""
    ref = _arrays([n.onset_s for n in case.notes], [n.pitch for n in case.notes])
    ons = [e for e in case.events if e.type == "on"]
    est = _arrays([e.t_ms / 1000 for e in ons], [e.pitch for e in ons])
    call = mir_eval_call(ref, est)
    call()  # warm-up
    batch = statistics.median(time_ns(call) for _ in range(repeats))
    batch_per_note = batch / 1000 / len(ons)

    step = max(1, len(ons) // max_prefix_calls)
    prefixes = list(range(1, len(ons) + 1, step))
    tries = max(1, 300 // len(prefixes))  # short parts: median of several calls per prefix
    per_call = []
    gc.collect()  # once: a full collection per call would dominate the run time
    for k in prefixes:
        call = mir_eval_call(ref, (est[0][:k], est[1][:k]))
        ns = statistics.median(time_ns(call, collect=False) for _ in range(tries))
        per_call.append(ns / 1000)
    return batch_per_note, statistics.mean(per_call), len(prefixes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per part (N)")
    parser.add_argument(
        "--prefix-calls",
        type=int,
        default=150,
        help="at most this many prefixes timed for mir_eval recomputed per note",
    )
    parser.add_argument("--quick", action="store_true", help="3 repeats, 30 prefixes")
    args = parser.parse_args(argv)
    repeats, prefix_calls = (3, 30) if args.quick else (args.repeats, args.prefix_calls)
    warnings.simplefilter("ignore")  # mir_eval warns about empty note lists

    print("# Live scoring cost per note\n")
    print(f"- Python {platform.python_version()} ({platform.python_implementation()})")
    print(f"- {platform.platform()}, {platform.machine()}, {platform.processor() or 'cpu ?'}")
    print(f"- mir_eval {mir_eval.__version__}, NumPy {np.__version__}")
    print(
        f"- performances: ±{JITTER_MS:g} ms jitter, dropped notes and wrong pitches; "
        f"ours = Scorer.note_on + note_off, median and best of N = {repeats}"
    )
    print("- ratio = mir_eval batch (once) ÷ ours (median)\n")

    header = (
        "| piece/part | notes played | µs/note (ours, median) | µs/note (ours, best) "
        "| µs/note (mir_eval batch, once) | ratio | µs/note (mir_eval recomputed per note) |"
    )
    print(header)
    print("|" + "|".join(["---"] + ["---:"] * 6) + "|")
    worst = 0.0
    for case in cases():
        median, best = bench_ours(case, repeats)
        batch, recomputed, timed = bench_mir_eval(case, repeats, prefix_calls)
        worst = max(worst, median)
        sampled = "" if timed == case.note_ons else f" ({timed} prefixes)"
        print(
            f"| {case.label} | {case.note_ons} | {median:.2f} | {best:.2f} | {batch:.2f} "
            f"| {batch / median:.1f}× | {recomputed:,.0f}{sampled} |",
            flush=True,
        )
    verdict = "within" if worst <= TARGET_US else "OVER"
    print(
        f"\nWorst median: {worst:.2f} µs per scored note — {verdict} the {TARGET_US:g} µs target."
    )
    return 0 if worst <= TARGET_US else 1


if __name__ == "__main__":
    sys.exit(main())
