"""The ``tutti`` command line, run as a person runs it: real processes, real server."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys

from tests.music import chorale_midi
from tests.play import connected, upload_piece


def tutti(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "server", *args], capture_output=True, text=True, timeout=timeout
    )


def test_pieces_import_reports_each_file(tmp_path):
    good = tmp_path / "bwv66.6.mid"
    good.write_bytes(chorale_midi("bach/bwv66.6"))
    bad = tmp_path / "notes.txt"
    bad.write_text("not music")
    run = tutti("pieces", "import", str(good), str(bad), "--data-dir", str(tmp_path / "data"))
    assert run.returncode == 1  # one file failed
    assert "[1/2]" in run.stdout and "Soprano, Alto, Tenor, Bass" in run.stdout
    assert "[2/2]" in run.stderr and "not a MIDI file" in run.stderr
    with sqlite3.connect(tmp_path / "data" / "tutti.db") as db:
        assert db.execute("SELECT title, source_type FROM sheet_music").fetchall() == [
            ("bwv66.6", "cli_import")
        ]


def test_bad_setting_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTTI_PORT", "eighty")
    run = tutti("serve", "--data-dir", str(tmp_path))
    assert run.returncode == 2
    assert "TUTTI_PORT='eighty' is not a valid int" in run.stderr


async def test_bot_plays_a_part_with_a_person(server):
    person = await connected(server.url, "person")
    piece = await upload_piece(person, chorale_midi("bach/bwv66.6"), title="bot duet")
    room = (
        await person.call(
            "room:create",
            {"piece_id": piece["id"], "mode": "duet", "tempo_bpm": 200, "count_in_beats": 0},
        )
    )["room"]
    await person.call(
        "room:join", {"room_id": room["room_id"], "role": "player", "part": "Soprano"}
    )
    bot = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "bot",
        "--url",
        server.url,
        "--room",
        room["room_id"],
        "--part",
        "Bass",
        "--jitter-ms",
        "10",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await person.wait_for("room:state", lambda s: len(s["members"]) == 2, timeout=30)
    await person.call("room:start", {"room_id": room["room_id"]})
    finished = await person.wait_for("room:finished", timeout=60)
    out, err = await asyncio.wait_for(bot.communicate(), 30)
    assert bot.returncode == 0, err.decode()
    bot_result = next(r for r in finished["results"].values() if r["part"] == "Bass")
    assert bot_result["notes_matched"] == bot_result["notes_expected"]  # a clean bot
    assert finished["session_id"] in out.decode()
    assert "Bass" in out.decode()
    await person.disconnect()


def test_demo_against_a_running_server(server):
    run = tutti("demo", "--url", server.url, "--tempo", "200")
    assert run.returncode == 0, run.stderr
    assert "Ada (bot)" in run.stdout and "Bo (bot)" in run.stdout
    session_id = run.stdout.split("Saved as session ")[1].split()[0]
    with sqlite3.connect(server.database) as db:
        logs = db.execute(
            "SELECT count(*) FROM practice_logs WHERE session_id = ?", (session_id,)
        ).fetchone()
    assert logs == (2,)
