"""rooms.room: the Room state machine on its own (no server, no clock: ``now_ms`` is given)."""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest

from rooms.errors import RoomError
from rooms.notes import NoteEvent
from rooms.performance import Mistakes, choose_mistakes, humanize
from rooms.piece import Piece, load_midi
from rooms.room import Room, RoomSettings
from rooms.room_types import MAX_PLAYERS
from tests.music import chorale_midi

NOW = 1_700_000_000_000  # server-clock epoch ms
PARTS = ["Soprano", "Alto", "Tenor", "Bass"]


@functools.cache
def chorale() -> Piece:
    return load_midi(chorale_midi("bach/bwv66.6"))  # 96 BPM, four parts


def one_part_piece() -> Piece:
    piece = chorale()
    return replace(piece, parts=piece.parts[:1])


def many_part_piece(n: int) -> Piece:
    piece = chorale()
    soprano = piece.parts[0]
    return replace(piece, parts=tuple(replace(soprano, name=f"Voice {k + 1}") for k in range(n)))


def make_room(mode: str = "ensemble", piece: Piece | None = None, **kwargs) -> Room:
    if piece is None and mode != "free":
        piece = chorale()
    return Room(
        "r1",
        name="Practice",
        mode=mode,
        host_user_id="host",
        piece=piece,
        piece_id=None if piece is None else "p1",
        created_at_ms=NOW,
        **kwargs,
    )


def join(room: Room, user: str, part: str | None = None, role: str = "player", now: int = NOW):
    return room.join(user, user.title(), role=role, part=part, instrument="voice", now_ms=now)


def error_code(excinfo: pytest.ExceptionInfo[RoomError]) -> str:
    return excinfo.value.code


def performance(
    room: Room,
    part: str,
    *,
    tempo_ratio: float = 1.0,
    jitter_ms: float = 10.0,
    mistakes: Mistakes | None = None,
    seed: int = 0,
    until_ms: float | None = None,
) -> list[NoteEvent]:
    """A humanized performance of ``part`` as server-clock note events."""
    assert room.start_at_ms is not None and room.piece is not None
    planned = humanize(
        room.piece.part(part).notes,
        time_scale=room.time_scale,
        tempo_ratio=tempo_ratio,
        jitter_ms=jitter_ms,
        mistakes=mistakes,
        seed=seed,
    )
    events = [
        NoteEvent(e.type, e.pitch, e.velocity, room.start_at_ms + e.t_ms)
        for e in planned
        if until_ms is None or e.t_ms < until_ms
    ]
    return events


def send(room: Room, user: str, events: list[NoteEvent], batch: int = 6) -> int:
    """Send events in small batches, each as the server would receive it (now = last stamp)."""
    sent = 0
    for k in range(0, len(events), batch):
        chunk = events[k : k + batch]
        sent += len(room.accept(user, chunk, now_ms=chunk[-1].t_ms))
    return sent


def started_room(*parts: str, mode: str = "ensemble", **kwargs) -> Room:
    room = make_room(mode, **kwargs)
    join(room, "host", parts[0])
    for k, part in enumerate(parts[1:], start=2):
        join(room, f"user{k}", part)
    room.start("host", NOW)
    return room


# ------------------------------------------------------------------------ create


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"mode": "battle"}, "invalid_mode"),
        ({"mode": "free", "piece": "chorale"}, "invalid_mode"),
        ({"mode": "ensemble", "piece": None}, "piece_required"),
        ({"mode": "duet", "piece": "one part"}, "not_enough_parts"),
        ({"tempo_bpm": 19.9}, "invalid_tempo"),
        ({"tempo_bpm": 400.5}, "invalid_tempo"),
        ({"tempo_bpm": 0}, "invalid_tempo"),
        ({"count_in_beats": -1}, "invalid_count_in"),
        ({"count_in_beats": 17}, "invalid_count_in"),
    ],
)
def test_create_errors(kwargs, code) -> None:
    pieces = {"chorale": chorale(), "one part": one_part_piece(), None: None}
    kwargs = {"mode": "ensemble", "piece": "chorale", **kwargs}
    kwargs["piece"] = pieces[kwargs["piece"]]
    with pytest.raises(RoomError) as excinfo:
        Room("r", name="x", host_user_id="h", **kwargs)
    assert error_code(excinfo) == code
    assert excinfo.value.message and excinfo.value.to_dict()["code"] == code


