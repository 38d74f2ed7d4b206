"""Several ``tutti serve`` processes behaving as one server (issue 4).

Two real processes share a private Redis, one PostgreSQL database and one
signing key, as deployed. Players connected to different processes share a
room: they hear each other, each is scored by their own process, and the
finished room is gathered and saved exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid

import asyncpg
import orjson
import pytest

from rooms.notes import NoteEvent
from rooms.piece import load_midi
from rooms.room import PlayerPartial, Room
from rooms.scoring import Scorer
from server.clients.bot import Style, plan_groups, play_part, send_group
from server.clients.room_client import TuttiClient
from tests.e2e.test_real_music import check_player
from tests.music import chorale_midi
from tests.play import connected, upload_piece
from tests.servers import start_redis

pytestmark = pytest.mark.realtime

TEMPO = 180.0


@pytest.fixture
def cluster(fresh_server, redis, postgres):
    """Start ``n`` processes sharing Redis, PostgreSQL and the secret key."""

    def start(n: int = 2, redis_url: str | None = None):
        database = postgres.create_database(f"cluster_{uuid.uuid4().hex[:12]}")
        shared = (
            "--redis-url",
            redis_url or redis.url,
            "--secret-key",
            "cluster-test-key",
            "--database-url",
            database,
        )
        return database, [fresh_server(*shared) for _ in range(n)]

    return start


def _pg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def heard(client, part: str) -> list[dict]:
    """Note events of ``part`` that ``client`` received."""
    single = [e for e in client.received["note"] if e["part"] == part]
    batched = [e for m in client.received["notes"] if m["part"] == part for e in m["events"]]
    return single + batched


async def test_duet_across_two_processes(cluster):
    database, (one, two) = cluster(2)
    midi = chorale_midi("bach/bwv66.6")
    piece = load_midi(midi, title="BWV 66.6 cluster duet")
    host = await connected(one.url, "host")
    info = await upload_piece(host, midi, title="BWV 66.6 cluster duet")
    room = (
        await host.call(
            "room:create",
            {"piece_id": info["id"], "mode": "duet", "tempo_bpm": TEMPO, "count_in_beats": 2},
        )
    )["room"]
    room_id = room["room_id"]
    await host.call("room:join", {"room_id": room_id, "role": "spectator"})
    soprano = await connected(one.url, "soprano player")
    bass = await connected(two.url, "bass player")  # the other process
    await soprano.call("room:join", {"room_id": room_id, "role": "player", "part": "Soprano"})
    joined = await bass.call("room:join", {"room_id": room_id, "role": "player", "part": "Bass"})
    # The bass's process sees the whole room: host, spectator and soprano from process one.
    assert {m["user_id"] for m in joined["room"]["members"]} == {
        host.user["id"],
        soprano.user["id"],
        bass.user["id"],
    }
    parts = {p["name"]: p["user_id"] for p in joined["room"]["parts"]}
    assert parts["Soprano"] == soprano.user["id"] and parts["Bass"] == bass.user["id"]
    # The soprano cannot take the bass's part from the other process either.
    taken = await connected(one.url, "latecomer")
    refused = await taken.sio.call(
        "room:join", {"room_id": room_id, "role": "player", "part": "Bass"}
    )
    assert refused["error"]["code"] in {"part_taken", "room_full"}
    await taken.disconnect()

    started = await host.call("room:start", {"room_id": room_id})
    got = await bass.wait_for("room:started", timeout=5)
    assert got["start_at"] == started["start_at"]
    time_scale = piece.bpm / TEMPO
    styles = {"Soprano": Style(jitter_ms=15, dropped=2, seed=31), "Bass": Style(wrong=1, seed=32)}
    clients = {"Soprano": soprano, "Bass": bass}
    await asyncio.gather(
        *(
            play_part(
                clients[part],
                room_id,
                piece.part(part),
                start_at=started["start_at"],
                time_scale=time_scale,
                style=style,
            )
            for part, style in styles.items()
        )
    )
    finished = [await c.wait_for("room:finished", timeout=60) for c in (host, soprano, bass)]
    assert len({f["session_id"] for f in finished}) == 1
    assert finished[0] == finished[1] == finished[2]
    results = finished[0]["results"]
    s_result = results[soprano.user["id"]]
    b_result = results[bass.user["id"]]
    assert s_result["notes_expected"] == len(piece.part("Soprano").notes)
    assert b_result["notes_expected"] == len(piece.part("Bass").notes)
    check_player(s_result, dropped=2)
    check_player(b_result, wrong=1)
    assert finished[0]["asynchrony_ms"] is not None
    assert finished[0]["reason"] == "piece_ended"

    # Each heard the other, across processes, in one per-room sequence.
    s_heard, b_heard = heard(bass, "Soprano"), heard(soprano, "Bass")
    assert len(s_heard) == 2 * s_result["notes_played"]
    assert len(b_heard) == 2 * b_result["notes_played"]
    seqs = [e["seq"] for e in s_heard + b_heard]
    assert len(seqs) == len(set(seqs))
    assert sorted(seqs) == list(range(1, len(seqs) + 1))
    # Live scores of both players reached the host on process one.
    assert {u["user_id"] for u in host.received["score:update"]} == {
        soprano.user["id"],
        bass.user["id"],
    }

    # Saved exactly once, in the shared database, with what room:finished sent.
    session_id = finished[0]["session_id"]
    db = await asyncpg.connect(_pg(database))
    try:
        sessions = await db.fetch("SELECT id FROM practice_sessions WHERE room_id = $1", room_id)
        assert [r["id"] for r in sessions] == [session_id]
        logs = await db.fetch(
            "SELECT user_id, notes_played, complete FROM practice_logs WHERE session_id = $1",
            session_id,
        )
        assert {r["user_id"]: r["notes_played"] for r in logs} == {
            soprano.user["id"]: s_result["notes_played"],
            bass.user["id"]: b_result["notes_played"],
        }
    finally:
        await db.close()
    # Either process serves the saved session and the merged recording.
    session = await bass.fetch_json(f"/api/sessions/{session_id}")
    assert session["results"] == results
    recording = load_midi(await bass.fetch_bytes(f"/api/sessions/{session_id}/recording.mid"))
    assert sorted(len(p.notes) for p in recording.parts) == sorted(
        [s_result["notes_played"], b_result["notes_played"]]
    )
    for client in (host, soprano, bass):
        await client.disconnect()


async def test_two_processes_racing_to_finish_save_one_session(cluster):
    """Both processes' finish timers fire at the same moment: one session per room."""
    database, (one, two) = cluster(2)
    midi = chorale_midi("bach/bwv66.6")
    host = await connected(one.url, "host")
    info = await upload_piece(host, midi, title="race")
    rooms = []
    pairs = []
    for _ in range(4):
        room_id = (
            await host.call(
                "room:create",
                {"piece_id": info["id"], "mode": "duet", "tempo_bpm": 400, "count_in_beats": 0},
            )
        )["room"]["room_id"]
        a = await connected(one.url, "a")
        b = await connected(two.url, "b")
        await a.call("room:join", {"room_id": room_id, "role": "player", "part": "Soprano"})
        await b.call("room:join", {"room_id": room_id, "role": "player", "part": "Bass"})
        rooms.append(room_id)
        pairs.append((a, b))
    # Half the rooms: the host ends them while both processes are about to finish.
    for room_id in rooms:
        await host.call("room:join", {"room_id": room_id, "role": "spectator"})
        await host.call("room:start", {"room_id": room_id})
    # The first two: the host ends them (process one); the others end on both processes'
    # timers at once (nobody plays, so both predict the same end).
    ends = await asyncio.gather(*(host.call("room:end", {"room_id": r}) for r in rooms[:2]))
    sessions = {}
    for room_id, (a, b) in zip(rooms, pairs, strict=True):
        fa = await a.wait_for("room:finished", timeout=60)
        fb = await b.wait_for("room:finished", timeout=60)
        assert fa == fb
        sessions[room_id] = fa["session_id"]
    for room_id, e in zip(rooms[:2], ends, strict=True):
        assert e["session_id"] == sessions[room_id]
    db = await asyncpg.connect(_pg(database))
    try:
        rows = await db.fetch(
            "SELECT room_id, id FROM practice_sessions WHERE room_id = ANY($1::text[])", rooms
        )
        assert sorted((r["room_id"], r["id"]) for r in rows) == sorted(sessions.items())
        logs = await db.fetchval(
            "SELECT count(*) FROM practice_logs WHERE session_id = ANY($1::text[])",
            list(sessions.values()),
        )
        assert logs == 2 * len(rooms)
    finally:
        await db.close()
    for client in (host, *(c for p in pairs for c in p)):
        await client.disconnect()


