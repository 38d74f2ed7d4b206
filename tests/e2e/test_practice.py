"""Practice tools (issue 16) through a real server with real Socket.IO clients.

Bach's chorale BWV 66.6 (music21 corpus, 96 BPM, 9 bars of 4/4): a test
player plays one bar of the Soprano on the grid of each pass it is told by
``room:pass``. Passes are one bar at 140-150 % with one count-in beat, so a
whole loop takes a few seconds. Every bad practice request is refused with a
coded error ack and changes nothing.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from loadtests.bench.partner import heard_from
from rooms.performance import PlannedEvent
from rooms.piece import load_midi
from rooms.practice import Loop, section
from rooms.wait_mode import WaitScorer
from server.clients.bot import send_group
from server.clients.room_client import TuttiClient
from tests.music import chorale_midi
from tests.play import connected, expect_error, upload_piece

pytestmark = pytest.mark.realtime

MIDI = chorale_midi("bach/bwv66.6")
PIECE = load_midi(MIDI)


async def practice_room(host: TuttiClient, **options) -> str:
    piece = await upload_piece(host, MIDI, title="practice")
    create = {"piece_id": piece["id"], "mode": "ensemble", "count_in_beats": 1, **options}
    return (await host.call("room:create", create))["room"]["room_id"]


async def play_pass(client: TuttiClient, rid: str, bar: int, nxt: dict, *, notes: int = 0) -> None:
    """Play bar ``bar`` of the Soprano on the grid of pass ``nxt`` (``notes``: only the first n)."""
    scale = PIECE.bpm / nxt["tempo_bpm"] * 1000.0
    part = section(PIECE, Loop(bar, bar)).notes(PIECE.part("Soprano").notes)
    if notes:
        part = part[:notes]
    for onset, group in itertools.groupby(part, key=lambda n: n.onset_s):
        events = [PlannedEvent("on", n.pitch, 80, onset * scale) for n in group]
        await send_group(client, rid, events, start_at=nxt["start_at"])


async def run_passes(client: TuttiClient, rid: str, bar: int, short: set[int]) -> list[dict]:
    """Play every pass announced by ``room:pass`` (those in ``short``: one note only)."""
    announced = []
    for k in itertools.count(1):
        event = await client.wait_for(
            "room:pass", lambda e, k=k: e["next"] is not None and e["next"]["pass"] == k
        )
        announced.append(event)
        await play_pass(client, rid, bar, event["next"], notes=1 if k in short else 0)
        after = await client.wait_for(
            "room:pass", lambda e, k=k: e["previous"] is not None and e["previous"]["pass"] == k
        )
        if after["next"] is None:
            return [*announced, after]
    raise AssertionError("unreachable")


async def test_a_tempo_ladder_repeats_a_failed_pass_and_climbs_to_its_target(server):
    host = await connected(server.url, "host")
    ladder = {"start_pct": 140, "step_pct": 10, "target_pct": 150, "min_accuracy": 0.9}
    rid = await practice_room(host, loop={"from_bar": 2, "to_bar": 2, "repeats": 6}, ladder=ladder)
    joined = await host.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})
    state = joined["room"]
    assert state["tempo_pct"] == 140 and state["tempo_bpm"] == pytest.approx(96 * 1.4)
    assert state["practice"]["ladder"] == ladder
    started = await host.call("room:start", {"room_id": rid})
    events = await run_passes(host, rid, 2, short={1})
    first = events[0]
    assert first["previous"] is None and first["next"]["start_at"] == started["start_at"]
    assert first["loop"] == {"from_bar": 2, "to_bar": 2}
    assert [e["next"]["tempo_pct"] for e in events[:-1]] == [140, 140, 150]
    beat = 60000 / (96 * 1.5)
    last = events[2]["next"]
    assert last["clicks"] == [pytest.approx(last["start_at"] - beat, abs=0.1)]
    finished = await host.wait_for("room:finished", timeout=30)
    result = finished["results"][host.user["id"]]
    passes = result["passes"]
    assert [p["pass"] for p in passes] == [1, 2, 3]
    assert [p["tempo_pct"] for p in passes] == [140, 140, 150]
    assert passes[0]["accuracy"] < 0.9 <= passes[1]["accuracy"] == passes[2]["accuracy"] == 1.0
    bar = len(section(PIECE, Loop(2, 2)).notes(PIECE.part("Soprano").notes))
    assert result["notes_expected"] == 3 * bar and result["notes_matched"] == 2 * bar + 1
    assert result["tempo_pct"] == 150 and result["complete"] is True
    assert finished["reason"] == "piece_ended"

    # The saved session keeps the passes in the player's result.
    saved = await host.fetch_json(f"/api/sessions/{finished['session_id']}")
    assert "passes" in str(saved)
    await host.disconnect()


async def test_slow_down_and_loop_set_before_the_start(server):
    host = await connected(server.url, "host")
    rid = await practice_room(host)
    await host.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})
    state = (await host.call("room:tempo", {"room_id": rid, "tempo_pct": 150}))["room"]
    assert state["tempo_pct"] == 150 and state["tempo_bpm"] == 144.0
    state = (
        await host.call("room:loop", {"room_id": rid, "from_bar": 9, "to_bar": 9, "repeats": 2})
    )["room"]
    assert state["practice"]["loop"] == {"from_bar": 9, "to_bar": 9, "repeats": 2}
    assert state["tempo_bpm"] == 144.0  # the loop keeps the tempo
    await host.call("room:start", {"room_id": rid})
    events = await run_passes(host, rid, 9, short=set())
    assert [e["next"]["tempo_bpm"] for e in events[:-1]] == [144.0, 144.0]
    finished = await host.wait_for("room:finished", timeout=30)
    result = finished["results"][host.user["id"]]
    assert [(p["tempo_pct"], p["accuracy"]) for p in result["passes"]] == [(150, 1.0)] * 2
    assert result["passes"][0]["result"]["tempo_pct"] == 150
    await host.disconnect()


async def test_every_bad_practice_request_is_refused_and_changes_nothing(server):
    host = await connected(server.url, "host")
    other = await connected(server.url, "other")
    piece = await upload_piece(host, MIDI, title="practice")
    create = {"piece_id": piece["id"], "mode": "ensemble"}
    ladder = {"start_pct": 70, "step_pct": 5, "target_pct": 100, "min_accuracy": 0.9}
    bad_creates = [
        ({"tempo_pct": 10}, "out_of_range"),
        ({"tempo_pct": 25, "tempo_bpm": 40}, "invalid_tempo"),  # 10 BPM
        ({"loop": {"from_bar": 0, "to_bar": 2}}, "invalid_bars"),
        ({"loop": {"from_bar": 5, "to_bar": 10}}, "invalid_bars"),
        ({"loop": {"from_bar": 1, "to_bar": 2, "repeats": 0}}, "invalid_repeats"),
        ({"ladder": {**ladder, "target_pct": 60}}, "invalid_ladder"),
        ({"ladder": {**ladder, "min_accuracy": 1.5}}, "invalid_ladder"),
        ({"ladder": {**ladder, "step_pct": "5"}}, "wrong_type"),
        ({"ladder": {"start_pct": 70}}, "missing_field"),
        ({"loop": {"from_bar": 1, "bars": 2}}, "unknown_field"),
        ({"wait": True, "loop": {"from_bar": 1}}, "practice_conflict"),
        ({"wait": "yes"}, "wrong_type"),
    ]
    for extra, code in bad_creates:
        await expect_error(host, "room:create", {**create, **extra}, code)
    free = {"piece_id": None, "mode": "free", "loop": {"from_bar": 1}}
    await expect_error(host, "room:create", free, "practice_in_free_jam")
    free = {"piece_id": None, "mode": "free", "wait": True}
    await expect_error(host, "room:create", free, "practice_in_free_jam")

    rid = (await host.call("room:create", {**create, "tempo_pct": 80}))["room"]["room_id"]
    await host.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})

    async def state() -> dict:
        look = await connected(server.url, "look")
        room = (await look.call("room:join", {"room_id": rid, "role": "spectator"}))["room"]
        await look.disconnect()
        members = [(m["display_name"], m["part"], m["bot"]) for m in room["members"]]
        return {
            **{k: room[k] for k in ("tempo_bpm", "tempo_pct", "practice")},
            "members": [m for m in members if m[0] != "look"],
        }

    before = await state()
    loop = {"room_id": rid, "from_bar": 1, "to_bar": 2, "repeats": 2}
    await expect_error(host, "room:loop", {**loop, "room_id": "nope"}, "unknown_room")
    await expect_error(host, "room:tempo", {"room_id": "nope", "tempo_pct": 90}, "unknown_room")
    await expect_error(other, "room:loop", loop, "not_host")
    await expect_error(other, "room:tempo", {"room_id": rid, "tempo_pct": 90}, "not_host")
    await expect_error(host, "room:tempo", {"room_id": rid, "tempo_pct": 151}, "out_of_range")
    await expect_error(host, "room:loop", {**loop, "to_bar": 10}, "invalid_bars")
    await expect_error(host, "room:loop", {**loop, "from_bar": 3}, "invalid_bars")
    await expect_error(host, "room:loop", {**loop, "repeats": 101}, "invalid_repeats")
    await expect_error(
        host, "room:loop", {**loop, "ladder": {**ladder, "step_pct": 0}}, "invalid_ladder"
    )
    await expect_error(host, "room:loop", {"from_bar": 1}, "missing_field")
    assert await state() == before

    await host.call("room:loop", loop)
    looped = await state()
    await host.call("room:start", {"room_id": rid})
    await expect_error(host, "room:loop", loop, "already_started")
    await expect_error(host, "room:tempo", {"room_id": rid, "tempo_pct": 90}, "already_started")
    after = await state()
    assert {k: after[k] for k in ("tempo_bpm", "tempo_pct")} == {
        k: looped[k] for k in ("tempo_bpm", "tempo_pct")
    }
    assert after["practice"]["loop"] == looped["practice"]["loop"]
    await host.call("room:end", {"room_id": rid})
    for client in (host, other):
        await client.disconnect()
    await asyncio.sleep(0)


async def test_wait_mode_waits_for_the_right_note_and_the_partner_waits_too(server):
    host = await connected(server.url, "host")
    rid = await practice_room(host, wait=True)
    await host.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})
    await host.call("room:add_partner", {"room_id": rid, "part": "Bass", "follow": True})
    other = await connected(server.url, "other")
    await other.call("room:join", {"room_id": rid, "role": "player", "part": "Alto"})
    await expect_error(host, "room:start", {"room_id": rid}, "wait_mode_solo")
    await other.call("room:leave", {"room_id": rid})
    await host.call("room:start", {"room_id": rid})
    partner = f"partner-{rid}"
    chords = WaitScorer(PIECE.part("Soprano").notes, time_scale=1.0, tempo_bpm=96).chords
    first = await host.wait_for("room:wait", lambda e: e["chord"] == 0)
    assert first["pitches"] == list(chords[0].pitches) and first["waited_ms"] is None
    played = []
    for k, chord in enumerate(chords):
        await host.wait_for("room:wait", lambda e, k=k: e["chord"] == k)
        (pitch,) = chord.pitches
        if k == 3:
            await asyncio.sleep(1.5)  # the room waits here
        for wrong in (pitch + 1, pitch + 2):
            await host.call("note", note(rid, host, wrong))
        right = note(rid, host, pitch)
        await host.call("note", right)
        played.append(right["t"])
    last = await host.wait_for("room:wait", lambda e: e["chord"] == len(chords))
    assert last["pitches"] == [] and "due_at" not in last
    finished = await host.wait_for("room:finished", timeout=30)
    result = finished["results"][host.user["id"]]
    assert result["mode"] == "wait" and result["complete"] is True
    n = len(chords)
    assert (result["notes_matched"], result["wrong_pitch"], result["missed"]) == (n, 2 * n, 0)
    assert result["pitch_accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    assert result["waits_ms"][3] > 500 and result["wait_max_ms"] == max(result["waits_ms"])
    # The partner played all its part, never before the human had played where it was.
    ons = [e for e in heard_from(host, partner) if e["type"] == "on"]
    assert len(ons) == len(PIECE.part("Bass").notes)
    bass = PIECE.part("Bass").notes
    for chord, t in zip(chords, played, strict=True):
        before = sum(1 for e in ons if e["t"] < t)
        assert before <= sum(1 for n in bass if n.onset_tick < chord.tick)
    assert finished["partner"]["part"] == "Bass"
    for client in (host, other):
        await client.disconnect()


def note(rid: str, client: TuttiClient, pitch: int) -> dict:
    return {"room_id": rid, "type": "on", "pitch": pitch, "velocity": 80, "t": client.server_now()}


async def test_play_along_with_a_recorded_take(server):
    host = await connected(server.url, "host")
    piece = await upload_piece(host, MIDI, title="take")
    create = {"piece_id": piece["id"], "mode": "duet", "count_in_beats": 0}
    # Session 1: the host plays the Soprano's first four notes on the grid, then ends.
    rid = (await host.call("room:create", create))["room"]["room_id"]
    await host.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})
    start = (await host.call("room:start", {"room_id": rid}))["start_at"]
    soprano = sorted(PIECE.part("Soprano").notes, key=lambda n: (n.onset_tick, n.pitch))[:4]
    for n in soprano:
        group = [PlannedEvent("on", n.pitch, 80, n.onset_s * 1000)]
        await send_group(host, rid, group, start_at=start)
    await asyncio.sleep(0.3)
    session = (await host.call("room:end", {"room_id": rid}))["session_id"]
    await host.wait_for("room:finished", lambda e: e["room_id"] == rid)

    # Session 2, at 150 %: the take plays the Soprano while the host plays the Alto.
    rid = (await host.call("room:create", {**create, "tempo_pct": 150}))["room"]["room_id"]
    await host.call("room:join", {"room_id": rid, "role": "player", "part": "Alto"})
    take = {"room_id": rid, "from_session": session, "user_id": host.user["id"], "follow": False}
    added = await host.call("room:add_partner", take)
    assert added["partner"]["part"] == "Soprano" and added["partner"]["follow"] is False
    assert added["partner"]["take"]["notes"] == 4
    start = (await host.call("room:start", {"room_id": rid}))["start_at"]
    partner = added["partner"]["user_id"]
    await host.wait_for("note", lambda e: len(heard_from(host, partner)) >= 8, timeout=10)
    ons = [e for e in heard_from(host, partner) if e["type"] == "on"]
    assert [e["pitch"] for e in ons] == [n.pitch for n in soprano]
    for e, n in zip(ons, soprano, strict=True):  # its recorded timing, at the new tempo
        assert e["t"] - start == pytest.approx(n.onset_s * 1000 / 1.5, abs=2)
    await host.call("room:end", {"room_id": rid})
    finished = await host.wait_for("room:finished", lambda e: e["room_id"] == rid)
    assert finished["partner"]["take"]["session_id"] == session

    # Refusals: someone who was not in session 1, an unknown session, a non-player.
    stranger = await connected(server.url, "stranger")
    rid = (await stranger.call("room:create", create))["room"]["room_id"]
    await stranger.call("room:join", {"room_id": rid, "role": "player", "part": "Alto"})
    take = {"room_id": rid, "from_session": session, "user_id": host.user["id"]}
    await expect_error(stranger, "room:add_partner", take, "forbidden")
    await expect_error(stranger, "room:add_partner", {**take, "from_session": "nope"}, "not_found")
    await expect_error(stranger, "room:add_partner", {**take, "room_id": "nope"}, "unknown_room")
    await expect_error(host, "room:add_partner", take, "not_host")
    await expect_error(
        stranger, "room:add_partner", {"room_id": rid, "from_session": session}, "invalid_value"
    )
    look = await connected(server.url, "look")
    state = (await look.call("room:join", {"room_id": rid, "role": "spectator"}))["room"]
    assert not [m for m in state["members"] if m["bot"]]  # nothing changed
    for client in (host, stranger, look):
        await client.disconnect()


@pytest.mark.parametrize("follow", [False, True])
async def test_a_computer_partner_plays_every_pass_of_a_loop(server, follow):
    host = await connected(server.url, "host")
    rid = await practice_room(host, tempo_pct=150, loop={"from_bar": 2, "to_bar": 2, "repeats": 2})
    await host.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})
    added = await host.call("room:add_partner", {"room_id": rid, "part": "Bass", "follow": follow})
    partner = added["partner"]["user_id"]
    await host.call("room:start", {"room_id": rid})
    events = await run_passes(host, rid, 2, short=set())
    finished = await host.wait_for("room:finished", timeout=30)
    bass = section(PIECE, Loop(2, 2)).notes(PIECE.part("Bass").notes)
    heard = heard_from(host, partner)
    ons = [e for e in heard if e["type"] == "on"]
    assert len(ons) == 2 * len(bass)
    passes = [e["next"] for e in events[:-1]]
    for p, played in zip(passes, (ons[: len(bass)], ons[len(bass) :]), strict=True):
        # Each pass's notes, in that pass (the first on its first beat).
        assert [e["pitch"] for e in played] == [n.pitch for n in bass]
        assert all(p["start_at"] - 100 <= e["t"] <= p["end_at"] for e in played)
    assert sum(1 if e["type"] == "on" else -1 for e in heard) == 0  # every note released
    result = finished["partner"]["result"]
    assert [q["pass"] for q in result["passes"]] == [1, 2]
    assert [p["accuracy"] for p in finished["results"][host.user["id"]]["passes"]] == [1.0, 1.0]
    await host.disconnect()


async def test_slowing_down_a_wait_mode_room_keeps_wait_mode(server):
    # room:tempo and room:loop used to rebuild the settings without `wait`: a host who
    # slowed a wait-mode room down silently lost wait mode, and a loop replaced it.
    host = await connected(server.url, "host")
    rid = await practice_room(host, wait=True)
    await host.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})
    state = (await host.call("room:tempo", {"room_id": rid, "tempo_pct": 50}))["room"]
    assert state["practice"]["wait"] is True and state["tempo_pct"] == 50
    loop = {"room_id": rid, "from_bar": 1, "to_bar": 2, "repeats": 2}
    await expect_error(host, "room:loop", loop, "practice_conflict")
    look = await connected(server.url, "look")
    room = (await look.call("room:join", {"room_id": rid, "role": "spectator"}))["room"]
    assert room["practice"]["wait"] is True and room["practice"]["loop"] is None
    for client in (host, look):
        await client.disconnect()