def test_create_defaults_and_limits() -> None:
    room = make_room()
    assert room.tempo_bpm == 96.0 and room.piece_bpm == 96.0 and room.time_scale == 1.0
    assert room.phase(NOW) == "waiting"
    assert room.part_names == PARTS
    for tempo in (20, 400):
        assert make_room(tempo_bpm=tempo).tempo_bpm == float(tempo)
    for beats in (0, 16):
        assert make_room(count_in_beats=beats).count_in_beats == beats
    free = make_room("free")
    assert free.tempo_bpm == 120.0 and free.piece_bpm is None and free.part_names == []
    duet = make_room("duet", piece=one_part_piece().split_hands(67, part="Soprano"))
    assert duet.part_names == ["right", "left"]
    state = room.state(NOW)
    assert state["max_players"] == MAX_PLAYERS["ensemble"]
    assert state["parts"] == [{"name": p, "user_id": None} for p in PARTS]


# -------------------------------------------------------------------------- join


def test_join_takes_parts_in_order_or_as_asked() -> None:
    room = make_room()
    assert join(room, "host").part == "Soprano"  # first free part
    assert join(room, "b", "Bass").part == "Bass"
    assert join(room, "c").part == "Alto"
    assert room.parts_taken() == {"Soprano": "host", "Bass": "b", "Alto": "c"}
    assert room.players_present() == ["host", "b", "c"]


def test_join_errors() -> None:
    room = make_room()
    join(room, "host", "Soprano")
    with pytest.raises(RoomError) as excinfo:
        join(room, "b", "Viola")
    assert error_code(excinfo) == "unknown_part"
    for part in PARTS:  # the message lists the parts
        assert part in excinfo.value.message
    with pytest.raises(RoomError) as excinfo:
        join(room, "b", "Soprano")
    assert error_code(excinfo) == "part_taken"
    with pytest.raises(RoomError) as excinfo:
        join(room, "host", "Alto")
    assert error_code(excinfo) == "already_joined"
    with pytest.raises(RoomError) as excinfo:
        join(room, "b", role="conductor")
    assert error_code(excinfo) == "invalid_role"
    for user in ("b", "c", "d"):
        join(room, user)
    with pytest.raises(RoomError) as excinfo:
        join(room, "e")
    assert error_code(excinfo) == "no_free_part"
    assert len(room.members) == 4  # refused joins added nobody


def test_duet_is_full_with_two_players() -> None:
    room = make_room("duet")  # four parts, but a duet has two players
    join(room, "host")
    join(room, "b")
    with pytest.raises(RoomError) as excinfo:
        join(room, "c", "Tenor")
    assert error_code(excinfo) == "room_full"
    join(room, "c", role="spectator")  # spectators do not count


def test_ensemble_is_full_with_eight_players() -> None:
    room = make_room("ensemble", piece=many_part_piece(9))
    for k in range(8):
        join(room, "host" if k == 0 else f"u{k}")
    with pytest.raises(RoomError) as excinfo:
        join(room, "u8", "Voice 9")
    assert error_code(excinfo) == "room_full"


def test_free_jam_has_no_parts() -> None:
    room = make_room("free")
    with pytest.raises(RoomError) as excinfo:
        join(room, "host", "Soprano")
    assert error_code(excinfo) == "unknown_part"
    assert join(room, "host").part is None
    for k in range(7):
        join(room, f"u{k}")
    with pytest.raises(RoomError) as excinfo:
        join(room, "u7")
    assert error_code(excinfo) == "room_full"


def test_after_the_start_only_spectators_join() -> None:
    room = started_room("Soprano")
    with pytest.raises(RoomError) as excinfo:
        join(room, "late", "Bass")
    assert error_code(excinfo) == "already_started"
    member = join(room, "watcher", role="spectator", now=NOW + 60_000)
    assert member.role == "spectator" and member.part is None
    assert room.players_present() == ["host"]


def test_player_leaving_before_the_start_frees_the_part() -> None:
    room = make_room()
    join(room, "host", "Soprano")
    join(room, "b", "Alto")
    assert room.leave("b", NOW) is False
    assert room.parts_taken() == {"Soprano": "host"}
    join(room, "c", "Alto")
    assert room.parts_taken()["Alto"] == "c"
    with pytest.raises(RoomError) as excinfo:
        room.leave("b", NOW)
    assert error_code(excinfo) == "not_in_room"


