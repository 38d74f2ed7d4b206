"""Persistence: migrations, SQLite settings, saving finished rooms, pieces.

Everything runs against a real SQLite file in ``tmp_path`` through the real
engine, migrations and repository; no mocks.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import mido
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from rooms.finished import FinishedRoom, PlayerOutcome
from server.db import finished_rooms
from server.db import repository as repo
from server.db.engine import (
    alembic_config,
    make_engine,
    make_sessionmaker,
    sqlite_url,
    upgrade_database,
)
from server.db.models import (
    Base,
    PracticeLog,
    PracticeSession,
    SessionRecording,
    SheetMusic,
    User,
)

HEAD = "0006_notation_starter"  # the newest migration

START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z


# --------------------------------------------------------------------------- helpers


def make_midi(
    tracks: list[list[tuple[int, int, int]]],
    *,
    bpm: float = 120.0,
    time_signature: tuple[int, int] = (4, 4),
    ticks_per_beat: int = 480,
    names: list[str] | None = None,
) -> bytes:
    """A type-1 Standard MIDI File: a conductor track, then one track per part.

    Each part is a list of ``(pitch, onset_tick, duration_ticks)``.
    """
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    conductor.append(
        mido.MetaMessage(
            "time_signature", numerator=time_signature[0], denominator=time_signature[1], time=0
        )
    )
    midi.tracks.append(conductor)
    for i, notes in enumerate(tracks):
        events: list[tuple[int, int, mido.Message]] = []
        for pitch, onset, duration in notes:
            events.append((onset, 1, mido.Message("note_on", note=pitch, velocity=80, channel=i)))
            events.append(
                (onset + duration, 0, mido.Message("note_off", note=pitch, velocity=0, channel=i))
            )
        events.sort(key=lambda e: (e[0], e[1]))
        track = mido.MidiTrack()
        if names:
            track.append(mido.MetaMessage("track_name", name=names[i], time=0))
        track.append(mido.Message("program_change", program=0, channel=i, time=0))
        now = 0
        for tick, _, msg in events:
            track.append(msg.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    buf = io.BytesIO()
    midi.save(file=buf)
    return buf.getvalue()


RECORDING = make_midi([[(60, 0, 240), (64, 240, 240)], [(48, 0, 480), (52, 480, 480)]])
RECORDING_EVENTS = 8  # four notes, each a note-on and a note-off


def scored_result(*, matched: int, expected: int = 8, complete: bool = True) -> dict[str, Any]:
    """A result dict shaped like ``rooms.scoring.Scorer.result(final=True)``."""
    return {
        "notes_expected": expected,
        "notes_played": matched + 1,
        "notes_matched": matched,
        "wrong_pitch": 1,
        "extra": 0,
        "missed": expected - matched,
        "accuracy": round(matched / expected, 6),
        "precision": 0.875,
        "recall": 0.75,
        "f1": 0.807692,
        "onset_mean_ms": 12.5,
        "onset_median_ms": 10.0,
        "onset_std_ms": 7.071,
        "judgements": {"perfect": 2, "good": matched - 2, "miss": expected - matched},
        "tempo_bpm": 96.0,
        "tempo_bpm_played": 95.2,
        "complete": complete,
        "notes": [
            {
                "onset_beat": 0.0,
                "pitch": 60,
                "expected_ms": 0.0,
                "played_ms": 12.5,
                "deviation_ms": 12.5,
                "judgement": "perfect",
            },
            {
                "onset_beat": 1.0,
                "pitch": 62,
                "expected_ms": 625.0,
                "played_ms": None,
                "deviation_ms": None,
                "judgement": "miss",
                "played_pitch": 63,
            },
        ],
        "part": "Right hand",
        "asynchrony_ms": 18.25,
    }


def outcome(
    user_id: str,
    *,
    part: str | None = "Right hand",
    complete: bool = True,
    result: dict[str, Any] | None = None,
    joined_at_ms: int = START_MS - 30_000,
    left_at_ms: int = START_MS + 60_000,
) -> PlayerOutcome:
    return PlayerOutcome(
        user_id=user_id,
        part=part,
        instrument="piano",
        joined_at_ms=joined_at_ms,
        left_at_ms=left_at_ms,
        complete=complete,
        result=result if result is not None else scored_result(matched=6, complete=complete),
    )


def finished_room(
    players: list[PlayerOutcome],
    *,
    session_id: str = "sess-1",
    host: str | None = None,
    mode: str = "duet",
    piece_id: str | None = None,
    spectators: tuple[str, ...] = (),
    recording: bytes = RECORDING,
) -> FinishedRoom:
    return FinishedRoom(
        session_id=session_id,
        room_id="room-1",
        name="Thursday duet",
        mode=mode,
        piece_id=piece_id,
        piece_title=None if mode == "free" else "Minuet in G",
        tempo_bpm=96.0,
        piece_bpm=None if mode == "free" else 120.0,
        host_user_id=host or players[0].user_id,
        start_at_ms=START_MS,
        ended_at_ms=START_MS + 60_000,
        reason="piece_ended",
        players=tuple(players),
        spectators=spectators,
        asynchrony_ms=18.25 if len(players) >= 2 else None,
        recording_midi=recording,
    )


async def count(sessionmaker, model) -> int:
    async with sessionmaker() as db:
        return await db.scalar(select(func.count()).select_from(model))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "data" / "tutti.db"  # "data" does not exist yet


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request, db_path):
    """A migrated database: a SQLite file, or a fresh database on a real PostgreSQL."""
    if request.param == "sqlite":
        url = sqlite_url(db_path)
    else:
        url = request.getfixturevalue("postgres").create_database(f"t_{uuid.uuid4().hex[:16]}")
    eng = make_engine(url)
    await upgrade_database(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
async def sqlite_engine(db_path):
    eng = make_engine(sqlite_url(db_path))
    await upgrade_database(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessionmaker(engine):
    return make_sessionmaker(engine)


@pytest.fixture
async def users(sessionmaker) -> list[str]:
    """Three guest users (ids), committed."""
    async with sessionmaker.begin() as db:
        rows = [await repo.create_guest(db, name) for name in ("Ada", "Ben", "Cleo")]
    return [u.id for u in rows]


# --------------------------------------------------------------------------- engine & migrations


async def test_migrations_create_every_table(engine):
    def tables(conn):
        return set(inspect(conn).get_table_names())

    async with engine.connect() as conn:
        names = await conn.run_sync(tables)
        version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    assert names == set(Base.metadata.tables) | {"alembic_version"}
    assert names >= {
        "users",
        "sheet_music",
        "practice_sessions",
        "practice_logs",
        "session_recordings",
    }
    assert version == HEAD


async def test_migrated_schema_matches_models(engine):
    def diff(conn):
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_sqlite_pragmas_on_every_connection(sqlite_engine, db_path):
    assert db_path.exists()  # the parent folder was created
    for _ in range(2):  # two distinct pooled connections
        async with sqlite_engine.connect() as c1, sqlite_engine.connect() as c2:
            for conn in (c1, c2):
                assert (await conn.scalar(text("PRAGMA journal_mode"))) == "wal"
                assert (await conn.scalar(text("PRAGMA foreign_keys"))) == 1
                assert (await conn.scalar(text("PRAGMA busy_timeout"))) == 5000
                assert (await conn.scalar(text("PRAGMA synchronous"))) == 1  # NORMAL


async def test_upgrade_twice_is_harmless(engine, sessionmaker, users):
    await upgrade_database(engine)
    await upgrade_database(engine)
    async with engine.connect() as conn:
        version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        versions = await conn.scalar(text("SELECT count(*) FROM alembic_version"))
    assert (version, versions) == (HEAD, 1)
    assert await count(sessionmaker, User) == len(users)


async def test_downgrade_to_base_and_up_again(engine):
    def down(conn):
        command.downgrade(alembic_config(conn), "base")

    def tables(conn):
        return set(inspect(conn).get_table_names())

    async with engine.begin() as conn:
        await conn.run_sync(down)
    async with engine.connect() as conn:
        assert await conn.run_sync(tables) == {"alembic_version"}
    await upgrade_database(engine)
    async with engine.connect() as conn:
        assert await conn.run_sync(tables) == set(Base.metadata.tables) | {"alembic_version"}


async def test_naive_datetimes_are_refused(sessionmaker):
    with pytest.raises(StatementError, match="naive datetime"):
        async with sessionmaker.begin() as db:
            db.add(User(id="x", display_name="X", created_at=datetime(2025, 1, 1)))


# --------------------------------------------------------------------------- users


async def test_create_guest_and_get_user(sessionmaker):
    async with sessionmaker.begin() as db:
        user = await repo.create_guest(db, "  Ada  ")
    assert len(user.id) == 32 and user.is_guest and user.display_name == "Ada"
    async with sessionmaker() as db:
        again = await repo.get_user(db, user.id)
        assert again is not None and again.display_name == "Ada"
        assert again.created_at.tzinfo is not None
        assert again.created_at.utcoffset().total_seconds() == 0
        assert await repo.get_user(db, "nobody") is None
    async with sessionmaker() as db:
        with pytest.raises(ValueError):
            await repo.create_guest(db, "   ")


# --------------------------------------------------------------------------- finished rooms


async def test_save_finished_room_writes_session_logs_and_recording(sessionmaker, users):
    ada, ben, cleo = users
    players = [
        outcome(ada, part="Right hand", result=scored_result(matched=6)),
        outcome(ben, part="Left hand", result=scored_result(matched=7)),
    ]
    finished = finished_room(players, spectators=(cleo,))
    assert await finished_rooms.save_finished_room(sessionmaker, finished) is True

    async with sessionmaker() as db:
        saved = await finished_rooms.get_session(db, "sess-1")
        recording = await finished_rooms.get_recording(db, "sess-1")
        rec_row = await db.get(SessionRecording, "sess-1")
        session_row = await db.get(PracticeSession, "sess-1")
    assert saved is not None
    json.dumps(saved)  # JSON-ready
    assert saved["session_id"] == "sess-1"
    assert saved["room_id"] == "room-1"
    assert saved["mode"] == "duet"
    assert saved["piece_title"] == "Minuet in G"
    assert saved["tempo_bpm"] == 96.0
    assert saved["end_reason"] == "piece_ended"
    assert saved["duration_seconds"] == 60.0
    assert saved["asynchrony_ms"] == 18.25
    assert saved["start_time"] == "2025-01-01T00:00:00+00:00"
    assert saved["end_time"] == "2025-01-01T00:01:00+00:00"
    assert session_row.start_time == datetime(2025, 1, 1, tzinfo=UTC)
    assert saved["participants"] == [
        {"user_id": ada, "part": "Right hand", "role": "player", "complete": True},
        {"user_id": ben, "part": "Left hand", "role": "player", "complete": True},
        {"user_id": cleo, "part": None, "role": "spectator", "complete": None},
    ]
    assert saved["results"] == {p.user_id: p.result for p in players}
    assert len(saved["logs"]) == 2

    log = next(entry for entry in saved["logs"] if entry["user_id"] == ada)
    assert log["session_id"] == "sess-1"
    assert log["work_title"] == "Minuet in G"
    assert log["part"] == "Right hand"
    assert log["instrument"] == "piano"
    assert log["tempo_target"] == 96.0
    assert log["tempo_practiced"] == 95.2
    assert log["notes_played"] == 7
    assert log["notes_correct"] == 6
    assert log["accuracy_percentage"] == pytest.approx(75.0)
    assert log["complete"] is True
    # the lobby time before the start does not count as practice
    assert log["start_time"] == "2025-01-01T00:00:00+00:00"
    assert log["duration_seconds"] == 60.0
    assert log["result"] == players[0].result

    assert recording == RECORDING
    assert rec_row.event_count == RECORDING_EVENTS


async def test_failure_in_the_middle_writes_nothing(sessionmaker, users):
    ada = users[0]
    # the second player's user id is not in users: the FK fails on its log row,
    # after the session row and the first log row were already inserted
    finished = finished_room([outcome(ada), outcome("no-such-user", part="Left hand")])
    with pytest.raises(IntegrityError):
        await finished_rooms.save_finished_room(sessionmaker, finished)
    for model in (PracticeSession, PracticeLog, SessionRecording):
        assert await count(sessionmaker, model) == 0
    async with sessionmaker() as db:
        assert await finished_rooms.get_session(db, "sess-1") is None
        assert await finished_rooms.get_recording(db, "sess-1") is None
    # and the database is still usable: a good save goes through
    assert (
        await finished_rooms.save_finished_room(sessionmaker, finished_room([outcome(ada)])) is True
    )


async def test_unknown_host_is_refused(sessionmaker, users):
    finished = finished_room([outcome(users[0])], host="ghost")
    with pytest.raises(IntegrityError):
        await finished_rooms.save_finished_room(sessionmaker, finished)
    assert await count(sessionmaker, PracticeSession) == 0


async def test_saving_twice_writes_once(sessionmaker, users):
    ada, ben, _ = users
    finished = finished_room([outcome(ada), outcome(ben, part="Left hand")])
    assert await finished_rooms.save_finished_room(sessionmaker, finished) is True
    assert await finished_rooms.save_finished_room(sessionmaker, finished) is False
    # same id, different content: still the first one stays
    other = finished_room([outcome(ada, result=scored_result(matched=1))])
    assert await finished_rooms.save_finished_room(sessionmaker, other) is False
    assert await count(sessionmaker, PracticeSession) == 1
    assert await count(sessionmaker, PracticeLog) == 2
    assert await count(sessionmaker, SessionRecording) == 1
    async with sessionmaker() as db:
        saved = await finished_rooms.get_session(db, "sess-1")
    assert saved["results"][ada] == finished.players[0].result


async def test_concurrent_saves_write_once(engine, users):
    ada, ben, _ = users
    finished = finished_room([outcome(ada), outcome(ben, part="Left hand")])
    makers = [make_sessionmaker(engine), make_sessionmaker(engine)]
    results = await asyncio.gather(
        *(finished_rooms.save_finished_room(m, finished) for m in makers)
    )
    assert sorted(results) == [False, True]
    assert await count(makers[0], PracticeLog) == 2


async def test_incomplete_player_log_is_not_complete(sessionmaker, users):
    ada, ben, _ = users
    leaver = outcome(
        ben,
        part="Left hand",
        complete=False,
        result=scored_result(matched=3, complete=False),
        left_at_ms=START_MS + 20_000,
    )
    await finished_rooms.save_finished_room(sessionmaker, finished_room([outcome(ada), leaver]))
    async with sessionmaker() as db:
        saved = await finished_rooms.get_session(db, "sess-1")
    logs = {entry["user_id"]: entry for entry in saved["logs"]}
    assert logs[ada]["complete"] is True
    assert logs[ben]["complete"] is False
    assert logs[ben]["duration_seconds"] == 20.0
    assert logs[ben]["end_time"] == "2025-01-01T00:00:20+00:00"
    assert {p["user_id"]: p["complete"] for p in saved["participants"]} == {
        ada: True,
        ben: False,
    }


@pytest.mark.parametrize(
    ("n_players", "activity"),
    [(1, "repertoire"), (2, "ensemble_reading"), (3, "ensemble_reading")],
)
async def test_activity_type(sessionmaker, users, n_players, activity):
    parts = ["Soprano", "Alto", "Tenor"]
    players = [outcome(u, part=parts[i]) for i, u in enumerate(users[:n_players])]
    mode = "ensemble" if n_players > 2 else "duet"
    await finished_rooms.save_finished_room(sessionmaker, finished_room(players, mode=mode))
    async with sessionmaker() as db:
        saved = await finished_rooms.get_session(db, "sess-1")
    assert [entry["activity_type"] for entry in saved["logs"]] == [activity] * n_players


async def test_free_mode_result_without_scoring_keys(sessionmaker, users):
    ada = users[0]
    free = {"notes_played": 42, "complete": True, "part": None, "asynchrony_ms": None}
    finished = finished_room([outcome(ada, part=None, result=free)], mode="free", recording=b"")
    assert await finished_rooms.save_finished_room(sessionmaker, finished) is True
    async with sessionmaker() as db:
        saved = await finished_rooms.get_session(db, "sess-1")
        assert await finished_rooms.get_recording(db, "sess-1") is None  # nothing was recorded
    (log,) = saved["logs"]
    assert log["activity_type"] == "repertoire"
    assert log["notes_played"] == 42
    assert log["notes_correct"] is None
    assert log["accuracy_percentage"] is None
    assert log["tempo_practiced"] is None
    assert log["work_title"] is None and log["piece_id"] is None
    assert saved["results"] == {ada: free}


async def test_get_session_unknown(sessionmaker):
    async with sessionmaker() as db:
        assert await finished_rooms.get_session(db, "nope") is None
        assert await finished_rooms.get_recording(db, "nope") is None


# --------------------------------------------------------------------------- pieces

# Two hands of a little piece at 100 BPM in 3/4: right hand in quarters around
# C5, left hand in half notes around C3.
RIGHT = [(72 + (i % 5), i * 480, 480) for i in range(12)]
LEFT = [(48 + (i % 3) * 4, i * 960, 960) for i in range(6)]


async def test_add_piece_from_a_real_midi_file(sessionmaker, users, tmp_path):
    from rooms.piece import load_midi

    path = tmp_path / "minuet.mid"
    path.write_bytes(
        make_midi([RIGHT, LEFT], bpm=100, time_signature=(3, 4), names=["Right", "Left"])
    )
    data = path.read_bytes()
    piece = load_midi(data, title="Minuet")

    async with sessionmaker.begin() as db:
        row = await repo.add_piece(
            db,
            piece=piece,
            midi_data=data,
            title=None,
            composer="Petzold",
            source_type="midi_upload",
            split_pitch=None,
            uploaded_by=users[0],
        )
    assert 1 <= row.difficulty <= 10

    async with sessionmaker() as db:
        listed = await repo.list_pieces(db)
    assert [p.id for p in listed] == [row.id]
    info = repo.piece_to_dict(listed[0])
    json.dumps(info)
    assert "midi_data" not in info
    assert info["title"] == "Minuet"
    assert info["composer"] == "Petzold"
    assert info["source_type"] == "midi_upload"
    assert info["split_pitch"] is None
    assert info["tempo_bpm"] == pytest.approx(100.0)
    assert info["duration_seconds"] == pytest.approx(piece.duration_s)
    assert info["time_signature"] == "3/4"
    assert info["ticks_per_beat"] == 480
    assert 1 <= info["difficulty"] <= 10
    assert datetime.fromisoformat(info["created_at"]).utcoffset().total_seconds() == 0
    assert len(info["parts"]) == len(piece.parts)
    by_notes = sorted(info["parts"], key=lambda p: p["notes"])
    assert [p["notes"] for p in by_notes] == [len(LEFT), len(RIGHT)]
    assert (by_notes[1]["lowest_pitch"], by_notes[1]["highest_pitch"]) == (72, 76)
    assert (by_notes[0]["lowest_pitch"], by_notes[0]["highest_pitch"]) == (48, 56)
    assert set(by_notes[0]) == {
        "name",
        "notes",
        "channel",
        "program",
        "lowest_pitch",
        "highest_pitch",
    }

    async with sessionmaker() as db:
        (listed_row,) = await repo.list_pieces(db)  # midi_data deferred in this session...
        got = await repo.get_piece(db, row.id)  # ...and loaded here
        assert got is listed_row and got.midi_data == data
        assert await repo.get_piece(db, "nope") is None


async def test_split_piece_and_session_refer_to_it(sessionmaker, users):
    from rooms.piece import Piece, load_midi

    # one track spanning both hands, split at middle C
    data = make_midi([sorted(RIGHT + LEFT, key=lambda n: n[1])], bpm=100)
    piece = load_midi(data, title="Minuet").split_hands(60)
    assert isinstance(piece, Piece)
    async with sessionmaker.begin() as db:
        row = await repo.add_piece(
            db,
            piece=piece,
            midi_data=data,
            title="Minuet (hands)",
            composer=None,
            source_type="cli_import",
            split_pitch=60,
            uploaded_by=None,
        )
    info = repo.piece_to_dict(row)
    assert info["split_pitch"] == 60
    assert info["title"] == "Minuet (hands)"
    assert {p["name"]: p["notes"] for p in info["parts"]} == {
        "right": len(RIGHT),
        "left": len(LEFT),
    }

    finished = finished_room([outcome(users[0])], piece_id=row.id)
    assert await finished_rooms.save_finished_room(sessionmaker, finished) is True
    async with sessionmaker() as db:
        saved = await finished_rooms.get_session(db, "sess-1")
    assert saved["piece_id"] == row.id
    assert saved["logs"][0]["piece_id"] == row.id


async def test_difficulty_grows_with_density_and_range():
    from rooms.piece import load_midi

    sparse = load_midi(make_midi([[(60 + i % 3, i * 960, 960) for i in range(8)]], bpm=60))
    dense = load_midi(
        make_midi(
            [[(36 + (i * 7) % 60, i * 120, 120) for i in range(256)]], bpm=160
        )  # 16ths at 160 BPM over five octaves
    )
    easy, hard = repo.estimate_difficulty(sparse), repo.estimate_difficulty(dense)
    assert 1 <= easy < hard <= 10
    # A single line has no polyphony or hand span, so it stops short of 10 (rooms/analysis.py).
    assert easy == 1 and hard == 7


async def test_add_piece_rejects_unknown_source_type(sessionmaker):
    from rooms.piece import load_midi

    data = make_midi([RIGHT])
    async with sessionmaker() as db:
        with pytest.raises(ValueError, match="source_type"):
            await repo.add_piece(
                db,
                piece=load_midi(data),
                midi_data=data,
                title=None,
                composer=None,
                source_type="napster",
                split_pitch=None,
                uploaded_by=None,
            )
    assert await count(sessionmaker, SheetMusic) == 0