def test_finish_merges_partials_from_other_processes():
    """Pure: a replica that scored one player merges another process's partial for the other."""
    piece = load_midi(chorale_midi("bach/bwv66.6"))
    here = Room("r", name="n", mode="duet", host_user_id="s", piece=piece, piece_id="p")
    here.join("s", "S", role="player", part="Soprano", instrument=None, now_ms=0)
    there = Room.from_snapshot(here.snapshot(), piece)
    there.join("b", "B", role="player", part="Bass", instrument=None, now_ms=0)
    here.apply_snapshot(there.snapshot())
    start = here.start("s", 0)
    there.apply_snapshot(here.snapshot())
    assert there.start_at_ms == start
    scale = here.time_scale
    for room, user, part in ((here, "s", "Soprano"), (there, "b", "Bass")):
        for note in piece.part(part).notes:
            t = start + note.onset_s * scale * 1000
            room.accept(user, [NoteEvent("on", note.pitch, 80, t)], now_ms=t)
            room.accept(user, [NoteEvent("off", note.pitch, 0, t + 100)], now_ms=t)
    end = int(start + here.grid_end_ms() + 10)
    remote = [PlayerPartial.from_dict(p.to_dict()) for p in there.partials(end, ["b"])]
    finished = here.finish("piece_ended", end, "sess", remote=remote)
    by_user = {p.user_id: p.result for p in finished.players}
    assert by_user["s"]["notes_matched"] == len(piece.part("Soprano").notes)
    assert by_user["b"]["notes_matched"] == len(piece.part("Bass").notes)
    assert finished.asynchrony_ms == pytest.approx(0.0, abs=1e-6)
    recording = load_midi(finished.recording_midi)
    assert sorted(len(p.notes) for p in recording.parts) == sorted(
        [len(piece.part("Soprano").notes), len(piece.part("Bass").notes)]
    )


