"""rooms.piece: loading real MIDI (music21 corpus) and hand-made files."""

from __future__ import annotations

import contextlib
import io
import re
import struct
from collections import Counter

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.piece import (
    CorruptMidiError,
    NoNotesError,
    NotMidiError,
    Part,
    Piece,
    PieceError,
    SplitError,
    TempoMap,
    TimeSignature,
    TruncatedMidiError,
    UnknownPartError,
    UnsupportedMidiError,
    load_midi,
)
from server.services.pieces import load_midi_file
from tests.music import chorale_midi, music21_notes, one_channel_per_track, to_type0

CHORALE = "bach/bwv66.6"
RAG = "joplin/maple_leaf_rag"


def make_midi(tracks, *, midi_type: int = 1, ticks_per_beat: int = 480) -> bytes:
    """A MIDI file from tracks given as lists of ``(absolute tick, message)``."""
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=ticks_per_beat)
    for events in tracks:
        track = mido.MidiTrack()
        now = 0
        for tick, msg in sorted(events, key=lambda pair: pair[0]):
            track.append(msg.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def on(pitch: int, velocity: int = 64, channel: int = 0) -> mido.Message:
    return mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)


def off(pitch: int, channel: int = 0) -> mido.Message:
    return mido.Message("note_off", note=pitch, channel=channel)


def tempo(bpm: float) -> mido.MetaMessage:
    return mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))


def name(text: str) -> mido.MetaMessage:
    return mido.MetaMessage("track_name", name=text)


def key(note) -> tuple[int, int, float]:
    return (note.onset_tick, note.pitch, note.offset_beat)


# ------------------------------------------------------------ real music


@pytest.fixture(scope="module")
def chorale() -> Piece:
    return load_midi(chorale_midi(CHORALE))


def test_chorale_parts_match_music21(chorale: Piece) -> None:
    expected = music21_notes(CHORALE)
    assert chorale.midi_type == 1
    assert chorale.part_names == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [name for name, _ in expected] == chorale.part_names
    assert [len(p.notes) for p in chorale.parts] == [len(n) for _, n in expected]
    assert [len(p.notes) for p in chorale.parts] == [36, 42, 44, 41]
    # music21 writes every part on channel 0 with program 0 (acoustic grand piano).
    assert {(p.channel, p.program) for p in chorale.parts} == {(0, 0)}


@pytest.mark.parametrize("index", range(4))
def test_chorale_onsets_in_beats_match_music21(chorale: Piece, index: int) -> None:
    part_name, expected = music21_notes(CHORALE)[index]
    part = chorale.part(part_name)
    got = [(n.onset_beat, n.pitch) for n in part.notes]
    assert [p for _, p in got] == [p for _, p in expected]
    assert [b for b, _ in got] == pytest.approx([b for b, _ in expected], abs=1e-9)


def test_chorale_timing(chorale: Piece) -> None:
    assert chorale.title == "Untitled"  # music21's conductor track has no name
    assert chorale.ticks_per_beat == 10080
    assert chorale.bpm == pytest.approx(96.0)  # the score's playback-only metronome mark
    assert chorale.tempo_map.changes[0].us_per_beat == 625_000
    assert chorale.time_signatures == (TimeSignature(0, 4, 4),)
    for note in chorale.part("Soprano").notes:
        assert note.onset_s == pytest.approx(note.onset_beat * 60 / 96)
        assert note.offset_s == pytest.approx(note.offset_beat * 60 / 96)
        assert note.onset_tick == round(note.onset_beat * 10080)
    notes = chorale.part("Soprano").notes
    assert list(notes) == sorted(notes, key=lambda n: (n.onset_tick, n.pitch))
    assert chorale.duration_s == pytest.approx(36 * 60 / 96)  # 9 bars of 4/4, pickup included
    assert chorale.part("Bass").pitch_range == (42, 62)


def test_title_argument_wins() -> None:
    assert load_midi(chorale_midi(CHORALE), title="Christus, der ist mein Leben").title == (
        "Christus, der ist mein Leben"
    )


def test_type0_splits_by_channel(chorale: Piece) -> None:
    piece = load_midi(to_type0(one_channel_per_track(chorale_midi(CHORALE))))
    assert piece.midi_type == 0
    assert piece.part_names == ["Channel 1", "Channel 2", "Channel 3", "Channel 4"]
    assert [p.channel for p in piece.parts] == [0, 1, 2, 3]
    assert piece.tempo_map == chorale.tempo_map
    for type0, type1 in zip(piece.parts, chorale.parts, strict=True):
        assert type0.notes == type1.notes


