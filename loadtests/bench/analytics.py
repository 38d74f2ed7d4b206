"""Progress and analytics answers for a user with 50 000 logs.

Run: ``python -m loadtests.bench.analytics``.

Starts a real ``tutti serve`` (SQLite in a temporary folder), logs in one
guest (time zone America/New_York), and bulk-inserts into the server's
database (``sqlite3``, while it runs): 50 library pieces and N logs (default
50 000) over the last three years — 10 % of them room logs, each with its
own ``practice_sessions`` row and a scorer result with per-note entries as
a finished room writes them, the rest manual logs over every activity and
four instruments. One REST log then makes the server recompute the progress
summary (that write is timed too). Every progress and analytics endpoint is
then requested over HTTP ``--runs`` times in turn; the table gives the
median and p95 in ms, with ``GET /api/health`` measured in the same run as
the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from server.clients.room_client import TuttiClient
from server.services.logbook import ACTIVITY_TYPES
from tests.servers import start_server

INSTRUMENTS = ("piano", "violin", "cello", "voice")


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _ts(dt: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format (UTC).
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed(database: Path, user_id: str, n_logs: int, rng: random.Random) -> None:
    """Bulk-insert pieces, sessions and ``n_logs`` logs of ``user_id``."""
    now = datetime.now(UTC)
    pieces = [uuid.uuid4().hex for _ in range(50)]
    con = sqlite3.connect(database)
    with con:
        con.executemany(
            "INSERT INTO sheet_music (id, title, composer, parts, tempo_bpm, duration_seconds,"
            " difficulty, source_type, split_pitch, ticks_per_beat, time_signature, midi_data,"
            " uploaded_by, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    pid,
                    f"Piece {i}",
                    "Bench",
                    "[]",
                    100.0,
                    120.0,
                    1 + i % 10,
                    "cli_import",
                    None,
                    480,
                    "4/4",
                    b"",
                    None,
                    _ts(now),
                )
                for i, pid in enumerate(pieces)
            ],
        )
        sessions, logs = [], []
        for i in range(n_logs):
            start = now - timedelta(seconds=rng.uniform(0, 3 * 365 * 86400))
            duration = rng.uniform(60, 3600)
            end = start + timedelta(seconds=duration)
            piece = rng.choice(pieces)
            room = i % 10 == 0
            session_id = result = accuracy = played = correct = None
            if room:
                session_id = uuid.uuid4().hex
                accuracy = rng.uniform(50, 100)
                notes = [
                    {
                        "onset_beat": k / 2,
                        "pitch": 60 + k % 12,
                        "expected_ms": k * 300.0,
                        "played_ms": k * 300.0 + rng.gauss(0, 20),
                        "deviation_ms": 3.1,
                        "judgement": "great",
                    }
                    for k in range(60)
                ]
                result = json.dumps(
                    {
                        "accuracy": accuracy / 100,
                        "onset_std_ms": rng.uniform(5, 60),
                        "onset_mean_ms": rng.uniform(-20, 20),
                        "tempo_bpm_played": 100.0,
                        "notes_matched": 50,
                        "notes_played": 58,
                        "notes": notes,
                    }
                )
                played, correct = 58, 50
                sessions.append(
                    (
                        session_id,
                        uuid.uuid4().hex,
                        "bench",
                        "duet",
                        piece,
                        "Bench piece",
                        100.0,
                        user_id,
                        _ts(start),
                        _ts(end),
                        duration,
                        "piece_ended",
                        json.dumps(
                            [{"user_id": user_id, "part": "P1", "role": "player", "complete": True}]
                        ),
                        12.0,
                        _ts(end),
                    )
                )
            activity = (
                ("ensemble_reading" if i % 20 == 0 else "repertoire")
                if room
                else (rng.choice(ACTIVITY_TYPES))
            )
            logs.append(
                (
                    uuid.uuid4().hex,
                    user_id,
                    session_id,
                    piece if room or i % 3 else None,
                    "room" if room else "manual",
                    f"Piece title {i % 80}",
                    "P1" if room else None,
                    activity,
                    rng.choice(INSTRUMENTS),
                    _ts(start),
                    _ts(end),
                    duration,
                    rng.uniform(60, 140),
                    100.0 if room else None,
                    played,
                    correct,
                    accuracy,
                    1,
                    result,
                    None,
                    None,
                    None,
                    None,
                    None,
                    i + 1,
                    None,
                    _ts(end),
                    _ts(end),
                )
            )
        con.executemany(
            "INSERT INTO practice_sessions (id, room_id, name, mode, piece_id, piece_title,"
            " tempo_bpm, host_user_id, start_time, end_time, duration_seconds, end_reason,"
            " participants, asynchrony_ms, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            sessions,
        )
        con.executemany(
            "INSERT INTO practice_logs (id, user_id, session_id, piece_id, source, work_title,"
            " part, activity_type, instrument, start_time, end_time, duration_seconds,"
            " tempo_practiced, tempo_target, notes_played, notes_correct, accuracy_percentage,"
            " complete, result, self_rating, focus_areas, notes, mood, pieces, version,"
            " deleted_at, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            logs,
        )
        con.execute(
            "INSERT OR REPLACE INTO user_sync (user_id, version) VALUES (?, ?)", (user_id, n_logs)
        )
    con.execute("ANALYZE")
    con.close()


async def timed(http: aiohttp.ClientSession, method: str, url: str, headers, **kw) -> float:
    t0 = time.perf_counter()
    async with http.request(method, url, headers=headers, **kw) as resp:
        await resp.read()
        assert resp.status in (200, 201), (url, resp.status, await resp.text())
    return (time.perf_counter() - t0) * 1000


ENDPOINTS = (
    "/api/health",
    "/api/progress/overview",
    "/api/progress/streaks",
    "/api/progress/achievements",
    "/api/progress/statistics",
    "/api/progress/instrument/piano",
    "/api/progress/pieces",
    "/api/analytics/practice-time",
    "/api/analytics/practice-time?from={three_years_ago}",
    "/api/analytics/repertoire",
    "/api/analytics/improvement",
    "/api/analytics/export?format=json",
    "/api/analytics/export?format=csv",
    "/api/analytics/report.pdf",
    "/api/analytics/report.pdf?from={three_years_ago}",
)


async def measure(url: str, database: Path, n_logs: int, runs: int) -> list[tuple[str, list]]:
    client = TuttiClient(url)
    user = await client.login_guest("Bench")
    headers = {"Authorization": f"Bearer {client.token}"}
    t0 = time.perf_counter()
    seed(database, user["id"], n_logs, random.Random(7))
    print(f"seeded {n_logs} logs in {time.perf_counter() - t0:.1f} s")
    rows: list[tuple[str, list]] = []
    three_years_ago = (datetime.now(UTC) - timedelta(days=3 * 365 + 2)).date().isoformat()
    async with aiohttp.ClientSession() as http:
        await timed(
            http,
            "PUT",
            url + "/api/users/me/time-zone",
            headers,
            json={"time_zone": "America/New_York"},
        )
        writes = []
        for _ in range(runs):
            body = {
                "activity_type": "scales",
                "duration_seconds": 300.0,
                "start_time": datetime.now(UTC).isoformat(),
                "instrument": "piano",
            }
            writes.append(await timed(http, "POST", url + "/api/practice/logs", headers, json=body))
        for path in ENDPOINTS:
            path = path.format(three_years_ago=three_years_ago)
            await timed(http, "GET", url + path, headers)  # warm-up (imports, caches)
            rows.append(
                (
                    f"GET {path}",
                    [await timed(http, "GET", url + path, headers) for _ in range(runs)],
                )
            )
        rows.append(("POST /api/practice/logs (the write; progress follows its commit)", writes))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            rows = asyncio.run(measure(server.url, server.database, args.logs, args.runs))
        finally:
            server.stop()
    baseline = statistics.median(rows[0][1])
    print(f"\nOne user with {args.logs} logs, real server + SQLite, {args.runs} runs each, ms\n")
    print("| request | median | p95 | max | median / baseline |")
    print("|---|---:|---:|---:|---:|")
    for name, samples in rows:
        med = statistics.median(samples)
        print(
            f"| {name} | {med:.1f} | {percentile(samples, 95):.1f} | {max(samples):.1f} | "
            f"{med / baseline:.0f}× |"
        )


if __name__ == "__main__":
    main()