async def _duet_with_a_stopped_process(cluster, sig: int, redis=None):
    """Soprano on process one, bass on process two; mid-piece process two gets ``sig`` and
    the bass moves to process one (same user, new connection) and plays on. With ``redis``
    (a :class:`tests.servers.RedisProcess` of the test's own), Redis restarts empty at a
    quarter of the piece, before the stop.

    Returns ``(bass result, note-ons sent after the stop, piece)``.
    """
    database, (one, two) = cluster(2, redis.url if redis is not None else None)
    midi = chorale_midi("bach/bwv66.6")
    piece = load_midi(midi, title="BWV 66.6 fault")
    host = await connected(one.url, "host")
    info = await upload_piece(host, midi, title="BWV 66.6 fault")
    room_id = (
        await host.call(
            "room:create",
            {"piece_id": info["id"], "mode": "duet", "tempo_bpm": TEMPO, "count_in_beats": 2},
        )
    )["room"]["room_id"]
    await host.call("room:join", {"room_id": room_id, "role": "spectator"})
    soprano = await connected(one.url, "soprano player")
    bass = await connected(two.url, "bass player")
    await soprano.call("room:join", {"room_id": room_id, "role": "player", "part": "Soprano"})
    await bass.call("room:join", {"room_id": room_id, "role": "player", "part": "Bass"})
    started = await host.call("room:start", {"room_id": room_id})
    time_scale = piece.bpm / TEMPO
    bass_style = Style(wrong=1, seed=42)
    moved: dict = {}

    async def switch():
        two.proc.send_signal(sig)
        if sig == signal.SIGTERM:  # graceful: the process lets its clients go
            for _ in range(200):
                if not bass.sio.connected:
                    break
                await asyncio.sleep(0.02)
            assert not bass.sio.connected
        new = TuttiClient(one.url)
        new.token, new.user = bass.token, bass.user
        await new.connect(device_id="bass-again")
        await new.sync_clock(5)
        await new.call("room:join", {"room_id": room_id, "role": "player", "part": "Bass"})
        moved["client"] = new
        return new

    soprano_task = play_part(
        soprano,
        room_id,
        piece.part("Soprano"),
        start_at=started["start_at"],
        time_scale=time_scale,
        style=Style(jitter_ms=15, dropped=2, seed=41),
    )
    bass_task = play_part_switching(
        bass,
        room_id,
        piece.part("Bass"),
        start_at=started["start_at"],
        time_scale=time_scale,
        style=bass_style,
        switch_at=0.5,
        switch=switch,
        before=None if redis is None else (0.25, lambda: asyncio.to_thread(redis.restart)),
    )
    _, (sent_after, acked) = await asyncio.gather(soprano_task, bass_task)
    new_bass = moved["client"]
    finished = [await c.wait_for("room:finished", timeout=60) for c in (host, soprano, new_bass)]
    assert finished[0] == finished[1] == finished[2]
    db = await asyncpg.connect(_pg(database))
    try:
        sessions = await db.fetch("SELECT id FROM practice_sessions WHERE room_id = $1", room_id)
        assert [r["id"] for r in sessions] == [finished[0]["session_id"]]
        logs = await db.fetch(
            "SELECT user_id, result FROM practice_logs WHERE session_id = $1",
            finished[0]["session_id"],
        )
        assert len(logs) == 2
        saved = {r["user_id"]: orjson.loads(r["result"]) for r in logs}
    finally:
        await db.close()
    # The bass's saved counts are those of scoring every note the server acknowledged
    # (before and after the stop) in one go.
    expected = recomputed(piece.part("Bass"), acked, time_scale=time_scale)
    assert {k: saved[bass.user["id"]][k] for k in COUNTS} == expected
    results = finished[0]["results"]
    check_player(results[soprano.user["id"]], dropped=2)
    for client in (host, soprano, new_bass):
        await client.disconnect()
    with contextlib.suppress(Exception):
        await bass.disconnect()
    return results[bass.user["id"]], sent_after, piece


