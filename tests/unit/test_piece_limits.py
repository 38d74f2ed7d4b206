"""Pieces sent by clients: linear part naming, caps checked before decoding, zip limits,
errors that cross a process boundary, and ``rooms`` taking bytes only."""

from __future__ import annotations

import contextlib
import io
import pickle
import struct
import time
import zipfile
from collections import Counter

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.midi_file import MidiLimits, check_limits
from rooms.part_names import unique_names
from rooms.piece import (
    CorruptMidiError,
    NoNotesError,
    NotMidiError,
    PieceError,
    PieceTooLargeError,
    SplitError,
    TruncatedMidiError,
    UnknownPartError,
    UnsupportedMidiError,
    load_midi,
)
from server.services.musicxml import XmlLimits, check_size
from server.services.pieces import PieceLimits, load_piece_file
from tests.hostile import dense_midi, many_tracks_midi, zip_bomb_mxl
from tests.music import chorale_midi, one_channel_per_track, to_type0

# ------------------------------------------------------------------ part names


def cubic_unique(names):
    """The rule as first written (cubic): the lowest free suffix, searched from 1."""
    result: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in result:
            n += 1
            candidate = f"{name} ({n})"
        result.append(candidate)
    return result


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["A", "B", "A (2)", "A (3)", "B (2)", "A (2) (2)", "x"])))
def test_unique_names_follow_the_first_rule(names) -> None:
    assert unique_names(names) == cubic_unique(names)


def test_unique_names_are_linear() -> None:
    names = [f"T{i % 10}" for i in range(50_000)]
    started = time.monotonic()
    result = unique_names(names)
    assert time.monotonic() - started < 2.0  # the cubic rule takes hours for these
    assert result[:11] == [*(f"T{i}" for i in range(10)), "T0 (2)"]
    assert result[-1] == "T9 (5000)" and len(set(result)) == len(result)


def test_many_tracks_with_repeated_names_load_quickly() -> None:
    started = time.monotonic()
    piece = load_midi(many_tracks_midi(5000))
    assert time.monotonic() - started < 10.0  # was 18-47 s
    assert len(piece.parts) == 5000 and piece.part_names[10] == "T0 (2)"


# ------------------------------------------------------------------ note caps


def counts(data: bytes) -> tuple[int, int, int]:
    """(notes, notes of the largest part, events) as mido and load_midi see them."""
    midi = mido.MidiFile(file=io.BytesIO(data))
    per_part: Counter = Counter()
    events = 0
    for index, track in enumerate(midi.tracks):
        for msg in track:
            events += 1
            if msg.type == "note_on" and msg.velocity > 0:
                per_part[index if midi.type == 1 else msg.channel] += 1
    return sum(per_part.values()), max(per_part.values(), default=0), events


def assert_caps_exact(data: bytes) -> None:
    notes, part, events = counts(data)
    check_limits(data, MidiLimits(notes, part, events))  # at every cap: accepted
    for over in (
        MidiLimits(notes=notes - 1),
        MidiLimits(part_notes=part - 1),
        MidiLimits(events=events - 1),
    ):
        with pytest.raises(PieceTooLargeError) as caught:
            check_limits(data, over)
        assert caught.value.code == "piece_too_large" and caught.value.status == 413


@pytest.mark.parametrize(
    "make",
    [
        lambda: chorale_midi("bach/bwv66.6"),
        lambda: chorale_midi("joplin/maple_leaf_rag"),
        lambda: to_type0(one_channel_per_track(chorale_midi("bach/bwv66.6"))),
        lambda: dense_midi(3000),
    ],
    ids=["chorale", "rag", "chorale type 0", "running status"],
)
def test_caps_count_what_load_midi_loads(make) -> None:
    data = make()
    assert_caps_exact(data)
    piece = load_midi(data)
    notes, part, _ = counts(data)
    assert sum(len(p.notes) for p in piece.parts) == notes
    assert max(len(p.notes) for p in piece.parts) == part


channel_messages = st.one_of(
    st.builds(
        lambda c, n, v: mido.Message("note_on", channel=c, note=n, velocity=v),
        st.integers(0, 15),
        st.integers(0, 127),
        st.integers(0, 127),
    ),
    st.builds(
        lambda c, n: mido.Message("note_off", channel=c, note=n),
        st.integers(0, 15),
        st.integers(0, 127),
    ),
    st.builds(
        lambda c, v: mido.Message("control_change", channel=c, control=64, value=v),
        st.integers(0, 15),
        st.integers(0, 127),
    ),
    st.builds(
        lambda c, p: mido.Message("program_change", channel=c, program=p),
        st.integers(0, 15),
        st.integers(0, 127),
    ),
    st.builds(lambda c: mido.Message("aftertouch", channel=c, value=3), st.integers(0, 15)),
    st.builds(lambda c: mido.Message("pitchwheel", channel=c, pitch=100), st.integers(0, 15)),
    st.builds(lambda d: mido.Message("sysex", data=d), st.lists(st.integers(0, 127), max_size=200)),
    st.builds(lambda t: mido.MetaMessage("track_name", name=t), st.text("ab ", max_size=150)),
    st.just(mido.MetaMessage("set_tempo", tempo=400_000)),
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([0, 1]),
    st.lists(
        st.lists(st.tuples(st.integers(0, 20_000), channel_messages), max_size=40),
        min_size=1,
        max_size=4,
    ),
)
def test_caps_count_like_mido_on_any_file(midi_type, tracks) -> None:
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=96)
    for events in tracks[:1] if midi_type == 0 else tracks:
        track = mido.MidiTrack()
        for delta, msg in events:
            track.append(msg.copy(time=delta))
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    data = buffer.getvalue()
    notes, part, events = counts(data)
    check_limits(data, MidiLimits(notes, part, events))
    if events:
        with pytest.raises(PieceTooLargeError):
            check_limits(data, MidiLimits(events=events - 1))
    if notes:
        with pytest.raises(PieceTooLargeError):
            check_limits(data, MidiLimits(notes=notes - 1))
        with pytest.raises(PieceTooLargeError):
            check_limits(data, MidiLimits(part_notes=part - 1))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0, 1, 2]), st.integers(0, 3), st.binary(max_size=300))
