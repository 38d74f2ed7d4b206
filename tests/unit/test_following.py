"""The computer partner's follower (rooms/following.py), simulated on Bach's BWV 66.6.

A human plays the Soprano with a tempo plan the follower does not know; the
human's notes reach the server ``latency_ms`` after they are played and go
through the human's real :class:`rooms.scoring.Scorer`, whose matches the
follower hears. The partner plays the Bass; its notes are scored by a Scorer
of their own, and asynchrony is the room's (:func:`rooms.scoring.asynchrony`).
Time is simulated: no clock, no sleeping.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rooms.following import Cue, Follower
from rooms.performance import humanize, issue_plans, tempo_plan
from rooms.piece import load_midi
from rooms.scoring import Scorer, asynchrony

PIECE = load_midi((Path(__file__).parents[2] / "server/music/bwv66.6.mid").read_bytes())
TEMPO = 120.0
BEAT_MS = 60000.0 / TEMPO
SCALE = PIECE.bpm / TEMPO
BEATS = max(n.offset_beat for n in PIECE.part("Soprano").notes)


def human_plan(ratio_at, *, jitter_ms=10.0, seed=1, skip=None):
    """The Soprano's note-ons ``[(t_ms, pitch)]``; ``skip=(from_beat, to_beat)`` jumps
    forward: notes in between are not played and the rest comes that much earlier."""
    warp = tempo_plan(ratio_at, beat_ms=BEAT_MS, beats=BEATS)
    notes = PIECE.part("Soprano").notes
    if skip is not None:
        lo, hi = skip
        notes = [n for n in notes if not lo <= n.onset_beat < hi]
    plan = humanize(notes, time_scale=SCALE, jitter_ms=jitter_ms, seed=seed, warp=warp)
    shift = 0.0 if skip is None else (skip[1] - skip[0]) * BEAT_MS
    ons = [(e.t_ms, e.pitch) for e in plan if e.type == "on"]
    if skip is not None:
        cut = warp(skip[0] * BEAT_MS)
        ons = [(t - shift if t >= cut else t, p) for t, p in ons]
    return sorted(ons)


def simulate(ons, *, follow=True, latency_ms=1.0, rtt_ms=2.0):
    """Run the follower against ``ons`` → (asynchrony, {tick: |difference|}, cues, follower)."""
    human = Scorer(PIECE.part("Soprano").notes, time_scale=SCALE, tempo_bpm=TEMPO)
    partner = Scorer(PIECE.part("Bass").notes, time_scale=SCALE, tempo_bpm=TEMPO)
    follower = Follower(
        PIECE.part("Bass").notes,
        time_scale=SCALE,
        tempo_bpm=TEMPO,
        human_ticks={n.onset_tick for n in PIECE.part("Soprano").notes},
        follow=follow,
    )
    follower.set_latency(rtt_ms)
    human.on_match = follower.heard
    arrivals = sorted((t + latency_ms, t, p) for t, p in ons)
    cues: list[Cue] = []
    now = -1000.0
    k = 0
    while True:
        wake = follower.next_wake()
        arrival = arrivals[k][0] if k < len(arrivals) else None
        if wake is None and arrival is None:
            break
        if arrival is not None and (wake is None or arrival <= wake):
            now = max(now, arrival)
            human.note_on(arrivals[k][2], arrivals[k][1])
            k += 1
        else:
            now = max(now, wake)
        for cue in follower.due(now):
            cues.append(cue)
            if cue.type == "on":
                partner.note_on(cue.pitch, cue.t_ms)
    h, p = human.matched_onsets_by_tick(), partner.matched_onsets_by_tick()
    diffs = {t: abs(sum(h[t]) / len(h[t]) - sum(p[t]) / len(p[t])) for t in h.keys() & p.keys()}
    return asynchrony({"human": h, "partner": p}), diffs, cues, follower


def p95(diffs):
    values = sorted(diffs.values())
    return values[int(0.95 * (len(values) - 1))]


PLANS = issue_plans(BEATS)


@pytest.mark.parametrize(
    "name, ratio_at",
    [("steady", lambda _: 1.0), ("slower", lambda _: 0.85), ("faster", lambda _: 1.12)]
    + sorted(PLANS.items()),
)
def test_follows_where_fixed_tempo_drifts(name, ratio_at):
    ons = human_plan(ratio_at)
    followed, diffs, cues, follower = simulate(ons, follow=True)
    fixed, fixed_diffs, _, _ = simulate(ons, follow=False)
    assert followed["pairs"] >= 30  # nearly every shared onset is played and matched
    assert followed["asynchrony_ms"] <= 40 and p95(diffs) <= 80
    if name != "steady":
        assert fixed["asynchrony_ms"] > 3 * followed["asynchrony_ms"]
    assert follower.out_of_order == 0


def test_over_a_slow_network_it_predicts_instead_of_waiting():
    # 80 ms round trip: waiting for the human's note would make every shared onset 80 ms
    # late; predicting keeps it near the human's own jitter.
    ons = human_plan(PLANS["slower_bars"])
    followed, diffs, _, follower = simulate(ons, latency_ms=40.0, rtt_ms=80.0)
    assert not follower.holding
    assert followed["asynchrony_ms"] <= 40 and p95(diffs) <= 80
    fixed, _, _, _ = simulate(ons, follow=False, latency_ms=40.0, rtt_ms=80.0)
    assert fixed["asynchrony_ms"] > 3 * followed["asynchrony_ms"]


def test_a_jump_forward_is_caught_up_by_skipping():
    # The human leaves out beats 12-16 and goes on a bar early.
    ons = human_plan(lambda _: 1.0, skip=(12, 16))
    followed, diffs, cues, follower = simulate(ons)
    stats = follower.stats()
    assert stats["refits"] >= 1  # the fit restarted from the jump
    assert stats["skipped"] >= 1  # the bar the human left out is not played late
    assert stats["played"] + stats["skipped"] == stats["onsets"]
    assert followed["asynchrony_ms"] <= 40
    fixed, _, _, _ = simulate(ons, follow=False)
    assert fixed["asynchrony_ms"] > 10 * followed["asynchrony_ms"]


def test_a_fermata_is_waited_for_at_most_half_a_beat():
    # The human holds beat 8 for two extra beats (a fermata the MIDI file does not mark).
    held = 8 * BEAT_MS + 50
    ons = [(t + (2 * BEAT_MS if t > held else 0.0), p) for t, p in human_plan(lambda _: 1.0)]
    _, diffs, cues, follower = simulate(ons)
    assert follower.holds >= 1
    first = min(c.t_ms for c in cues if c.type == "on" and c.t_ms > held)
    assert 9 * BEAT_MS <= first <= 9.5 * BEAT_MS + 20  # waited, but half a beat at most
    tick_beats = PIECE.ticks_per_beat
    after = [d for tick, d in diffs.items() if tick >= 14 * tick_beats]
    assert (
        after and sum(after) / len(after) <= 40
    )  # together again once the scorer has found the human again


@pytest.mark.parametrize("seed", range(20))
def test_never_out_of_order(seed):
    rng = random.Random(seed)
    ons = human_plan(
        lambda beat: 0.7 + 0.6 * abs(((beat * (seed + 3)) % 7) / 7 - 0.5),
        jitter_ms=rng.uniform(0, 120),
        seed=seed,
        skip=rng.choice([None, (8, 12), (16, 20), (4, 6)]),
    )
    if seed % 3 == 0:  # a jump back: a passage played again
        ons = ons + [(t + 9000.0, p) for t, p in ons if 4 * BEAT_MS < t < 10 * BEAT_MS]
    rng.shuffle(ons)  # arrival order is not playing order
    _, _, cues, follower = simulate(
        ons, follow=seed % 4 != 1, latency_ms=rng.uniform(0, 60), rtt_ms=rng.uniform(0, 150)
    )
    stamps = [c.t_ms for c in cues]
    assert stamps == sorted(stamps)  # sent in time order, never back
    ticks = [c.tick for c in cues if c.type == "on"]
    assert ticks == sorted(ticks)  # onsets in score order
    onsets = sorted({c.tick for c in cues if c.type == "on"})
    assert len([c for c in cues if c.type == "on"]) == sum(
        1 for n in PIECE.part("Bass").notes if n.onset_tick in set(onsets)
    )  # each onset at most once
    stats = follower.stats()
    assert stats["played"] + stats["skipped"] == stats["onsets"]
    assert stats["out_of_order"] == 0
    sounding: dict[int, int] = {}
    for cue in cues:  # every note-on released, never released twice
        sounding[cue.pitch] = sounding.get(cue.pitch, 0) + (1 if cue.type == "on" else -1)
        assert 0 <= sounding[cue.pitch] <= 1
    assert not any(sounding.values())


def test_release_stops_every_sounding_note():
    follower = Follower(PIECE.part("Bass").notes, time_scale=SCALE, tempo_bpm=TEMPO)
    played = follower.due(0.0)
    assert [c.type for c in played] == ["on"]
    offs = follower.release(100.0)
    assert [(c.type, c.pitch) for c in offs] == [("off", played[0].pitch)]
    assert follower.done and follower.next_wake() is None