async def play_part_switching(
    client, room_id, part, *, start_at, time_scale, style, switch_at, switch, before=None
):
    """Like :func:`server.clients.bot.play_part`, but after ``switch_at`` of the note groups
    ``switch()`` gives the client to go on with (and ``before``, ``(fraction, coroutine
    function)``, is awaited at that fraction). Returns ``(note-ons sent after the switch,
    every event acknowledged)``."""
    _, groups = plan_groups(part, time_scale=time_scale, style=style)
    cut = int(len(groups) * switch_at)
    ons_after = 0
    acked = []
    for index, group in enumerate(groups):
        if before is not None and index == int(len(groups) * before[0]):
            await before[1]()
        if index == cut:
            client = await switch()
        await send_group(client, room_id, group, start_at=start_at)  # returns once acked
        acked += group
        if index >= cut:
            ons_after += sum(e.type == "on" for e in group)
    return ons_after, acked


COUNTS = ("notes_expected", "notes_played", "notes_matched", "wrong_pitch", "extra", "missed")


def recomputed(part, events, *, time_scale: float) -> dict[str, int]:
    """The counts of scoring ``events`` (planned events, ms from start_at) of ``part``
    with :class:`rooms.scoring.Scorer` directly, at the room tempo."""
    scorer = Scorer(part.notes, time_scale=time_scale, tempo_bpm=TEMPO)
    for event in events:
        if event.type == "on":
            scorer.note_on(event.pitch, event.t_ms)
        else:
            scorer.note_off(event.pitch, event.t_ms)
    result = scorer.result(final=True)
    return {k: result[k] for k in COUNTS}