def test_player_who_left_mid_piece_rejoins_with_the_same_scorer() -> None:
    room = started_room("Soprano", "Alto")
    start = room.start_at_ms
    events = performance(room, "Alto", until_ms=5000)
    send(room, "user2", events)
    before = room.live_result("user2")
    assert before["notes_played"] > 0
    scorer = room._players["user2"].scorer
    assert room.leave("user2", start + 6000) is False  # the host still plays
    assert room.parts_taken()["Alto"] == "user2"  # the part stays reserved
    assert room.players_present() == ["host"]
    with pytest.raises(RoomError) as excinfo:
        room.join(
            "user2", "User2", role="player", part="Tenor", instrument=None, now_ms=start + 7000
        )
    assert error_code(excinfo) == "part_taken"
    member = room.join(
        "user2", "User2", role="player", part=None, instrument=None, now_ms=start + 7000
    )
    assert member.part == "Alto"
    assert room._players["user2"].scorer is scorer
    assert room.live_result("user2")["notes_played"] == before["notes_played"]
    rest = [e for e in performance(room, "Alto") if e.t_ms >= start + 7000]
    send(room, "user2", rest)
    after = room.live_result("user2")
    assert after["notes_played"] == before["notes_played"] + sum(e.type == "on" for e in rest)
    finished = room.finish("piece_ended", start + 60_000, "s1")
    outcome = {p.user_id: p for p in finished.players}["user2"]
    assert outcome.complete is True  # back before the end: the result counts as complete


def test_host_passes_to_the_longest_present_member_on_leave() -> None:
    room = make_room()
    join(room, "host")
    join(room, "b", role="spectator")
    join(room, "c")
    room.leave("host", NOW)
    assert room.host == "b"
    room.leave("b", NOW)
    assert room.host == "c"
    with pytest.raises(RoomError) as excinfo:
        room.start("host", NOW)
    assert error_code(excinfo) == "not_host"
    room.start("c", NOW)


# ------------------------------------------------------------------------- start


def test_start_rules_and_start_at() -> None:
    room = make_room(tempo_bpm=120.0, count_in_beats=4)
    with pytest.raises(RoomError) as excinfo:
        room.start("host", NOW)
    assert error_code(excinfo) == "no_players"
    join(room, "host", role="spectator")
    with pytest.raises(RoomError) as excinfo:
        room.start("host", NOW)
    assert error_code(excinfo) == "no_players"  # a spectator is not a player
    join(room, "b", "Bass")
    with pytest.raises(RoomError) as excinfo:
        room.start("b", NOW)
    assert error_code(excinfo) == "not_host"
    start_at = room.start("host", NOW)
    # 1000 ms start delay + 4 beats at 120 BPM (500 ms each).
    assert start_at == room.start_at_ms == NOW + 1000 + 2000
    assert room.phase(NOW) == "counting_in"
    assert room.phase(start_at - 1) == "counting_in"
    assert room.phase(start_at) == "playing"
    with pytest.raises(RoomError) as excinfo:
        room.start("host", NOW + 10)
    assert error_code(excinfo) == "already_started"
    assert room.start_at_ms == start_at


@pytest.mark.parametrize(
    ("tempo", "beats", "delay", "expected"),
    [
        (None, 4, 1000.0, 1000 + 4 * 625),  # the file's 96 BPM
        (60.0, 0, 1000.0, 1000),
        (90.0, 3, 250.0, 250 + 2000),
        (400.0, 16, 0.0, 16 * 150),
    ],
)
def test_start_at_uses_the_room_tempo(tempo, beats, delay, expected) -> None:
    room = make_room(
        tempo_bpm=tempo, count_in_beats=beats, settings=RoomSettings(start_delay_ms=delay)
    )
    join(room, "host")
    assert room.start("host", NOW) - NOW == expected


# ------------------------------------------------------------------------ accept


