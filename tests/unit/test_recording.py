"""rooms.recording: note events written as MIDI and read back with load_midi."""

from __future__ import annotations

import io

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.piece import NoNotesError, load_midi
from rooms.recording import RecordedEvent, Recording
from tests.music import chorale_midi

START = 1_700_000_000_000.0  # server-clock epoch ms when the room started


def event(seq, user, kind, pitch, t_ms, velocity=None, part=None) -> RecordedEvent:
    if velocity is None:
        velocity = 80 if kind == "on" else 0
    return RecordedEvent(seq, user, part, kind, pitch, velocity, t_ms)


def record(*events: RecordedEvent) -> Recording:
    recording = Recording()
    for e in events:
        recording.add(e)
    return recording


def test_recording_keeps_arrival_order() -> None:
    a = event(1, "u1", "on", 60, START + 10)
    b = event(2, "u1", "off", 60, START + 5)
    recording = record(a, b)
    assert len(recording) == 2
    assert recording.events == (a, b)
    assert len(Recording()) == 0 and Recording().events == ()


def test_recorded_event_validates() -> None:
    with pytest.raises(ValueError, match="type"):
        event(1, "u", "press", 60, START)
    with pytest.raises(ValueError, match="pitch"):
        event(1, "u", "on", 128, START)
    with pytest.raises(ValueError, match="velocity"):
        event(1, "u", "on", 60, START, velocity=0)
    event(1, "u", "off", 60, START, velocity=0)  # release velocity 0 is fine


def test_one_player_round_trip() -> None:
    # 120 BPM, 480 ticks per beat: 1 ms = 0.96 tick.
    recording = record(
        event(1, "ana", "on", 60, START + 0, velocity=100),
        event(2, "ana", "on", 64, START + 250),
        event(3, "ana", "off", 60, START + 500),
        event(4, "ana", "off", 64, START + 750),
        event(5, "ana", "on", 67, START + 1001),
        event(6, "ana", "off", 67, START + 2000),
    )
    data = recording.to_midi(start_at_ms=START, tempo_bpm=120, track_names={"ana": "Ana (violin)"})
    piece = load_midi(data)
    assert piece.midi_type == 1
    assert piece.title == "Tutti session"
    assert piece.bpm == pytest.approx(120)
    assert piece.part_names == ["Ana (violin)"]
    (part,) = piece.parts
    assert [n.pitch for n in part.notes] == [60, 64, 67]
    assert [n.velocity for n in part.notes] == [100, 80, 80]
    expected_ticks = [0, 240, 961]  # round(ms * 0.96)
    assert [n.onset_tick for n in part.notes] == expected_ticks
    assert [n.onset_s for n in part.notes] == pytest.approx([0.0, 0.25, 1.001], abs=1 / 960)
    assert [n.offset_s for n in part.notes] == pytest.approx([0.5, 0.75, 2.0], abs=1 / 960)
    assert part.channel == 0


def test_events_before_start_clamp_to_zero() -> None:
    recording = record(
        event(1, "ana", "on", 60, START - 900),  # pressed before the count-in ended
        event(2, "ana", "off", 60, START - 100),  # and released before start: zero length
        event(3, "ana", "on", 62, START - 50),
        event(4, "ana", "off", 62, START + 500),
    )
    piece = load_midi(recording.to_midi(start_at_ms=START, tempo_bpm=90, track_names={}))
    notes = piece.parts[0].notes
    assert [(n.pitch, n.onset_tick) for n in notes] == [(60, 0), (62, 0)]
    assert notes[0].offset_s == 0.0
    assert notes[1].offset_s == pytest.approx(0.5, abs=1 / 720)
    assert piece.part_names == ["ana"]  # no track name given: the user id


def test_unclosed_note_ends_at_last_event() -> None:
    recording = record(
        event(1, "ana", "on", 60, START + 0),
        event(2, "ana", "on", 72, START + 500),
        event(3, "ana", "off", 72, START + 1500),
        event(4, "ana", "off", 61, START + 1600),  # stray off (61 never pressed): dropped
    )
    data = recording.to_midi(start_at_ms=START, tempo_bpm=60, track_names={})
    track = mido.MidiFile(file=io.BytesIO(data)).tracks[1]
    types = [m.type for m in track if not m.is_meta]
    assert types == ["note_on", "note_on", "note_off", "note_off"]  # stray off dropped, 60 closed
    notes = load_midi(data).parts[0].notes
    # The open 60 is closed at the player's last event (the stray off at 1600 ms).
    assert [(n.pitch, n.onset_s, n.offset_s) for n in notes] == [
        (60, 0.0, pytest.approx(1.6)),
        (72, pytest.approx(0.5), pytest.approx(1.5)),
    ]


def test_unclosed_last_note_is_zero_length() -> None:
    recording = record(event(1, "ana", "on", 60, START), event(2, "ana", "off", 60, START + 200))
    recording.add(event(3, "ana", "on", 65, START + 400))
    notes = load_midi(recording.to_midi(start_at_ms=START, tempo_bpm=100, track_names={}))
    last = notes.parts[0].notes[-1]
    assert (last.pitch, last.onset_s, last.offset_s) == (65, pytest.approx(0.4), last.onset_s)