async def test_sigterm_hands_the_players_scoring_over(cluster):
    """Graceful stop mid-duet: the stopping process leaves its player's scoring in Redis;
    the player rejoins on the other process and ends with exact counts."""
    bass, _, piece = await _duet_with_a_stopped_process(cluster, signal.SIGTERM)
    assert bass["notes_expected"] == len(piece.part("Bass").notes)
    check_player(bass, wrong=1)


async def test_sigkill_mid_duet_the_room_goes_on_and_is_saved_once(cluster):
    """A process dies mid-duet: its player rejoins elsewhere and finishes; the process
    that takes the player over rebuilds the scorer from the room's note log, so the saved
    counts equal those of every acknowledged note (before: the notes the dead process had
    accepted counted as missed); the room is saved once."""
    bass, sent_after, piece = await _duet_with_a_stopped_process(cluster, signal.SIGKILL)
    assert bass["notes_expected"] == len(piece.part("Bass").notes)
    assert bass["notes_played"] > sent_after  # the notes sent before the kill count
    assert bass["complete"] is True
    check_player(bass, wrong=1)


async def test_sigkill_after_a_redis_restart_keeps_the_scores(cluster, own_redis):
    """Redis restarts empty (losing the room's note log), then the bass's process is
    SIGKILLed: the process had put its notes back into the log at its first note after
    the restart, so the survivor still rebuilds the exact counts."""
    bass, sent_after, piece = await _duet_with_a_stopped_process(
        cluster, signal.SIGKILL, redis=own_redis
    )
    assert bass["notes_played"] > sent_after
    check_player(bass, wrong=1)


def _offset(entry: dict) -> tuple[int, int]:
    ms, _, n = entry["offset"].partition("-")
    return int(ms), int(n)


def last_event(client) -> dict:
    """The latest room event ``client`` received (the one with the highest offset)."""
    return max(
        (
            d
            for events in client.received.values()
            for d in events
            if isinstance(d, dict) and "offset" in d
        ),
        key=_offset,
    )


async def _reconnect(url: str, old, device_id: str):
    new = TuttiClient(url)
    new.token, new.user = old.token, old.user
    await new.connect(device_id=device_id)
    await new.sync_clock(5)
    return new


async def _duet_room(one, two, title: str):
    """Host (spectator) and soprano on process one, bass on process two; started."""
    midi = chorale_midi("bach/bwv66.6")
    piece = load_midi(midi, title=title)
    host = await connected(one.url, "host")
    info = await upload_piece(host, midi, title=title)
    room_id = (
        await host.call(
            "room:create",
            {"piece_id": info["id"], "mode": "duet", "tempo_bpm": TEMPO, "count_in_beats": 2},
        )
    )["room"]["room_id"]
    await host.call("room:join", {"room_id": room_id, "role": "spectator"})
    soprano = await connected(one.url, "soprano player")
    bass = await connected(two.url, "bass player")
    await soprano.call("room:join", {"room_id": room_id, "role": "player", "part": "Soprano"})
    await bass.call("room:join", {"room_id": room_id, "role": "player", "part": "Bass"})
    return piece, room_id, host, soprano, bass