def test_accept_rules() -> None:
    room = make_room()
    join(room, "host", "Soprano")
    join(room, "fan", role="spectator")
    note = NoteEvent("on", 76, 80, NOW)
    cases = [("stranger", "not_in_room"), ("fan", "spectator_cannot_play")]
    cases.append(("host", "not_started"))
    for user, code in cases:
        with pytest.raises(RoomError) as excinfo:
            room.accept(user, [note], now_ms=NOW)
        assert error_code(excinfo) == code
    start = room.start("host", NOW)
    late = NoteEvent("on", 76, 80, start - 5001)
    with pytest.raises(RoomError) as excinfo:
        room.accept("host", [late], now_ms=start)
    assert error_code(excinfo) == "note_time_out_of_range"
    # ±max_note_skew_ms is inclusive.
    edge = [NoteEvent("on", 76, 80, start - 5000), NoteEvent("off", 76, 0, start + 5000)]
    assert [e.seq for e in room.accept("host", edge, now_ms=start)] == [1, 2]
    room.finish("host_ended", start + 100, "s1")
    with pytest.raises(RoomError) as excinfo:
        room.accept("host", [NoteEvent("on", 76, 80, start + 100)], now_ms=start + 100)
    assert error_code(excinfo) == "room_finished"


def test_refused_batch_changes_nothing() -> None:
    room = started_room("Soprano", "Alto")
    events = performance(room, "Soprano")
    sent = send(room, "host", events[:20])
    seq, length = room.seq, len(room.recording)
    scorer_before = room.live_result("host")
    # Good events with one stamped 6 s away from now in the middle.
    now = events[27].t_ms
    bad = [*events[20:26], NoteEvent("on", 60, 80, now + 6000), *events[26:28]]
    with pytest.raises(RoomError) as excinfo:
        room.accept("host", bad, now_ms=now)
    assert error_code(excinfo) == "note_time_out_of_range"
    assert room.seq == seq == sent
    assert len(room.recording) == length
    assert room.live_result("host") == scorer_before
    # The same batch without the bad event goes through, numbered right after.
    good = [*events[20:26], *events[26:28]]
    out = room.accept("host", good, now_ms=now)
    assert [e.seq for e in out] == list(range(seq + 1, seq + 1 + len(good)))
    assert all(e.user_id == "host" and e.part == "Soprano" for e in out)
    assert room.live_result("host")["notes_played"] == scorer_before["notes_played"] + sum(
        e.type == "on" for e in good
    )


def test_events_are_relayed_with_one_sequence_for_the_room() -> None:
    room = started_room("Soprano", "Bass")
    a = performance(room, "Soprano", until_ms=3000)
    b = performance(room, "Bass", until_ms=3000)
    out_a = room.accept("host", a, now_ms=a[-1].t_ms)
    out_b = room.accept("user2", b, now_ms=b[-1].t_ms)
    seqs = [e.seq for e in out_a + out_b]
    assert seqs == list(range(1, len(a) + len(b) + 1))
    assert room.recording.events == tuple(out_a + out_b)
    assert {e.part for e in out_b} == {"Bass"}


# ------------------------------------------------------------------------ finish


def test_finish_results_for_every_player() -> None:
    room = started_room("Soprano", "Alto", "Tenor", "Bass")
    start = room.start_at_ms
    alto = room.piece.part("Alto").notes
    mistakes = {"Alto": choose_mistakes(alto, dropped=2, wrong=1, seed=3)}
    users = {"Soprano": "host", "Alto": "user2", "Tenor": "user3", "Bass": "user4"}
    for k, (part, user) in enumerate(users.items()):
        until = 8000 if part == "Tenor" else None  # the tenor leaves after 8 s
        events = performance(room, part, mistakes=mistakes.get(part), seed=k, until_ms=until)
        send(room, user, events)
    assert room.leave("user3", start + 8500) is False
    end = start + room.grid_end_ms()
    assert room.finish_due_ms() == pytest.approx(end + room.settings.grace_ms, abs=1000)
    finished = room.finish("piece_ended", int(end) + 3000, "session-1")
    assert finished.session_id == "session-1" and finished.reason == "piece_ended"
    assert finished.start_at_ms == start and finished.tempo_bpm == 96.0
    assert room.phase(NOW) == "finished"
    results = {p.part: p.result for p in finished.players}
    assert set(results) == set(PARTS)
    for part, result in results.items():
        assert result["part"] == part
        assert result["notes_expected"] == len(room.piece.part(part).notes)
        assert result["notes_expected"] == result["notes_matched"] + result["missed"]
        assert result["asynchrony_ms"] is not None
    assert results["Alto"]["missed"] == 3 and results["Alto"]["wrong_pitch"] == 1
    assert results["Soprano"]["missed"] == 0 and results["Bass"]["missed"] == 0
    assert results["Tenor"]["complete"] is False  # left mid-piece
    assert results["Tenor"]["missed"] > 0
    assert all(results[p]["complete"] for p in ("Soprano", "Alto", "Bass"))
    outcome = {p.part: p for p in finished.players}
    assert outcome["Tenor"].left_at_ms == start + 8500
    assert outcome["Bass"].left_at_ms == int(end) + 3000
    assert finished.asynchrony_ms is not None and 0 < finished.asynchrony_ms < 30

    # The recording is a MIDI file with one track per player and every note played.
    recording = load_midi(finished.recording_midi)
    assert recording.title == "Tutti session"
    assert len(recording.parts) == 4
    played = {f"{u.title()} ({p})": results[p]["notes_played"] for p, u in users.items()}
    assert {part.name: len(part.notes) for part in recording.parts} == played
    assert recording.bpm == pytest.approx(96.0)

    # Finishing again changes nothing.
    assert room.finish("host_ended", int(end) + 9000, "session-2") is finished