def test_type0_single_channel_keeps_all_notes(chorale: Piece) -> None:
    # As music21 writes it, every voice is on channel 0: one part with all notes.
    piece = load_midi(to_type0(chorale_midi(CHORALE)))
    assert piece.part_names == ["Channel 1"]  # four distinct track names: none is used
    merged = Counter(key(n) for p in chorale.parts for n in p.notes)
    assert Counter(key(n) for n in piece.parts[0].notes) == merged


def test_another_chorale_with_repeats() -> None:
    piece = load_midi(chorale_midi("bach/bwv4.8"))
    expected = music21_notes("bach/bwv4.8")
    assert piece.part_names == ["Soprano", "Alto", "Tenor", "Bass"]
    assert piece.bpm == pytest.approx(120.0)  # "animato", quarter = 120
    for part, (_, notes) in zip(piece.parts, expected, strict=True):
        # pytest.approx takes flat sequences only (pytest 9.2): compare field by field.
        assert [n.onset_beat for n in part.notes] == pytest.approx([b for b, _ in notes])
        assert [n.pitch for n in part.notes] == [p for _, p in notes]
    # The repeat is played twice in MIDI: more notes than in the written score.
    assert [len(p.notes) for p in piece.parts] == [70, 68, 79, 75]


@pytest.fixture(scope="module")
def rag_midi() -> bytes:
    return chorale_midi(RAG)


def test_piano_piece_with_tempo_change(rag_midi: bytes) -> None:
    piece = load_midi(rag_midi)
    expected = music21_notes(RAG)
    assert piece.part_names == ["Piano", "Piano (2)"]  # two staves, both named "Piano"
    assert piece.time_signatures == (TimeSignature(0, 2, 4),)
    changes = [(c.tick, c.us_per_beat) for c in piece.tempo_map.changes]
    assert changes == [(0, 600_000), (7560, 500_000)]
    for part, (_, notes) in zip(piece.parts, expected, strict=True):
        # pytest.approx takes flat sequences only (pytest 9.2): compare field by field.
        assert [n.onset_beat for n in part.notes] == pytest.approx([b for b, _ in notes])
        assert [n.pitch for n in part.notes] == [p for _, p in notes]
    # 0.75 beat at 100 BPM, then 120 BPM.
    for note in piece.parts[0].notes:
        assert note.onset_s == pytest.approx(0.45 + (note.onset_beat - 0.75) * 0.5)


def test_split_hands_on_piano_piece(rag_midi: bytes) -> None:
    piece = load_midi(to_type0(rag_midi))
    assert piece.part_names == ["Piano"]  # one channel, one distinct track name
    whole = piece.parts[0]
    hands = piece.split_hands()
    assert hands.part_names == ["right", "left"]
    right, left = hands.part("right"), hands.part("left")
    assert all(n.pitch >= 60 for n in right.notes)
    assert all(n.pitch < 60 for n in left.notes)
    assert Counter(right.notes) + Counter(left.notes) == Counter(whole.notes)
    assert len(right.notes) + len(left.notes) == 1083 + 1225
    assert hands.tempo_map == piece.tempo_map and hands.title == piece.title
    assert (right.channel, right.program) == (whole.channel, whole.program)
    assert piece.split_hands(split_pitch=70).part("right").pitch_range[0] >= 70


def test_split_hands_of_two_voices_in_one_track(chorale: Piece) -> None:
    # Soprano and bass of the chorale merged into one track: a split between
    # their ranges (soprano 64-76, bass 42-62) gives back exactly the two voices.
    source = mido.MidiFile(file=io.BytesIO(chorale_midi(CHORALE)))
    conductor, soprano, bass = source.tracks[0], source.tracks[1], source.tracks[4]
    merged = mido.merge_tracks([soprano, bass])
    midi = mido.MidiFile(type=1, ticks_per_beat=source.ticks_per_beat)
    midi.tracks += [conductor, mido.MidiTrack([name("Keyboard"), *merged])]
    buffer = io.BytesIO()
    midi.save(file=buffer)
    piece = load_midi(buffer.getvalue())
    assert piece.part_names == ["Keyboard"]
    assert chorale.part("Soprano").pitch_range[0] == 64
    hands = piece.split_hands(63)
    assert hands.part("right").notes == chorale.part("Soprano").notes
    assert hands.part("left").notes == chorale.part("Bass").notes