async def test_reconnecting_player_recovers_missed_events_on_another_process(cluster):
    """The bass (process two) drops out for 1 s mid-duet and rejoins on process one with
    its last offset: it gets exactly the soprano's notes it missed, ``recovered: true``,
    and its scoring carries on (exact counts at the end)."""
    database, (one, two) = cluster(2)
    piece, room_id, host, soprano, bass = await _duet_room(one, two, "recovery duet")
    started = await host.call("room:start", {"room_id": room_id})
    time_scale = piece.bpm / TEMPO
    moved: dict = {}

    async def switch():
        await bass.disconnect()
        last = last_event(bass)  # after the disconnect: a note can arrive while it runs
        await asyncio.sleep(1.0)
        new = await _reconnect(one.url, bass, "bass-again")
        joined = await new.call(
            "room:join",
            {
                "room_id": room_id,
                "role": "player",
                "part": "Bass",
                "recover": {"epoch": last["epoch"], "offset": last["offset"]},
            },
        )
        moved.update(client=new, last=last, joined=joined)
        return new

    await asyncio.gather(
        play_part(
            soprano,
            room_id,
            piece.part("Soprano"),
            start_at=started["start_at"],
            time_scale=time_scale,
            style=Style(jitter_ms=15, dropped=2, seed=51),
        ),
        play_part_switching(
            bass,
            room_id,
            piece.part("Bass"),
            start_at=started["start_at"],
            time_scale=time_scale,
            style=Style(wrong=1, seed=52),
            switch_at=0.5,
            switch=switch,
        ),
    )
    new_bass, last, joined = moved["client"], moved["last"], moved["joined"]
    finished = [await c.wait_for("room:finished", timeout=60) for c in (host, soprano, new_bass)]
    assert finished[0] == finished[1] == finished[2]
    assert joined["recovered"] is True
    missed = joined["missed"]
    assert missed, "the soprano played during the second away"
    assert all(_offset(m["data"]) > _offset(last) for m in missed)
    # Exactly the soprano's notes between the last offset and the rejoin, as the host
    # (connected throughout) heard them.
    upto = max(_offset(m["data"]) for m in missed)

    def soprano_seqs(entries) -> list[int]:
        out = []
        for m in entries:
            if m["part"] != "Soprano":
                continue
            out += [e["seq"] for e in m["events"]] if "events" in m else [m["seq"]]
        return sorted(out)

    host_notes = [*host.received["note"], *host.received["notes"]]
    expected = soprano_seqs(e for e in host_notes if _offset(last) < _offset(e) <= upto)
    got = soprano_seqs(m["data"] for m in missed if m["event"] in {"note", "notes"})
    assert got == expected and got
    # Nothing of the bass's own notes is sent back; old + missed + live = everything once.
    assert all(
        m["data"]["user_id"] != bass.user["id"] for m in missed if m["event"] in {"note", "notes"}
    )
    live = [
        e for e in [*new_bass.received["note"], *new_bass.received["notes"]] if _offset(e) > upto
    ]
    old = [*bass.received["note"], *bass.received["notes"]]
    everything = soprano_seqs(old) + got + soprano_seqs(live)
    assert sorted(everything) == soprano_seqs(host_notes)
    # Its scoring carried on across the move: exact counts.
    results = finished[0]["results"]
    check_player(results[soprano.user["id"]], dropped=2)
    b_result = results[bass.user["id"]]
    assert b_result["notes_expected"] == len(piece.part("Bass").notes)
    check_player(b_result, wrong=1)
    db = await asyncpg.connect(_pg(database))
    try:
        sessions = await db.fetch("SELECT id FROM practice_sessions WHERE room_id = $1", room_id)
        assert [r["id"] for r in sessions] == [finished[0]["session_id"]]
    finally:
        await db.close()
    for client in (host, soprano, new_bass):
        await client.disconnect()


async def test_stale_offset_gets_the_full_state_across_processes(cluster):
    """An offset from another epoch, or one trimmed away: ``recovered: false``, full state."""
    _, (one, two) = cluster(2)
    _, room_id, host, soprano, bass = await _duet_room(one, two, "stale offsets")
    last = last_event(bass)
    for recover in (
        {"epoch": "0" * 16, "offset": last["offset"]},
        {"epoch": last["epoch"], "offset": "1-0"},  # older than the stream's bound
    ):
        listener = await connected(one.url, "listener")
        joined = await listener.call(
            "room:join", {"room_id": room_id, "role": "spectator", "recover": recover}
        )
        assert joined["recovered"] is False and joined["missed"] == []
        assert {m["user_id"] for m in joined["room"]["members"]} >= {
            host.user["id"],
            soprano.user["id"],
            bass.user["id"],
        }
        await listener.disconnect()
    # ...and a good one, from process one, of an event emitted on process two.
    listener = await connected(one.url, "listener")
    joined = await listener.call(
        "room:join",
        {
            "room_id": room_id,
            "role": "spectator",
            "recover": {"epoch": last["epoch"], "offset": last["offset"]},
        },
    )
    assert joined["recovered"] is True
    # What happened since: the listeners' joins and leaves.
    assert joined["missed"] and {m["event"] for m in joined["missed"]} == {"room:state"}
    for client in (host, soprano, bass, listener):
        await client.disconnect()


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of the test's own (the test restarts it)."""
    proc = start_redis(tmp_path / "own-redis")
    yield proc
    proc.stop()


