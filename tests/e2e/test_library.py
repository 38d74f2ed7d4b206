"""The piece library's REST API against real ``tutti serve`` processes: filters,
random picks, recommendations, generated material, MusicXML import (REST and
CLI, with and without the extra), the analysis backfill, and bad input — each
with its error code and nothing changed.

Recommendation history: accuracies are only ever written by finished rooms,
and "not practised lately" needs logs weeks old, so the test writes the
user's practice logs into the server's SQLite database as a finished room
would (columns of ``practice_logs``), then asks the running server.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import music21
import pytest

from server.clients.room_client import TuttiClient
from tests.music import chorale_midi

ROOT = Path(__file__).resolve().parents[2]


class Api:
    """A guest with REST helpers."""

    def __init__(self, url: str, token: str | None, user_id: str | None) -> None:
        self.url, self.token, self.id = url, token, user_id

    @classmethod
    async def guest(cls, url: str, name: str = "reader") -> Api:
        client = TuttiClient(url)
        user = await client.login_guest(name)
        return cls(url, client.token, user["id"])

    async def call(
        self, method: str, path: str, *, json: Any = None, data: bytes | None = None, **params
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                method,
                self.url + path,
                headers=headers,
                json=json,
                data=data,
                params={k: str(v) for k, v in params.items()},
            ) as resp,
        ):
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.read()

    async def ok(self, method: str, path: str, status: int = 200, **kwargs) -> Any:
        got, body = await self.call(method, path, **kwargs)
        assert got == status, (method, path, got, body)
        return body

    async def bad(self, method: str, path: str, status: int, code: str, **kwargs) -> str:
        got, body = await self.call(method, path, **kwargs)
        assert (got, body["error"]["code"]) == (status, code), body
        return body["error"]["message"]


async def listing(api: Api, **params) -> list[str]:
    return [p["title"] for p in (await api.ok("GET", "/api/pieces", **params))["pieces"]]


def corpus_file(name: str) -> Path:
    return Path(str(music21.corpus.getWork(name)))


# ----------------------------------------------------------------- the library


async def stock(api: Api) -> dict[str, dict]:
    """A small library: a chorale, a rag, a string piece, two generated exercises."""
    pieces = {
        "chorale": await api.ok(
            "POST",
            "/api/pieces",
            201,
            data=chorale_midi("bach/bwv66.6"),
            title="chorale",
            composer="J. S. Bach",
        ),
        "rag": await api.ok(
            "POST",
            "/api/pieces",
            201,
            data=chorale_midi("joplin/maple_leaf_rag"),
            title="rag",
            composer="Scott Joplin",
        ),
        "quartet": await api.ok(
            "POST",
            "/api/pieces",
            201,
            data=chorale_midi("bach/bwv4.8"),
            title="quartet",
            instrument="strings",
            style_period="baroque",
        ),
    }
    for name, body in (
        ("easy scale", {"kind": "scale", "difficulty": 2, "key": "G major", "seed": 1}),
        ("hard phrase", {"kind": "phrase", "difficulty": 7, "key": "D minor", "seed": 2}),
    ):
        pieces[name] = await api.ok("POST", "/api/pieces/generate", 201, json=body)
    return pieces


async def test_uploaded_pieces_are_analysed_at_import(fresh_server):
    api = await Api.guest(fresh_server().url)
    lib = await stock(api)
    chorale, rag = lib["chorale"], lib["rag"]
    assert chorale["key"] == "F# minor" and chorale["difficulty"] <= 3
    assert chorale["style_period"] == "baroque" and chorale["instrument"] == "piano"
    assert rag["key"] == "Ab major" and rag["difficulty"] >= 8 and rag["grade"] == 8
    assert rag["style_period"] == "romantic"
    assert lib["quartet"]["instrument"] == "strings"
    analysis = await api.ok("GET", f"/api/pieces/{chorale['id']}/analysis")
    assert analysis["id"] == chorale["id"] and analysis["difficulty"] == chorale["difficulty"]
    assert analysis["key"]["name"] == "F# minor" and analysis["key"]["correlation"] > 0.5
    assert [p["name"] for p in analysis["parts"]] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert analysis["chords"][-1] in ("F#", "F#m") and set(analysis["weights"]) >= {
        "density_nps",
        "hand_span_semitones",
    }
    await api.bad("GET", "/api/pieces/nope/analysis", 404, "unknown_piece")


async def test_filters(fresh_server):
    api = await Api.guest(fresh_server().url)
    lib = await stock(api)
    everything = ["chorale", "rag", "quartet", "easy scale", "hard phrase"]
    assert await listing(api) == [lib[n]["title"] for n in everything]
    assert await listing(api, difficulty_min=8) == ["rag"]
    assert await listing(api, difficulty_max=3) == [
        "chorale",
        "quartet",
        lib["easy scale"]["title"],
    ]
    assert await listing(api, difficulty_min=6, difficulty_max=7) == [lib["hard phrase"]["title"]]
    assert await listing(api, style_period="baroque") == ["chorale", "quartet"]
    assert await listing(api, style_period="romantic") == ["rag"]
    assert await listing(api, instrument="STRINGS") == ["quartet"]
    assert len(await listing(api, instrument="piano")) == 4
    assert await listing(api, grade=lib["rag"]["grade"]) == ["rag"]
    assert await listing(api, key="f# minor") == ["chorale"]
    assert await listing(api, source_type="generated") == [
        lib["easy scale"]["title"],
        lib["hard phrase"]["title"],
    ]
    assert await listing(api, style_period="baroque", difficulty_min=9) == []
    page = await api.ok("GET", "/api/pieces", limit=2, offset=1)
    assert [p["title"] for p in page["pieces"]] == ["rag", "quartet"]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"difficulty_min": 0}, "out_of_range"),
        ({"difficulty_max": 11}, "out_of_range"),
        ({"difficulty_min": "hard"}, "invalid_value"),
        ({"difficulty_min": 7, "difficulty_max": 3}, "invalid_value"),
        ({"grade": 9}, "out_of_range"),
        ({"style_period": "jazz"}, "invalid_value"),
        ({"source_type": "napster"}, "invalid_value"),
        ({"instrument": "x" * 65}, "invalid_value"),
        ({"limit": 0}, "out_of_range"),
        ({"offset": -1}, "out_of_range"),
        ({"colour": "blue"}, "unknown_field"),
    ],
)
async def test_bad_filters(server, params, code):
    api = Api(server.url, None, None)
    message = await api.bad("GET", "/api/pieces", 400, code, **params)
    assert message
    paging = {"limit", "offset"} & set(params)  # only the list pages
    await api.bad("GET", "/api/pieces/random", 400, "unknown_field" if paging else code, **params)


async def test_a_parameter_given_twice(server):
    for path in ("/api/pieces", "/api/pieces/random"):
        async with (
            aiohttp.ClientSession() as http,
            http.get(server.url + path + "?grade=1&grade=2") as resp,
        ):
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "duplicate_parameter"


async def test_random_with_criteria(fresh_server):
    api = await Api.guest(fresh_server().url)
    lib = await stock(api)
    for _ in range(5):
        assert (await api.ok("GET", "/api/pieces/random", difficulty_min=8))["title"] == "rag"
    baroque = {
        (await api.ok("GET", "/api/pieces/random", style_period="baroque", seed=s))["title"]
        for s in range(20)
    }
    assert baroque == {"chorale", "quartet"}
    first = await api.ok("GET", "/api/pieces/random", seed=7)
    for _ in range(3):
        assert (await api.ok("GET", "/api/pieces/random", seed=7))["id"] == first["id"]
    assert first["id"] in {p["id"] for p in lib.values()}
    await api.bad("GET", "/api/pieces/random", 404, "no_match", style_period="medieval")
    await api.bad("GET", "/api/pieces/random", 400, "out_of_range", seed=-1)


# ------------------------------------------------------------- recommendations


def add_history(db: Path, user_id: str, piece_id: str, accuracy: float | None, days_ago: float):
    """One practice log as a finished room writes it (``source`` room, accuracy in %)."""
    start = datetime.now(UTC) - timedelta(days=days_ago)
    stamp = start.strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO practice_logs (id, user_id, session_id, piece_id, source, work_title,"
            " part, activity_type, start_time, end_time, duration_seconds, accuracy_percentage,"
            " complete, version, created_at, updated_at)"
            " VALUES (?, ?, NULL, ?, 'room', 'exercise', 'Solo', 'repertoire', ?, ?, 60, ?,"
            " 1, 0, ?, ?)",
            (uuid.uuid4().hex, user_id, piece_id, stamp, stamp, accuracy, stamp, stamp),
        )


async def test_recommendations_follow_the_rule(fresh_server):
    server = fresh_server()
    api = await Api.guest(server.url, "learner")
    by_difficulty: dict[int, list[str]] = {}
    for difficulty, seed in [(d, d) for d in range(1, 10)] + [(4, 100), (5, 101)]:
        made = await api.ok(
            "POST",
            "/api/pieces/generate",
            201,
            json={"kind": "scale", "difficulty": difficulty, "key": "C major", "seed": seed},
        )
        assert made["difficulty"] == difficulty  # scales hit the requested difficulty
        by_difficulty.setdefault(difficulty, []).append(made["id"])
    (d2,), (d3,), (d4, d4_new), (d5, d5_recent), (d6,) = (by_difficulty[d] for d in (2, 3, 4, 5, 6))

    # No history: level 2 (a beginner), pieces of difficulty 1-4 minus nothing.
    fresh = await api.ok("GET", "/api/pieces/recommended", limit=50)
    assert fresh["level"] == 2 and {p["difficulty"] for p in fresh["pieces"]} == {1, 2, 3, 4}

    add_history(server.database, api.id, d4, 60.0, 45)
    add_history(server.database, api.id, d4, 88.0, 30)  # best 88 %: level 4, not mastered
    add_history(server.database, api.id, d3, 97.0, 20)  # mastered
    add_history(server.database, api.id, d5_recent, 70.0, 2)  # practised lately
    add_history(server.database, api.id, by_difficulty[9][0], 20.0, 40)  # far above

    got = await api.ok("GET", "/api/pieces/recommended")
    assert got["level"] == 4
    assert [p["id"] for p in got["pieces"]] == [d4_new, d4, d5, d6, d2]
    reason = got["pieces"][1]["reason"]
    assert reason["level"] == 4 and reason["best_accuracy"] == 88.0
    assert datetime.fromisoformat(reason["last_practised"]) < datetime.now(UTC) - timedelta(days=29)
    assert got["pieces"][0]["reason"]["last_practised"] is None
    assert [
        p["id"] for p in (await api.ok("GET", "/api/pieces/recommended", limit=2))["pieces"]
    ] == [
        d4_new,
        d4,
    ]
    assert (await api.ok("GET", "/api/pieces/recommended", instrument="strings"))["pieces"] == []

    # Another user's history is not this user's.
    other = await Api.guest(server.url, "other")
    assert (await other.ok("GET", "/api/pieces/recommended"))["level"] == 2

    await Api(server.url, None, None).bad("GET", "/api/pieces/recommended", 401, "missing_token")
    await api.bad("GET", "/api/pieces/recommended", 400, "out_of_range", limit=0)
    await api.bad("GET", "/api/pieces/recommended", 400, "unknown_field", difficulty_min=2)


# ------------------------------------------------------------------- generated


async def test_generate_is_reproducible_and_near_its_difficulty(server):
    api = await Api.guest(server.url)
    body = {"kind": "phrase", "difficulty": 6, "key": "E minor", "parts": 2, "seed": 2024}
    one = await api.ok("POST", "/api/pieces/generate", 201, json=body)
    two = await api.ok("POST", "/api/pieces/generate", 201, json=body)
    assert one["id"] != two["id"] and one["source_type"] == "generated"
    assert one["generator"] == {**body, "measures": 8}
    assert [p["name"] for p in one["parts"]] == ["Primo", "Secondo"]
    assert abs(one["difficulty"] - 6) <= 1
    midi_one = await api.ok("GET", f"/api/pieces/{one['id']}/midi")
    midi_two = await api.ok("GET", f"/api/pieces/{two['id']}/midi")
    assert midi_one == midi_two and midi_one.startswith(b"MThd")
    other = await api.ok("POST", "/api/pieces/generate", 201, json={**body, "seed": 2025})
    assert await api.ok("GET", f"/api/pieces/{other['id']}/midi") != midi_one

    unseeded = await api.ok("POST", "/api/pieces/generate", 201, json={"kind": "arpeggio"})
    assert isinstance(unseeded["generator"]["seed"], int)  # chosen, and told, by the server
    again = await api.ok("POST", "/api/pieces/generate", 201, json=unseeded["generator"])
    assert await api.ok("GET", f"/api/pieces/{again['id']}/midi") == await api.ok(
        "GET", f"/api/pieces/{unseeded['id']}/midi"
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"difficulty": 11}, "out_of_range"),
        ({"difficulty": "5"}, "wrong_type"),
        ({"kind": "etude"}, "invalid_value"),
        ({"key": "H major"}, "invalid_value"),
        ({"parts": 3}, "out_of_range"),
        ({"measures": 65}, "out_of_range"),
        ({"seed": -1}, "out_of_range"),
        ({"tempo": 100}, "unknown_field"),
        ([1, 2], "wrong_type"),
    ],
)
async def test_bad_generate_requests_change_nothing(server, body, code):
    api = await Api.guest(server.url)
    before = (await api.ok("GET", "/api/pieces"))["total"]
    await api.bad("POST", "/api/pieces/generate", 400, code, json=body)
    assert (await api.ok("GET", "/api/pieces"))["total"] == before


async def test_generate_needs_a_token(server):
    await Api(server.url, None, None).bad(
        "POST", "/api/pieces/generate", 401, "missing_token", json={}
    )


def test_cli_generate(tmp_path):
    out = tmp_path / "scale.mid"
    args = [
        "pieces",
        "generate",
        "--kind",
        "scale",
        "--difficulty",
        "3",
        "--key",
        "A minor",
        "--seed",
        "9",
        "--out",
        str(out),
        "--data-dir",
        str(tmp_path / "data"),
    ]
    run = tutti(*args)
    assert run.returncode == 0, run.stderr
    assert "difficulty 3" in run.stdout and "key A minor" in run.stdout
    first = out.read_bytes()
    assert tutti(*args).returncode == 0 and out.read_bytes() == first
    with sqlite3.connect(tmp_path / "data" / "tutti.db") as db:
        rows = db.execute("SELECT source_type, difficulty, key_name FROM sheet_music").fetchall()
    assert rows == [("generated", 3, "A minor")] * 2
    bad = tutti("pieces", "generate", "--key", "H major", "--data-dir", str(tmp_path / "data"))
    assert bad.returncode == 2 and "key must look like" in bad.stderr


# -------------------------------------------------------------------- MusicXML


def tutti(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
    )


async def test_musicxml_upload(server):
    api = await Api.guest(server.url)
    mxl = corpus_file("bach/bwv66.6").read_bytes()  # the corpus's compressed MusicXML
    assert mxl.startswith(b"PK")
    piece = await api.ok("POST", "/api/pieces", 201, data=mxl, composer="J. S. Bach")
    assert piece["source_type"] == "musicxml_upload"
    assert piece["title"] == "Untitled"  # this file has no title (music21 sees none)
    assert [p["name"] for p in piece["parts"]] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert piece["key"] == "F# minor" and piece["composer"] == "J. S. Bach"
    assert piece["style_period"] == "baroque"
    # the same score as uncompressed MusicXML text gives the same notes
    with zipfile.ZipFile(corpus_file("bach/bwv66.6")) as archive:
        inner = next(n for n in archive.namelist() if n.endswith(".xml") and "META" not in n)
        xml = archive.read(inner)
    plain = await api.ok("POST", "/api/pieces", 201, data=xml, filename="bwv66.6.musicxml")
    assert [p["notes"] for p in plain["parts"]] == [p["notes"] for p in piece["parts"]]
    midi = await api.ok("GET", f"/api/pieces/{piece['id']}/midi")
    assert midi.startswith(b"MThd")  # stored and played as MIDI

    before = (await api.ok("GET", "/api/pieces"))["total"]
    await api.bad("POST", "/api/pieces", 400, "invalid_musicxml", data=b"<?xml version='1.0'?><x/>")
    await api.bad("POST", "/api/pieces", 400, "invalid_musicxml", data=b"PK\x03\x04broken zip")
    assert (await api.ok("GET", "/api/pieces"))["total"] == before


def without_music21(tmp_path: Path) -> dict[str, str]:
    """An environment where ``import music21`` fails, as without the extra."""
    blocker = tmp_path / "no-music21" / "music21"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('music21 is not installed')\n")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("TUTTI_")},
        "PYTHONPATH": str(blocker.parent),
    }


def test_cli_imports_musicxml_and_says_what_is_missing_without_the_extra(tmp_path):
    data = tmp_path / "data"
    run = tutti(
        "pieces",
        "import",
        str(corpus_file("bach/bwv66.6")),
        "--composer",
        "J. S. Bach",
        "--data-dir",
        str(data),
    )
    assert run.returncode == 0, run.stderr
    assert "Soprano, Alto, Tenor, Bass" in run.stdout and "key F# minor" in run.stdout
    with sqlite3.connect(data / "tutti.db") as db:
        assert db.execute(
            "SELECT composer, key_name, style_period FROM sheet_music"
        ).fetchall() == [("J. S. Bach", "F# minor", "baroque")]
    missing = tutti(
        "pieces",
        "import",
        str(corpus_file("bach/bwv66.6")),
        "--data-dir",
        str(data),
        env=without_music21(tmp_path),
    )
    assert missing.returncode == 1
    assert "pip install 'tutti[musicxml]'" in missing.stderr


async def test_upload_without_the_extra_is_501(fresh_server, tmp_path):
    server = fresh_server(env=without_music21(tmp_path))
    api = await Api.guest(server.url)
    message = await api.bad(
        "POST",
        "/api/pieces",
        501,
        "musicxml_unavailable",
        data=corpus_file("bach/bwv66.6").read_bytes(),
    )
    assert "tutti[musicxml]" in message
    assert (await api.ok("GET", "/api/pieces"))["total"] == 0
    await api.ok("POST", "/api/pieces", 201, data=chorale_midi("bach/bwv66.6"))  # MIDI still works


# -------------------------------------------------------------------- backfill


async def test_pieces_stored_before_the_analysis_are_backfilled_on_startup(fresh_server):
    server = fresh_server()
    api = await Api.guest(server.url)
    piece = await api.ok(
        "POST", "/api/pieces", 201, data=chorale_midi("bach/bwv66.6"), composer="Bach"
    )
    server.stop()
    with sqlite3.connect(server.database) as db:  # as a database from before 0003 has them
        db.execute(
            "UPDATE sheet_music SET analysis = NULL, key_name = NULL, instrument = NULL,"
            " style_period = NULL, grade = NULL, difficulty = 10"
        )
    restarted = _restart(server)
    try:
        got = await Api(restarted.url, None, None).ok("GET", f"/api/pieces/{piece['id']}")
        assert got["key"] == "F# minor" and got["difficulty"] == piece["difficulty"]
        assert (got["grade"], got["instrument"], got["style_period"]) == (
            piece["grade"],
            "piano",
            "baroque",
        )
    finally:
        restarted.stop()


def _restart(server):
    from tests.conftest import FAST
    from tests.servers import start_server

    return start_server(server.data_dir, *FAST)