def test_split_hands_errors(chorale: Piece) -> None:
    with pytest.raises(SplitError, match="4 parts") as error:
        chorale.split_hands()
    assert error.value.code == "invalid_split"
    assert "'Soprano'" in str(error.value)
    hands = chorale.split_hands(67, part="Soprano")
    assert hands.part_names == ["right", "left"]
    with pytest.raises(SplitError, match="left hand would be empty"):
        chorale.split_hands(0, part="Soprano")
    with pytest.raises(SplitError, match="right hand would be empty"):
        chorale.split_hands(100, part="Bass")
    with pytest.raises(SplitError, match="0-127"):
        chorale.split_hands(128, part="Bass")
    with pytest.raises(UnknownPartError):
        chorale.split_hands(part="Piano")


# ------------------------------------------------------- hand-made files


def test_tempo_changes_in_several_tracks_give_seconds() -> None:
    # No tempo at tick 0 (so 120 BPM), 60 BPM from tick 960 (conductor track),
    # 240 BPM from tick 1920 (set in the note track).
    data = make_midi(
        [
            [(0, name("Tempo test")), (960, tempo(60))],
            [(0, name("Melody")), (1920, tempo(240))]
            + [(t, on(60 + i)) for i, t in enumerate((0, 960, 1440, 1920, 2400))]
            + [(t + 240, off(60 + i)) for i, t in enumerate((0, 960, 1440, 1920, 2400))],
        ]
    )
    piece = load_midi(data)
    assert piece.title == "Tempo test"
    assert [(c.tick, c.us_per_beat, c.time_s) for c in piece.tempo_map.changes] == [
        (0, 500_000, 0.0),
        (960, 1_000_000, 1.0),
        (1920, 250_000, 3.0),
    ]
    assert piece.bpm == 120.0
    assert [c.bpm for c in piece.tempo_map.changes] == [120.0, 60.0, 240.0]
    notes = piece.part("Melody").notes
    # by hand: 2 beats at 0.5 s, then 1 beat at 1 s per beat, then 0.25 s per beat
    assert [n.onset_s for n in notes] == pytest.approx([0.0, 1.0, 2.0, 3.0, 3.25])
    assert [n.offset_s for n in notes] == pytest.approx([0.25, 1.5, 2.5, 3.125, 3.375])
    assert [n.onset_beat for n in notes] == [0.0, 2.0, 3.0, 4.0, 5.0]
    assert piece.duration_s == pytest.approx(3.375)
    assert piece.tempo_map.tick_to_seconds(3840) == pytest.approx(3.0 + 4 * 0.25)
    assert piece.tempo_map.tick_to_beats(720) == 1.5


def test_time_signatures() -> None:
    ts = mido.MetaMessage("time_signature", numerator=3, denominator=4)
    ts2 = mido.MetaMessage("time_signature", numerator=6, denominator=8)
    data = make_midi([[(0, ts), (1440, ts2), (2880, ts2)], [(0, on(60)), (4000, off(60))]])
    assert load_midi(data).time_signatures == (TimeSignature(0, 3, 4), TimeSignature(1440, 6, 8))
    # none in the file: 4/4 at tick 0
    assert load_midi(make_midi([[(0, on(60)), (10, off(60))]])).time_signatures == (
        TimeSignature(0, 4, 4),
    )


def test_note_pairing_rules() -> None:
    data = make_midi(
        [
            [
                (0, on(60, 100)),
                (100, on(60, 90)),  # same pitch again, overlapping
                (200, off(60)),  # closes the first (FIFO)
                (300, on(60, velocity=0)),  # note_on velocity 0 closes the second
                (400, off(61)),  # nothing to close: ignored
                (500, on(62)),
                (500, off(62)),  # zero length: kept
                (600, on(64)),  # never closed: ends at the end of the track
                (900, mido.MetaMessage("end_of_track")),
            ]
        ]
    )
    (part,) = load_midi(data).parts
    assert part.name == "Track 1"
    got = [(n.onset_tick, round(n.offset_beat * 480), n.pitch, n.velocity) for n in part.notes]
    assert got == [(0, 200, 60, 100), (100, 300, 60, 90), (500, 500, 62, 64), (600, 900, 64, 64)]