def test_several_players_get_tracks_and_channels() -> None:
    users = [f"user{i}" for i in range(11)]  # 11 players: channel 9 (drums) is skipped
    recording = Recording()
    seq = 0
    for i, user in enumerate(reversed(users)):  # first event order: user10, user9, ...
        seq += 1
        recording.add(event(seq, user, "on", 50 + i, START + 10 * i, part=f"P{i}"))
    for i, user in enumerate(users):
        seq += 1
        recording.add(event(seq, user, "off", 60 - i, START + 1000))
    names = {"user10": "Bass", "user3": "Alto"}
    data = recording.to_midi(start_at_ms=START, tempo_bpm=96, track_names=names)

    midi = mido.MidiFile(file=io.BytesIO(data))
    assert midi.type == 1 and len(midi.tracks) == 12
    assert midi.tracks[0].name == "Tutti session"
    assert [t.name for t in midi.tracks[1:]] == [
        "Bass",
        "user9",
        "user8",
        "user7",
        "user6",
        "user5",
        "user4",
        "Alto",
        "user2",
        "user1",
        "user0",
    ]
    piece = load_midi(data)
    assert [p.channel for p in piece.parts] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11]
    assert [p.notes[0].pitch for p in piece.parts] == list(range(50, 61))
    assert all(len(p.notes) == 1 for p in piece.parts)
    assert piece.bpm == pytest.approx(96)


def test_events_arriving_out_of_order_are_sorted() -> None:
    recording = record(
        event(1, "ana", "on", 62, START + 400),
        event(2, "ana", "on", 60, START + 100),  # arrived late (network)
        event(3, "ana", "off", 60, START + 300),
        event(4, "ana", "off", 62, START + 600),
    )
    notes = load_midi(recording.to_midi(start_at_ms=START, tempo_bpm=120, track_names={}))
    got = notes.parts[0].notes
    assert [n.pitch for n in got] == [60, 62]
    assert [n.onset_s for n in got] == pytest.approx([0.1, 0.4], abs=1 / 960)
    assert [n.offset_s for n in got] == pytest.approx([0.3, 0.6], abs=1 / 960)


def test_chorale_played_by_four_players_round_trips() -> None:
    """Real music: each voice of a Bach chorale played by one member at the piece's tempo."""
    piece = load_midi(chorale_midi("bach/bwv66.6"))
    events = []
    for part in piece.parts:
        for note in part.notes:
            events.append((START + note.onset_s * 1000, part.name, "on", note))
            events.append((START + note.offset_s * 1000, part.name, "off", note))
    events.sort(key=lambda e: (e[0], e[2] == "on"))  # offs before ons at the same time
    recording = Recording()
    for seq, (t_ms, user, kind, note) in enumerate(events):
        velocity = note.velocity if kind == "on" else 0
        recording.add(RecordedEvent(seq, user, user, kind, note.pitch, velocity, t_ms))

    ticks_per_beat = 480
    data = recording.to_midi(
        start_at_ms=START,
        tempo_bpm=piece.bpm,
        track_names={name: name for name in piece.part_names},
        ticks_per_beat=ticks_per_beat,
    )
    back = load_midi(data)
    assert back.part_names == piece.part_names
    for original, recorded in zip(piece.parts, back.parts, strict=True):
        assert [n.pitch for n in recorded.notes] == [n.pitch for n in original.notes]
        for a, b in zip(original.notes, recorded.notes, strict=True):
            assert abs(b.onset_tick - a.onset_beat * ticks_per_beat) <= 1
            assert b.onset_beat == pytest.approx(a.onset_beat, abs=1 / ticks_per_beat)
            assert b.offset_s == pytest.approx(a.offset_s, abs=1e-3)


def test_empty_recording_is_a_valid_file_without_notes() -> None:
    data = Recording().to_midi(start_at_ms=START, tempo_bpm=120, track_names={})
    assert len(mido.MidiFile(file=io.BytesIO(data)).tracks) == 1
    with pytest.raises(NoNotesError):
        load_midi(data)


def test_bad_arguments() -> None:
    recording = record(event(1, "a", "on", 60, START))
    with pytest.raises(ValueError, match="tempo_bpm"):
        recording.to_midi(start_at_ms=START, tempo_bpm=0, track_names={})
    with pytest.raises(ValueError, match="ticks_per_beat"):
        recording.to_midi(start_at_ms=START, tempo_bpm=120, track_names={}, ticks_per_beat=0)


@st.composite
def played_notes(draw):
    """Non-overlapping notes per (player, pitch): (user, pitch, on_ms, off_ms)."""
    notes = []
    for user in draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=4, unique=True)):
        for pitch in draw(st.lists(st.integers(21, 108), min_size=1, max_size=4, unique=True)):
            times = draw(
                st.lists(st.integers(-500, 20_000), min_size=2, max_size=8, unique=True).filter(
                    lambda t: len(t) % 2 == 0
                )
            )
            times.sort()
            notes += [
                (user, pitch, on, off) for on, off in zip(times[::2], times[1::2], strict=True)
            ]
    return notes


@settings(max_examples=60, deadline=None)
@given(notes=played_notes(), bpm=st.floats(30, 240), shuffle=st.randoms())
def test_round_trip_property(notes, bpm, shuffle) -> None:
    events = [(on, user, "on", pitch) for user, pitch, on, _ in notes]
    events += [(off, user, "off", pitch) for user, pitch, _, off in notes]
    shuffle.shuffle(events)  # arrival order is not time order
    recording = Recording()
    for seq, (t, user, kind, pitch) in enumerate(events):
        recording.add(RecordedEvent(seq, user, None, kind, pitch, 64 if kind == "on" else 0, t))
    piece = load_midi(recording.to_midi(start_at_ms=0.0, tempo_bpm=bpm, track_names={}))
    us_per_beat = mido.bpm2tempo(bpm)
    for part in piece.parts:
        expected = sorted((pitch, max(0, on)) for user, pitch, on, _ in notes if user == part.name)
        got = sorted((n.pitch, n.onset_tick) for n in part.notes)
        assert [p for p, _ in got] == [p for p, _ in expected]
        for (_, tick), (_, on_ms) in zip(got, expected, strict=True):
            assert abs(tick - on_ms * 1000 / us_per_beat * 480) <= 1
