"""rooms.takes: a saved player's result replayed as a partner (issue 16)."""

from __future__ import annotations

import pytest

from rooms.errors import RoomError
from rooms.following import Follower
from rooms.scoring import Scorer
from rooms.takes import TakeFollower, take_from_result
from tests.unit.test_room import chorale


def saved_result(skip: int = 3) -> dict:
    """A final result of the Soprano at 96 BPM, every ``skip``-th note left out, 30 ms late."""
    notes = chorale().part("Soprano").notes
    scorer = Scorer(notes, tempo_bpm=96.0)
    for i, (t, pitch) in enumerate(zip(scorer.expected_ms, scorer.pitches, strict=True)):
        if i % skip:
            scorer.note_on(pitch, t + 30)
    return {**scorer.result(final=True), "part": "Soprano"}


def test_a_take_is_the_matched_notes_at_their_played_times():
    result = saved_result()
    notes = chorale().part("Soprano").notes
    take = take_from_result("s1", "u1", result, notes, piece_bpm=96.0)
    played = [n for n in result["notes"] if n["played_ms"] is not None]
    assert [e[0] for e in take.events] == [n["played_ms"] for n in played]
    assert take.part == "Soprano" and take.to_dict()["notes"] == len(played)


def test_it_replays_at_the_room_tempo():
    take = take_from_result(
        "s1", "u1", saved_result(), chorale().part("Soprano").notes, piece_bpm=96.0
    )
    follower = TakeFollower(take, tempo_bpm=48.0)  # half the take's tempo: twice as long
    cues = []
    while (wake := follower.next_wake()) is not None:
        cues += follower.due(wake)
    ons = [c for c in cues if c.type == "on"]
    assert [c.t_ms for c in ons] == pytest.approx([e[0] * 2 for e in take.events])
    assert len([c for c in cues if c.type == "off"]) == len(ons)
    stamps = [c.t_ms for c in cues]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(
    "result",
    [
        {"notes_played": 3, "part": None},  # a free jam
        {**saved_result(), "notes": saved_result()["notes"][:-1]},  # another part
        {**saved_result(skip=1)},  # nothing played
    ],
)
def test_no_take_without_recorded_notes(result):
    with pytest.raises(RoomError) as info:
        take_from_result("s1", "u1", result, chorale().part("Soprano").notes, piece_bpm=96.0)
    assert info.value.code == "no_take"


def test_as_score_notes_the_follower_plays_the_take_s_timing():
    take = take_from_result(
        "s1", "u1", saved_result(), chorale().part("Soprano").notes, piece_bpm=96.0
    )
    # At 120 BPM (time scale 96/120): nobody to follow, so it plays the take's timing.
    follower = Follower(take.as_notes(96.0), time_scale=96 / 120, tempo_bpm=120.0, follow=False)
    cues = []
    while (wake := follower.next_wake()) is not None:
        cues += follower.due(wake)
    ons = [c.t_ms for c in cues if c.type == "on"]
    assert ons == pytest.approx([e[0] * 96 / 120 for e in take.events])