def test_finish_before_the_start_is_refused() -> None:
    room = make_room()
    join(room, "host")
    with pytest.raises(RoomError) as excinfo:
        room.finish("host_ended", NOW, "s")
    assert error_code(excinfo) == "not_started"
    assert room.finish_due_ms() is None


def test_one_player_has_no_asynchrony() -> None:
    room = started_room("Bass")
    send(room, "host", performance(room, "Bass"))
    finished = room.finish("piece_ended", room.start_at_ms + 30_000, "s")
    assert finished.asynchrony_ms is None
    assert finished.players[0].result["asynchrony_ms"] is None
    assert finished.players[0].result["notes_matched"] == len(room.piece.part("Bass").notes)


def test_early_finish_is_incomplete() -> None:
    room = started_room("Soprano", "Bass")
    send(room, "host", performance(room, "Soprano", until_ms=4000))
    finished = room.finish("host_ended", room.start_at_ms + 5000, "s")
    assert [p.complete for p in finished.players] == [False, False]
    assert finished.spectators == ()


def test_leaving_players_and_all_left() -> None:
    room = started_room("Soprano", "Bass")
    join(room, "fan", role="spectator")
    assert room.leave("fan", NOW) is False
    assert room.leave("host", room.start_at_ms + 100) is False
    assert room.leave("user2", room.start_at_ms + 200) is True  # no player left: finish
    finished = room.finish("all_left", room.start_at_ms + 300, "s")
    assert finished.reason == "all_left"
    assert {p.user_id: p.complete for p in finished.players} == {"host": False, "user2": False}
    assert finished.recording_midi  # an empty recording still writes a file


def test_free_jam_counts_notes() -> None:
    room = make_room("free")
    join(room, "host")
    join(room, "b")
    start = room.start("host", NOW)
    assert start == NOW + 1000 + 4 * 500  # 120 BPM
    assert room.finish_due_ms() is None
    notes = [NoteEvent("on", 60 + k, 90, start + 500 * k) for k in range(5)]
    out = room.accept("b", notes, now_ms=start + 2000)
    assert all(e.part is None for e in out)
    finished = room.finish("host_ended", start + 4000, "s")
    results = {p.user_id: p.result for p in finished.players}
    assert results["b"] == {
        "notes_played": 5,
        "complete": True,
        "part": None,
        "asynchrony_ms": None,
    }
    assert results["host"]["notes_played"] == 0
    assert len(load_midi(finished.recording_midi).parts) == 1


# ------------------------------------------------------------- finish_due / tempo


def test_finish_due_waits_for_a_slow_player_up_to_a_limit() -> None:
    room = started_room("Soprano", "Bass")
    start, grid_end, grace = room.start_at_ms, room.grid_end_ms(), room.settings.grace_ms
    assert grid_end == pytest.approx(22_500.0)  # bwv66.6 is 22.5 s at 96 BPM
    assert room.finish_due_ms() == start + grid_end + grace
    # The bass plays 8 % slower; by half-way the tracker predicts a later end.
    slow = performance(room, "Bass", tempo_ratio=0.92, until_ms=12_000)
    send(room, "user2", slow)
    predicted = room._players["user2"].scorer.predicted_end_ms()
    assert predicted == pytest.approx(grid_end / 0.92, rel=0.02)
    assert room.finish_due_ms() == pytest.approx(start + predicted + grace)
    # A player who left no longer holds the room open.
    room.leave("user2", int(slow[-1].t_ms))
    assert room.finish_due_ms() == start + grid_end + grace


