"""rooms.practice through rooms.room: slow down, loops and the tempo ladder (issue 16).

No server and no clock: every call is given ``now_ms``; a pass is played by
feeding its notes at their grid times, and ended with ``Room.advance_pass``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rooms.errors import RoomError
from rooms.notes import NoteEvent
from rooms.practice import Ladder, Loop, Practice, bar_starts, scaled_scoring, section
from rooms.room import Room
from rooms.scoring import ScoringSettings
from rooms.tempo import TimeSignature
from tests.unit.test_room import NOW, chorale, join, make_room

TPB = 10080  # BWV 66.6: 10080 ticks per quarter, 4/4, 96 BPM, 9 bars


def play_pass(room: Room, user: str, *, skip_every: int = 0) -> None:
    """Play the current pass's notes of ``user``'s part on the grid (``skip_every``:
    leave out every n-th note)."""
    run = room.loop_run
    assert run is not None
    p = run.current
    scorer = p.scorers[user]
    for i, (t, pitch) in enumerate(zip(scorer.expected_ms, scorer.pitches, strict=True)):
        if skip_every and i % skip_every == 0:
            continue
        at = p.start_at_ms + t
        room.accept(user, [NoteEvent("on", pitch, 80, at)], at)


def run_loop(
    room: Room, user: str = "host", skip: dict[int, int] | None = None
) -> tuple[list[dict], dict]:
    """Play every pass (``skip``: pass index → skip_every); the final passes and result."""
    skip = skip or {}
    while True:
        play_pass(room, user, skip_every=skip.get(room.loop_run.current.index, 0))
        if room.advance_pass(room.loop_run.current.end_at_ms) is None:
            break
    end = room.loop_run.end_ms()
    finished = room.finish("piece_ended", int(end) + 1, "s1")
    (outcome,) = finished.players
    return outcome.result["passes"], outcome.result


def test_bars_come_from_the_time_signatures():
    piece = chorale()
    assert bar_starts(piece) == [k * 4 * TPB for k in range(10)]  # 9 bars of 4/4
    # 4/4 for two bars, then 3/4: bars of 3 quarters from tick 8 * TPB.
    waltz = replace(piece, time_signatures=(TimeSignature(0, 4, 4), TimeSignature(8 * TPB, 3, 4)))
    starts = bar_starts(waltz)
    assert starts[:5] == [0, 4 * TPB, 8 * TPB, 11 * TPB, 14 * TPB]
    assert starts[-1] >= 36 * TPB and starts[-2] < 36 * TPB
    s = section(piece, Loop(2, 3))
    assert (s.start_tick, s.end_tick) == (4 * TPB, 12 * TPB)
    assert s.duration_s == pytest.approx(8 * 0.625)


def test_judgement_windows_scale_with_the_tempo():
    base = ScoringSettings()
    half = scaled_scoring(base, 50)
    assert (half.perfect_ms, half.great_ms, half.good_ms) == (50.0, 100.0, 200.0)
    assert half.match_window_ms == 700.0 and half.onset_tolerance_ms == 100.0
    fast = scaled_scoring(base, 150)
    assert fast.perfect_ms == pytest.approx(25 / 1.5)
    assert scaled_scoring(base, 100) is base


def test_a_slowed_room_plays_its_tempo_and_judges_with_wider_windows():
    room = make_room("ensemble", practice=Practice(tempo_pct=50))
    assert room.tempo_bpm == 48.0 and room.time_scale == 2.0
    assert room.state(NOW)["tempo_pct"] == 50
    join(room, "host", "Soprano")
    start = room.start("host", NOW)
    scorer = room.scorer_of("host")
    assert scorer.settings.perfect_ms == 50.0
    first = scorer.expected_ms[0]
    room.accept("host", [NoteEvent("on", scorer.pitches[0], 80, start + first + 40)], start)
    result = room.live_result("host")
    assert result["judgements"]["perfect"] == 1  # 40 ms late: "great" at 100 %
    assert result["tempo_pct"] == 50 and result["tempo_bpm"] == 48.0
    # The grid is twice as long: the room ends twice as late.
    assert room.grid_end_ms() == pytest.approx(2 * chorale().duration_s * 1000)


def test_a_loop_plays_its_bars_the_given_number_of_times():
    room = make_room("ensemble", count_in_beats=2, practice=Practice(loop=Loop(2, 3, 3)))
    join(room, "host", "Soprano")
    start = room.start("host", NOW)
    run = room.loop_run
    assert run.current.end_at_ms == pytest.approx(start + 8 * 625)
    soprano = [n for n in chorale().part("Soprano").notes if 4 * TPB <= n.onset_tick < 12 * TPB]
    assert len(run.current.scorers["host"].notes) == len(soprano)
    passes, result = run_loop(room)
    assert [p["pass"] for p in passes] == [1, 2, 3]
    assert [p["tempo_pct"] for p in passes] == [100, 100, 100]
    # Two count-in beats at 96 BPM between passes.
    for before, after in zip(passes, passes[1:], strict=False):
        assert after["start_at"] - before["end_at"] == pytest.approx(2 * 625, abs=1)
    assert all(p["accuracy"] == 1.0 for p in passes)
    assert result["notes_expected"] == 3 * len(soprano) == result["notes_matched"]
    assert result["accuracy"] == 1.0 and result["complete"] is True
    assert result["loop"] == {"from_bar": 2, "to_bar": 3}
    assert run.clicks(run.passes[1]) == [passes[1]["start_at"] - 1250, passes[1]["start_at"] - 625]


def test_each_pass_is_scored_on_its_own():
    room = make_room("ensemble", practice=Practice(loop=Loop(1, 2, 2)))
    join(room, "host", "Soprano")
    room.start("host", NOW)
    passes, result = run_loop(room, skip={1: 2})  # every other note left out in pass 1
    first, second = (p["result"] for p in passes)
    assert first["missed"] > 0 and first["accuracy"] < 0.6
    assert second["missed"] == 0 and second["accuracy"] == 1.0
    assert result["notes_matched"] == first["notes_matched"] + second["notes_matched"]
    assert result["missed"] == first["missed"]


def test_the_ladder_climbs_by_its_step_to_the_target():
    ladder = Ladder(start_pct=70, step_pct=5, target_pct=100, min_accuracy=0.9)
    room = make_room(
        "ensemble", count_in_beats=1, practice=Practice(loop=Loop(1, 1, 50), ladder=ladder)
    )
    join(room, "host", "Soprano")
    assert room.tempo_bpm == pytest.approx(96 * 0.7)
    room.start("host", NOW)
    passes, result = run_loop(room)
    assert [p["tempo_pct"] for p in passes] == [70, 75, 80, 85, 90, 95, 100]
    assert [p["tempo_bpm"] for p in passes] == pytest.approx(
        [96 * k / 100 for k in range(70, 101, 5)]
    )
    # Each pass lasts one bar at its own tempo.
    for p in passes:
        assert p["end_at"] - p["start_at"] == pytest.approx(4 * 60000 / p["tempo_bpm"], abs=1)
    assert result["ladder"] == ladder.to_dict() and result["tempo_pct"] == 100


def test_a_pass_below_the_accuracy_repeats_at_the_same_tempo():
    ladder = Ladder(start_pct=80, step_pct=10, target_pct=100, min_accuracy=0.9)
    room = make_room("ensemble", practice=Practice(loop=Loop(1, 2, 50), ladder=ladder))
    join(room, "host", "Soprano")
    room.start("host", NOW)
    passes, _ = run_loop(room, skip={2: 3, 3: 2})  # passes 2 and 3 miss a third, a half
    assert [p["tempo_pct"] for p in passes] == [80, 90, 90, 90, 100]
    assert [p["accuracy"] >= 0.9 for p in passes] == [True, False, False, True, True]


def test_repeats_cap_a_ladder_that_is_never_climbed():
    ladder = Ladder(start_pct=50, step_pct=10, target_pct=100, min_accuracy=0.9)
    room = make_room("ensemble", practice=Practice(loop=Loop(1, 1, 3), ladder=ladder))
    join(room, "host", "Soprano")
    room.start("host", NOW)
    passes, result = run_loop(room, skip={1: 2, 2: 2, 3: 2})
    assert [p["tempo_pct"] for p in passes] == [50, 50, 50]
    assert result["complete"] is True


def test_notes_of_a_pass_go_to_that_pass_across_the_count_in():
    room = make_room("ensemble", count_in_beats=4, practice=Practice(loop=Loop(1, 1, 2)))
    join(room, "host", "Soprano")
    room.start("host", NOW)
    run = room.loop_run
    end = run.current.end_at_ms
    second = room.advance_pass(end)
    assert second.start_at_ms == pytest.approx(end + 4 * 625)
    assert run.pass_for(end + 100) is run.passes[0]  # just after the end: the old pass
    assert run.pass_for(second.start_at_ms - 100) is second  # an early first note
    pitch = second.scorers["host"].pitches[0]
    room.accept("host", [NoteEvent("on", pitch, 80, second.start_at_ms - 20)], end)
    assert second.scorers["host"].notes_matched == 1
    assert run.passes[0].results["host"]["notes_played"] == 0  # frozen at its end


def test_the_snapshot_carries_the_practice_and_the_passes():
    ladder = Ladder(start_pct=60, step_pct=20, target_pct=100, min_accuracy=0.5)
    room = make_room("ensemble", practice=Practice(loop=Loop(1, 1, 5), ladder=ladder))
    join(room, "host", "Soprano")
    room.start("host", NOW)
    room.advance_pass(room.loop_run.current.end_at_ms)
    replica = Room.from_snapshot(room.snapshot(), chorale())
    assert replica.tempo_bpm == room.tempo_bpm and replica.base_bpm == 96.0
    assert replica.practice == room.practice
    assert replica.loop_run.schedule() == room.loop_run.schedule()


BAD = [
    (dict(practice=Practice(tempo_pct=20)), "invalid_tempo"),
    (dict(practice=Practice(tempo_pct=151)), "invalid_tempo"),
    (dict(practice=Practice(tempo_pct=25), tempo_bpm=40), "invalid_tempo"),  # 10 BPM
    (dict(practice=Practice(loop=Loop(0, 2))), "invalid_bars"),
    (dict(practice=Practice(loop=Loop(3, 2))), "invalid_bars"),
    (dict(practice=Practice(loop=Loop(9, 10))), "invalid_bars"),
    (dict(practice=Practice(loop=Loop(1, 2, 0))), "invalid_repeats"),
    (dict(practice=Practice(loop=Loop(1, 2, 101))), "invalid_repeats"),
]


@pytest.mark.parametrize("kwargs, code", BAD)
def test_bad_practice_settings_are_refused(kwargs, code):
    with pytest.raises(RoomError) as info:
        make_room("ensemble", **kwargs)
    assert info.value.code == code


@pytest.mark.parametrize(
    "args",
    [(70, 5, 60, 0.9), (20, 5, 100, 0.9), (70, 0, 100, 0.9), (70, 5, 160, 0.9), (70, 5, 100, 0)],
)
def test_a_bad_ladder_is_refused(args):
    with pytest.raises(RoomError) as info:
        Ladder(*args)
    assert info.value.code == "invalid_ladder"


def test_no_loop_in_a_free_jam():
    with pytest.raises(RoomError) as info:
        make_room("free", practice=Practice(loop=Loop(1, 2)))
    assert info.value.code == "practice_in_free_jam"


@pytest.mark.parametrize(
    "setup, user, practice, code",
    [
        (lambda r: None, "other", Practice(tempo_pct=50), "not_host"),
        (lambda r: r.start("host", NOW), "host", Practice(tempo_pct=50), "already_started"),
        (lambda r: None, "host", Practice(loop=Loop(1, 12)), "invalid_bars"),
        (lambda r: None, "host", Practice(tempo_pct=10), "invalid_tempo"),
        (
            lambda r: r.add_partner("host", "Bass", follow=False, now_ms=NOW, take={"notes": 4}),
            "host",
            Practice(loop=Loop(1, 2)),
            "practice_conflict",
        ),
    ],
)
def test_refused_practice_changes_change_nothing(setup, user, practice, code):
    room = make_room("ensemble", practice=Practice(tempo_pct=80))
    join(room, "host", "Soprano")
    setup(room)
    before = (room.state(NOW), room.snapshot(), room.tempo_bpm, room.time_scale)
    with pytest.raises(RoomError) as info:
        room.set_practice(user, practice)
    assert info.value.code == code
    assert (room.state(NOW), room.snapshot(), room.tempo_bpm, room.time_scale) == before


def test_the_host_sets_practice_before_the_start():
    room = make_room("ensemble")
    join(room, "host", "Soprano")
    room.set_practice("host", Practice(tempo_pct=75, loop=Loop(2, 2, 2)))
    assert room.tempo_bpm == 72.0
    assert room.state(NOW)["practice"]["loop"] == {"from_bar": 2, "to_bar": 2, "repeats": 2}
    seat = room.add_partner("host", "Bass", follow=True, now_ms=NOW)
    room.start("host", NOW)
    assert seat.user_id in room.loop_run.current.scorers  # scored per pass, reported apart


def test_live_results_of_a_loop_leave_out_the_per_note_detail():
    room = make_room("ensemble", practice=Practice(loop=Loop(1, 1, 3)))
    join(room, "host", "Soprano")
    room.start("host", NOW)
    play_pass(room, "host")
    room.advance_pass(room.loop_run.current.end_at_ms)
    live = room.live_result("host")
    assert [p["pass"] for p in live["passes"]] == [1, 2]
    assert all("notes" not in p["result"] for p in live["passes"])
    assert "notes" in room.loop_run.passes[0].results["host"]  # the final result keeps it


def test_a_slowed_partner_plays_at_the_slowed_tempo():
    room = make_room("ensemble", practice=Practice(tempo_pct=50))
    join(room, "host", "Soprano")
    room.add_partner("host", "Bass", follow=False, now_ms=NOW)
    room.start("host", NOW)
    # server/realtime/partners.py builds its follower from these: twice as slow.
    assert (room.time_scale, room.tempo_bpm) == (2.0, 48.0)
    partner = room.scorer_of(room.partner.user_id)
    assert partner.settings.perfect_ms == 50.0


def test_a_hostile_time_signature_does_not_make_millions_of_bars():
    piece = replace(chorale(), time_signatures=(TimeSignature(0, 1, 2**200),))
    starts = bar_starts(piece)
    assert len(starts) - 1 == 36 * 16  # 64th-note bars at most
