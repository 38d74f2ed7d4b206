"""rooms.wait_mode: the room waits at each chord until the player plays it (issue 16)."""

from __future__ import annotations

import pytest

from rooms.errors import RoomError
from rooms.notes import NoteEvent
from rooms.piece import Part
from rooms.practice import Loop, Practice
from rooms.wait_mode import WaitFollower, WaitScorer
from tests.unit.test_room import NOW, chorale, join, make_room


def soprano_scorer() -> WaitScorer:
    return WaitScorer(chorale().part("Soprano").notes, time_scale=1.0, tempo_bpm=96.0)


def test_wrong_notes_before_the_right_one_wait_and_count_as_wrong():
    scorer = soprano_scorer()
    chords = scorer.chords
    assert all(len(c.pitches) == 1 for c in chords)  # a melody: chords of one note
    t = 0.0
    for k, chord in enumerate(chords):
        assert scorer.index == k
        due = scorer.due_ms
        (pitch,) = chord.pitches
        # Two wrong notes, then the right one 300 ms after the room reached the note.
        assert scorer.note_on(pitch + 1, due + 100) == "wrong_pitch"
        assert scorer.note_on(pitch - 2, due + 200) == "wrong_pitch"
        assert scorer.index == k  # still waiting
        t = due + 300
        assert scorer.note_on(pitch, t) == "matched"
    assert scorer.done
    assert scorer.note_on(60, t + 10) == "extra"
    result = scorer.result(final=True)
    n = len(chords)
    assert result["mode"] == "wait"
    assert (result["notes_matched"], result["wrong_pitch"], result["extra"]) == (n, 2 * n, 1)
    assert result["missed"] == 0 and result["accuracy"] == 1.0
    assert result["pitch_accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    assert result["waits_ms"] == [300.0] * n
    assert result["wait_total_ms"] == 300.0 * n and result["wait_max_ms"] == 300.0
    assert "judgements" not in result and "onset_mean_ms" not in result  # timing not judged


def test_the_room_goes_on_at_the_tempo_from_where_the_chord_was_played():
    scorer = soprano_scorer()
    first, second = scorer.chords[:2]
    scorer.note_on(first.pitches[0], 5000.0)  # very late: the room waited 5 s
    assert scorer.waits_ms == [5000.0 - first.grid_ms]
    assert scorer.due_ms == 5000.0 + (second.grid_ms - first.grid_ms)
    scorer.note_on(second.pitches[0], scorer.due_ms - 50)  # early: no wait
    assert scorer.waits_ms[1] == 0.0


def full_score_part() -> Part:
    notes = sorted(
        (n for p in chorale().parts for n in p.notes), key=lambda n: (n.onset_tick, n.pitch)
    )
    return Part("All", tuple(notes))


def test_a_chord_needs_every_pitch_in_any_order():
    scorer = WaitScorer(full_score_part().notes, time_scale=1.0, tempo_bpm=96.0)
    chord = scorer.chords[0]
    assert len(chord.pitches) == 4
    pitches = list(reversed(chord.pitches))
    for p in pitches[:-1]:
        assert scorer.note_on(p, 100.0) == "matched"
    assert scorer.note_on(pitches[0], 110.0) == "wrong_pitch"  # already played
    assert scorer.index == 0 and scorer.position()["pitches"] == [pitches[-1]]
    scorer.note_on(pitches[-1], 120.0)
    assert scorer.index == 1 and scorer.position()["waited_ms"] == 120.0


def wait_room(**kwargs):
    room = make_room("ensemble", practice=Practice(wait=True), **kwargs)
    join(room, "host", "Soprano")
    return room


def test_a_wait_room_ends_only_when_the_last_note_is_played():
    room = wait_room()
    start = room.start("host", NOW)
    assert room.scorer_of("host") is None and room.finish_due_ms() is None
    scorer = room.waiting["host"]
    t = start
    for chord in scorer.chords:
        t = start + scorer.due_ms + 1000  # a second late at every note
        room.accept("host", [NoteEvent("on", chord.pitches[0], 80, t)], t)
        if not scorer.done:
            assert room.finish_due_ms() is None
    assert room.finish_due_ms() == pytest.approx(
        t + scorer.chords[-1].length_ms + room.settings.grace_ms
    )
    finished = room.finish("piece_ended", int(t) + 10_000, "s1")
    (outcome,) = finished.players
    assert outcome.result["mode"] == "wait" and outcome.complete
    assert outcome.result["wait_mean_ms"] == 1000.0
    assert finished.asynchrony_ms is None


def test_wait_mode_is_for_one_player():
    room = wait_room()
    join(room, "other", "Alto")
    before = (room.state(NOW), room.snapshot())
    with pytest.raises(RoomError) as info:
        room.start("host", NOW)
    assert info.value.code == "wait_mode_solo"
    assert (room.state(NOW), room.snapshot()) == before


def test_wait_mode_is_not_a_loop():
    with pytest.raises(RoomError) as info:
        make_room("ensemble", practice=Practice(wait=True, loop=Loop(1, 2)))
    assert info.value.code == "practice_conflict"


def run_until_idle(follower: WaitFollower, idle_after: float) -> list:
    """Drive the follower as server/realtime/partners.py does, until it waits for the human."""
    cues = []
    while (wake := follower.next_wake()) is not None and wake < idle_after:
        cues += follower.due(wake)
    return cues


def test_the_partner_waits_too():
    room = wait_room()
    room.add_partner("host", "Bass", follow=True, now_ms=NOW)
    start = room.start("host", NOW)
    human = room.waiting["host"]
    assert list(room.waiting) == ["host"]  # the partner is not scored
    bass = chorale().part("Bass").notes
    grid = {n.onset_tick: n.onset_s * 1000 for n in bass}
    follower = WaitFollower(bass, human=human, time_scale=room.time_scale)
    assert run_until_idle(follower, 1e6) == []  # both start together: it waits for the human
    heard = []
    for k, chord in enumerate(human.chords):
        # The human is slow and plays a wrong note first: the partner does not go on.
        t = human.due_ms + 700
        room.accept("host", [NoteEvent("on", chord.pitches[0] + 1, 80, start + t - 100)], start + t)
        assert not [c for c in run_until_idle(follower, 1e6) if c.type == "on"]
        room.accept("host", [NoteEvent("on", chord.pitches[0], 80, start + t)], start + t)
        ons = [c for c in run_until_idle(follower, 1e6) if c.type == "on"]
        nxt = human.chords[k + 1].tick if k + 1 < len(human.chords) else None
        for c in ons:  # up to the human's next chord, at the tempo from the human's note
            assert chord.tick <= c.tick and (nxt is None or c.tick < nxt)
            assert c.t_ms == pytest.approx(t + grid[c.tick] - chord.grid_ms)
        heard += ons
    assert [c.tick for c in heard] == sorted(n.onset_tick for n in bass)
    assert follower.stats()["played"] == len(set(grid))