def test_finish_due_is_capped_by_max_drift_ratio() -> None:
    settings = RoomSettings(max_drift_ratio=1.05)
    room = started_room("Soprano", "Bass", settings=settings)
    start, grid_end, grace = room.start_at_ms, room.grid_end_ms(), settings.grace_ms
    send(room, "user2", performance(room, "Bass", tempo_ratio=0.85, until_ms=14_000))
    assert room._players["user2"].scorer.predicted_end_ms() > grid_end * 1.1
    assert room.finish_due_ms() == pytest.approx(start + grid_end * 1.05 + grace)


def test_room_tempo_scales_expected_times() -> None:
    fast = started_room("Soprano", tempo_bpm=192.0)  # twice the file's 96 BPM
    normal = started_room("Soprano")
    assert fast.time_scale == 0.5
    assert fast.grid_end_ms() == pytest.approx(normal.grid_end_ms() / 2)
    for room in (fast, normal):
        send(room, "host", performance(room, "Soprano", jitter_ms=0))
    results = [
        room.finish("piece_ended", room.start_at_ms + 30_000, "s").players[0].result
        for room in (fast, normal)
    ]
    fast_notes, normal_notes = results[0]["notes"], results[1]["notes"]
    for f, n in zip(fast_notes, normal_notes, strict=True):
        assert f["expected_ms"] == pytest.approx(n["expected_ms"] / 2, abs=1e-3)
        assert f["onset_beat"] == n["onset_beat"]
    assert results[0]["notes_matched"] == results[1]["notes_matched"] == len(fast_notes)
    assert results[0]["tempo_bpm"] == 192.0
    assert results[0]["tempo_bpm_played"] == pytest.approx(192.0, rel=1e-3)
    assert results[1]["tempo_bpm_played"] == pytest.approx(96.0, rel=1e-3)
    # The count-in is at the room tempo too: 4 beats of 312.5 ms.
    assert fast.start_at_ms - NOW == 1000 + 1250


def test_state_and_members() -> None:
    room = make_room()
    join(room, "host", "Alto")
    join(room, "fan", role="spectator")
    room.set_rtt("host", 23.456)
    room.set_rtt("nobody", 1.0)  # ignored
    state = room.state(NOW)
    assert state["phase"] == "waiting" and state["host"] == "host" and state["start_at"] is None
    assert [m["user_id"] for m in state["members"]] == ["host", "fan"]
    assert state["members"][0]["rtt_ms"] == 23.5
    assert state["members"][1]["rtt_ms"] is None
    assert {p["name"]: p["user_id"] for p in state["parts"]}["Alto"] == "host"
    assert room.live_result("fan") is None


# ------------------------------------------------------------------------ takeover


def test_rebuild_from_the_note_log_gives_the_counts_of_one_process() -> None:
    """A replica that takes a player over (its process died) rebuilds the scorer from the
    room's note log: the result is the one of the replica that had every note."""
    whole = started_room("Soprano", "Alto")
    events = performance(whole, "Soprano", mistakes=Mistakes(dropped=(3,)), seed=5)
    send(whole, "host", events)
    half = len(events) // 2
    taken = started_room("Soprano", "Alto")  # scored the first half on the dead process
    send(taken, "host", events[:half])
    log = taken.recording.events
    survivor = started_room("Soprano", "Alto")  # rejoined here and played the second half
    survivor.seq = half  # sequence numbers are the room's (from Redis), not the replica's
    send(survivor, "host", events[half:])
    assert survivor.rebuild("host", log) == len(log)
    assert survivor.rebuild("host", log) == 0  # nothing new the second time
    end = int(events[-1].t_ms) + 60_000
    assert survivor.partials(end)[0].result == whole.partials(end)[0].result


def test_a_room_takes_at_most_its_note_limit() -> None:
    room = started_room("Soprano", settings=RoomSettings(max_note_events=4))
    events = performance(room, "Soprano")[:6]
    room.accept("host", events[:4], now_ms=events[3].t_ms)
    with pytest.raises(RoomError) as info:
        room.accept("host", events[4:5], now_ms=events[4].t_ms)
    assert error_code(info) == "note_limit"