def test_channels_programs_and_names_type1() -> None:
    program = mido.Message("program_change", channel=2, program=40)
    data = make_midi(
        [
            [(0, name("Strings")), (0, program), (0, on(60, channel=2)), (10, off(60, 2))],
            [(0, on(60, channel=0)), (0, on(64, channel=1)), (10, off(60)), (10, off(64, 1))],
            [(0, name("Strings")), (0, on(70, channel=3)), (10, off(70, 3))],
            [(0, name("Empty"))],
        ]
    )
    piece = load_midi(data)
    assert piece.title == "Untitled"  # the first track has notes: not a conductor track
    assert piece.part_names == ["Strings", "Track 2", "Strings (2)"]
    assert [(p.channel, p.program) for p in piece.parts] == [(2, 40), (None, None), (3, None)]


def test_type0_channel_parts_and_programs() -> None:
    data = make_midi(
        [
            [
                (0, name("Song")),
                (0, mido.Message("program_change", channel=5, program=1)),
                (0, mido.Message("program_change", channel=5, program=33)),
                (0, on(40, channel=5)),
                (5, mido.Message("program_change", channel=5, program=7)),
                (0, on(72, channel=0)),
                (20, off(40, 5)),
                (20, off(72, 0)),
            ]
        ],
        midi_type=0,
    )
    piece = load_midi(data)
    assert piece.midi_type == 0
    assert piece.part_names == ["Channel 1", "Channel 6"]
    assert [(p.channel, p.program) for p in piece.parts] == [(0, None), (5, 33)]
    single = load_midi(make_midi([[(0, name("Song")), (0, on(60)), (9, off(60))]], midi_type=0))
    assert single.part_names == ["Song"]


def test_load_from_path(tmp_path) -> None:
    path = tmp_path / "chorale.mid"
    path.write_bytes(chorale_midi(CHORALE))
    assert load_midi_file(path).part_names == load_midi_file(str(path)).part_names
    assert load_midi(bytearray(path.read_bytes())).part_names[0] == "Soprano"


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("data", [b"", b"hello, world", b"RIFF\x00\x00\x00\x00RMIDdata", b"MTh"])
def test_not_midi(data: bytes) -> None:
    with pytest.raises(NotMidiError, match="not a MIDI file") as error:
        load_midi(data)
    assert error.value.code == "not_midi"
    assert isinstance(error.value, PieceError) and isinstance(error.value, ValueError)