def test_garbage_tracks_give_piece_errors_only(midi_type, n_tracks, body) -> None:
    data = b"MThd" + struct.pack(">LHHH", 6, midi_type, n_tracks, 96) + b"MTrk"
    data += struct.pack(">L", len(body)) + body
    with contextlib.suppress(PieceTooLargeError):  # anything else fails the test
        check_limits(data, MidiLimits(notes=5, part_notes=3, events=20))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_loads_as_piece_errors_only(body) -> None:
    data = b"MThd" + struct.pack(">LHHH", 6, 1, 1, 96) + b"MTrk" + struct.pack(">L", len(body))
    with contextlib.suppress(PieceError):  # no mido, struct or index error escapes
        load_midi(data + body, limits=MidiLimits(notes=5, part_notes=3, events=20))


def test_a_dense_file_is_refused_before_it_is_decoded() -> None:
    data = dense_midi(833_000)  # mido needs 15-40 s and ~400 MB for this
    started = time.monotonic()
    with pytest.raises(PieceTooLargeError, match="more than 20000 notes"):
        load_midi(data, limits=PieceLimits().midi)
    assert time.monotonic() - started < 5.0
    with pytest.raises(PieceTooLargeError, match="one part"):
        load_midi(dense_midi(101), limits=MidiLimits(part_notes=100))


def test_bad_files_keep_their_errors_under_caps() -> None:
    good = chorale_midi("bach/bwv66.6")
    limits = PieceLimits().midi
    with pytest.raises(NotMidiError):
        load_midi(b"", limits=limits)
    with pytest.raises(TruncatedMidiError):
        load_midi(good[: len(good) // 2], limits=limits)
    assert load_midi(good, limits=limits).part_names == load_midi(good).part_names


def test_rooms_takes_bytes_not_paths(tmp_path) -> None:
    path = tmp_path / "chorale.mid"
    path.write_bytes(chorale_midi("bach/bwv66.6"))
    for source in (path, str(path)):
        with pytest.raises(TypeError, match="load_midi_file"):
            load_midi(source)  # type: ignore[arg-type]


# ------------------------------------------------------------------ MusicXML zips


def test_zip_limits_are_checked_without_inflating() -> None:
    bomb = zip_bomb_mxl(300_000_000)
    started = time.monotonic()
    with pytest.raises(PieceTooLargeError, match=r"unpacks to 300000\d\d\d bytes"):
        check_size(bomb, XmlLimits(max_bytes=20_000_000, max_entries=64))
    assert time.monotonic() - started < 1.0
    with pytest.raises(PieceTooLargeError, match="unpacks to"):  # through the loader too
        load_piece_file(bomb, filename="b.mxl", title=None, split_pitch=None, limits=PieceLimits())
    check_size(bomb, XmlLimits(max_bytes=300_001_000, max_entries=2))  # at the limits: fine

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for index in range(65):
            zf.writestr(f"{index}.xml", b"<x/>")
    with pytest.raises(PieceTooLargeError, match="65 entries"):
        check_size(buffer.getvalue(), XmlLimits(max_bytes=10**9, max_entries=64))

    with pytest.raises(PieceTooLargeError, match="MusicXML document is 101 bytes"):
        check_size(b"<" + b" " * 100, XmlLimits(max_bytes=100, max_entries=64))
    check_size(b"PK\x03\x04broken zip", XmlLimits(max_bytes=1, max_entries=1))  # music21 says


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "error",
    [
        PieceError("bad"),
        NotMidiError("not midi"),
        TruncatedMidiError("cut"),
        CorruptMidiError("corrupt"),
        UnsupportedMidiError("smpte", code="unsupported_time_division"),
        NoNotesError("none"),
        PieceTooLargeError("too many notes"),
        UnknownPartError("Tenor", ["Soprano", "Bass"]),
        SplitError("no left hand"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_piece_errors_cross_a_process_boundary(error) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert (back.code, back.message, back.status, str(back)) == (
        error.code,
        error.message,
        error.status,
        str(error),
    )
    assert back.__dict__ == error.__dict__
    assert PieceTooLargeError("x").status == 413