async def test_redis_restarted_mid_duet(fresh_server, own_redis, postgres):
    """Redis restarts (empty) mid-duet: both processes reconnect, the room goes on (its
    record is restored from the processes' replicas), the duet finishes and is saved once;
    a listener rejoining with an offset from before the restart is told it lost events."""
    database = postgres.create_database(f"cluster_{uuid.uuid4().hex[:12]}")
    shared = ("--redis-url", own_redis.url, "--secret-key", "k", "--database-url", database)
    one, two = fresh_server(*shared), fresh_server(*shared)
    piece, room_id, host, soprano, bass = await _duet_room(one, two, "redis restart")
    listener = await connected(two.url, "listener")
    await listener.call("room:join", {"room_id": room_id, "role": "spectator"})
    started = await host.call("room:start", {"room_id": room_id})
    time_scale = piece.bpm / TEMPO
    end_ms = started["start_at"] + piece.duration_s * time_scale * 1000
    restarted: dict = {}

    async def restart_redis():
        await asyncio.sleep(max(0.0, (started["start_at"] - host.server_now()) / 1000) + 3.0)
        await listener.disconnect()
        restarted["last"] = last_event(listener)  # after: a note can arrive while it runs
        await asyncio.to_thread(own_redis.restart)
        restarted["at"] = host.server_now()
        await asyncio.sleep(1.5)
        back = await _reconnect(one.url, listener, "listener-again")
        last = restarted["last"]
        restarted["joined"] = await back.call(
            "room:join",
            {
                "room_id": room_id,
                "role": "spectator",
                "recover": {"epoch": last["epoch"], "offset": last["offset"]},
            },
        )
        restarted["client"] = back

    await asyncio.gather(
        restart_redis(),
        play_part(
            soprano,
            room_id,
            piece.part("Soprano"),
            start_at=started["start_at"],
            time_scale=time_scale,
            style=Style(jitter_ms=15, dropped=2, seed=61),
        ),
        play_part(
            bass,
            room_id,
            piece.part("Bass"),
            start_at=started["start_at"],
            time_scale=time_scale,
            style=Style(wrong=1, seed=62),
        ),
    )
    assert restarted["at"] < end_ms - 3000, "the restart fell in the middle of the piece"
    joined = restarted["joined"]
    assert joined["recovered"] is False and joined["missed"] == []
    assert {m["user_id"] for m in joined["room"]["members"]} >= {
        soprano.user["id"],
        bass.user["id"],
    }
    assert joined["room"]["phase"] == "playing"
    back = restarted["client"]
    finished = [await c.wait_for("room:finished", timeout=60) for c in (host, soprano, bass, back)]
    assert all(f == finished[0] for f in finished)
    results = finished[0]["results"]
    check_player(results[soprano.user["id"]], dropped=2)
    check_player(results[bass.user["id"]], wrong=1)
    # They kept hearing each other across processes after the restart.
    after = restarted["at"] + 1000
    assert any(e["t"] > after for e in heard(bass, "Soprano"))
    assert any(e["t"] > after for e in heard(soprano, "Bass"))
    seqs = [e["seq"] for e in heard(bass, "Soprano") + heard(soprano, "Bass")]
    assert len(seqs) == len(set(seqs))
    db = await asyncpg.connect(_pg(database))
    try:
        sessions = await db.fetch("SELECT id FROM practice_sessions WHERE room_id = $1", room_id)
        assert [r["id"] for r in sessions] == [finished[0]["session_id"]]
        logs = await db.fetchval(
            "SELECT count(*) FROM practice_logs WHERE session_id = $1", finished[0]["session_id"]
        )
        assert logs == 2
    finally:
        await db.close()
    for client in (host, soprano, bass, back):
        await client.disconnect()