def test_truncated_half_file() -> None:
    data = chorale_midi(CHORALE)
    with pytest.raises(TruncatedMidiError, match="truncated") as error:
        load_midi(data[: len(data) // 2])
    assert error.value.code == "truncated_midi"
    assert f"after {len(data) // 2} bytes" in str(error.value)
    assert re.search(r"track \d( of 5 announces \d+ bytes| is missing)", str(error.value))
    with pytest.raises(TruncatedMidiError, match=r"track 5 of 5 announces \d+ bytes but only"):
        load_midi(data[:-1])
    with pytest.raises(TruncatedMidiError, match="MThd header"):
        load_midi(data[:10])
    with pytest.raises(TruncatedMidiError, match="track 2 is missing"):
        first_track = 14 + 8 + struct.unpack(">L", data[18:22])[0]
        load_midi(data[:first_track])


def test_every_truncation_is_reported_as_truncated() -> None:
    data = chorale_midi(CHORALE)
    for length in range(4, len(data)):
        with pytest.raises(TruncatedMidiError):
            load_midi(data[:length])


def test_corrupt_track_data() -> None:
    header = b"MThd" + struct.pack(">LHHH", 6, 1, 1, 480)
    bad = header + b"MTrk" + struct.pack(">L", 4) + b"\x00\x90\xff\x40"  # data byte > 127
    with pytest.raises(CorruptMidiError, match="data byte") as error:
        load_midi(bad)
    assert error.value.code == "corrupt_midi"
    with pytest.raises(CorruptMidiError, match="MTrk"):
        load_midi(header + b"JUNK" + struct.pack(">L", 0))


def test_no_notes() -> None:
    data = make_midi([[(0, name("Conductor")), (0, tempo(90))], [(0, name("Silent"))]])
    with pytest.raises(NoNotesError, match="no notes") as error:
        load_midi(data)
    assert error.value.code == "no_notes"
    only_zero_velocity = make_midi([[(0, on(60, velocity=0))]])
    with pytest.raises(NoNotesError):
        load_midi(only_zero_velocity)


def test_unsupported_files() -> None:
    type2 = make_midi([[(0, on(60)), (1, off(60))]], midi_type=2)
    with pytest.raises(UnsupportedMidiError, match="type 2") as error:
        load_midi(type2)
    assert error.value.code == "unsupported_midi_type"
    smpte = bytearray(make_midi([[(0, on(60)), (1, off(60))]]))
    smpte[12:14] = struct.pack(">bB", -25, 40)  # 25 fps, 40 ticks per frame
    with pytest.raises(UnsupportedMidiError, match="SMPTE") as error:
        load_midi(bytes(smpte))
    assert error.value.code == "unsupported_time_division"


def test_unknown_part_lists_parts(chorale: Piece) -> None:
    with pytest.raises(UnknownPartError) as error:
        chorale.part("Soprano 2")
    assert error.value.code == "unknown_part"
    assert isinstance(error.value, KeyError) and isinstance(error.value, PieceError)
    assert str(error.value) == (
        "no part named 'Soprano 2'; available parts: 'Soprano', 'Alto', 'Tenor', 'Bass'"
    )
    assert error.value.available == ("Soprano", "Alto", "Tenor", "Bass")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_after_header_raise_only_piece_errors(tail: bytes) -> None:
    header = b"MThd" + struct.pack(">LHHH", 6, 1, 2, 96)
    for data in (tail, header + tail, header + b"MTrk" + tail):
        with contextlib.suppress(PieceError):
            load_midi(data)


# ----------------------------------------------------- tempo map properties


tempo_changes = st.lists(
    st.tuples(st.integers(0, 20_000), st.integers(100_000, 2_000_000)), max_size=8
)


@given(ticks_per_beat=st.integers(24, 960), changes=tempo_changes, data=st.data())
def test_tick_to_seconds_is_piecewise_linear_and_increasing(ticks_per_beat, changes, data):
    tempo_map = TempoMap.from_changes(ticks_per_beat, changes)
    assert tempo_map.changes[0].tick == 0
    ticks = sorted(data.draw(st.lists(st.integers(0, 30_000), min_size=2, max_size=10)))
    seconds = [tempo_map.tick_to_seconds(t) for t in ticks]
    assert all(a <= b for a, b in zip(seconds, seconds[1:], strict=False))

    # Brute force: the tempo in force at each tick is the last change at or before it.
    in_force: dict[int, int] = {0: 500_000}
    for tick, us in sorted(changes, key=lambda c: c[0]):
        in_force[tick] = us
    starts = sorted(in_force)

    def by_hand(tick: int) -> float:
        total = 0.0
        for start, end in zip(starts, starts[1:] + [None], strict=True):
            if start >= tick:
                break
            stop = tick if end is None else min(tick, end)
            total += (stop - start) * in_force[start] / 1e6 / ticks_per_beat
        return total

    for tick, value in zip(ticks, seconds, strict=True):
        assert value == pytest.approx(by_hand(tick), rel=1e-9, abs=1e-9)
    for change in tempo_map.changes:
        assert tempo_map.tick_to_seconds(change.tick) == pytest.approx(change.time_s)


@settings(max_examples=50, deadline=None)
@given(
    changes=tempo_changes,
    onsets=st.lists(st.integers(0, 20_000), min_size=1, max_size=12),
)
def test_note_seconds_agree_with_mido_playback(changes, onsets):
    """Seconds from the loaded piece equal mido's own playback clock."""
    conductor = [(tick, mido.MetaMessage("set_tempo", tempo=us)) for tick, us in changes]
    notes = [(t, on(40 + i % 40)) for i, t in enumerate(onsets)]
    notes += [(t + 10, off(40 + i % 40)) for i, t in enumerate(onsets)]
    data = make_midi([conductor, notes], ticks_per_beat=240)
    piece = load_midi(data)

    clock, played = 0.0, []
    for msg in mido.MidiFile(file=io.BytesIO(data)):
        clock += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            played.append((msg.note, clock))
    got = sorted((n.pitch, n.onset_s) for n in piece.parts[0].notes)
    expected = sorted(played)
    assert [p for p, _ in got] == [p for p, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-6)


def test_tempo_map_validation() -> None:
    with pytest.raises(ValueError):
        TempoMap(480, ())
    with pytest.raises(ValueError):
        TempoMap.from_changes(0)
    assert TempoMap.from_changes(480).initial_bpm == 120.0
    # same tick: the last one wins; a restated tempo is not a change
    tempo_map = TempoMap.from_changes(480, [(0, 400_000), (0, 600_000), (480, 600_000)])
    assert [(c.tick, c.us_per_beat) for c in tempo_map.changes] == [(0, 600_000)]
    assert Part("x", ()).duration_s == 0.0
