"""Benchmark: what the metrics add to each relayed note, against the scorer's cost per note.

Run with ``python -m loadtests.bench.metrics`` (``--repeats N``). Not collected by
pytest.

* **metrics per note**: exactly what :meth:`server.realtime.room_manager.RoomManager.notes`
  adds for a one-note message — four ``time.perf_counter()`` readings and one
  :meth:`server.observability.metrics.Metrics.note_relayed` call (a counter and two
  lock-free :class:`server.observability.metrics.FastHistogram` observations).
* **prometheus-client equivalent**: the same updates with prometheus-client's
  ``Counter.inc`` and two ``Histogram.observe`` (locks, per-value objects), for
  comparison — what :mod:`server.observability.metrics` avoids on the hot path.
* **scorer per note** (the baseline, measured in the same run): feeding a
  fresh :class:`rooms.scoring.Scorer` a humanised performance of all parts of
  Bach's BWV 66.6 and the Maple Leaf Rag (:func:`loadtests.bench.scoring.bench_ours`),
  µs per note-on.

Each loop is timed with the garbage collector off; the median of N samples
(after one warm-up) is reported, and the ratio to the scorer's cost.
"""

from __future__ import annotations

import argparse
import statistics
import time

from prometheus_client import CollectorRegistry, Counter, Histogram

from loadtests.bench.scoring import bench_ours, cases, time_ns
from server.observability.metrics import FAST_BUCKETS, Metrics

N = 200_000


def bench_metrics(repeats: int) -> float:
    """Median µs per one-note message for the metrics hook as wired in the manager."""
    metrics = Metrics(process=False)
    perf = time.perf_counter

    def run() -> None:
        for _ in range(N):
            received = perf()
            scoring = perf()
            scored = perf()
            metrics.note_relayed(1, received, scoring, scored, perf())

    return _median(run, repeats)


def bench_prometheus(repeats: int) -> float:
    registry = CollectorRegistry()
    notes = Counter("n", "n", registry=registry)
    relay = Histogram("r_seconds", "r", buckets=FAST_BUCKETS, registry=registry)
    scoring_h = Histogram("s_seconds", "s", buckets=FAST_BUCKETS, registry=registry)
    perf = time.perf_counter

    def run() -> None:
        for _ in range(N):
            received = perf()
            scoring = perf()
            scored = perf()
            notes.inc(1)
            relay.observe(perf() - received)
            scoring_h.observe(scored - scoring)

    return _median(run, repeats)


def _median(run, repeats: int) -> float:
    samples = []
    for attempt in range(repeats + 1):
        elapsed = time_ns(run)
        if attempt:
            samples.append(elapsed / 1000 / N)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ours = bench_metrics(args.repeats)
    prom = bench_prometheus(args.repeats)
    per_case = [bench_ours(case, args.repeats) for case in cases()]
    notes = [case.note_ons for case in cases()]
    # The scorer's mean cost per note over every part, weighted by its notes.
    scorer = sum(m * n for (m, _), n in zip(per_case, notes, strict=True)) / sum(notes)
    rows = [
        ("scorer per note (baseline)", scorer),
        ("metrics per note (server.observability.metrics)", ours),
        ("prometheus-client Counter + 2 Histograms", prom),
    ]
    print(f"{'what':<44} {'µs/note':>8} {'÷ scorer':>9}")
    for label, us in rows:
        print(f"{label:<44} {us:>8.3f} {us / scorer:>9.3f}")


if __name__ == "__main__":
    main()
