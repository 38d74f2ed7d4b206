"""Nothing a client sends about pieces stalls the server (real ``tutti serve`` processes).

Each hostile file is made here (:mod:`tests.hostile`) and sent while a
watchdog thread times ``GET /api/health`` over and over: a blocked event loop
answers nothing until it is free, so the worst answer bounds the longest
stall. The bound, :data:`STALL_S` = 1 s, is ten times the 100 ms the server
promises, for a shared and noisy machine; before the fixes these files
stalled the loop for 10–40 s (part naming was cubic; pieces were parsed and
serialised on the loop; a zip bomb was inflated whole), or were accepted at
all. Real music (the music21 corpus) still uploads, draws and plays.
"""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile
from io import BytesIO
from pathlib import Path

import mido
import pytest

from rooms.piece import load_midi
from server.clients.bot import Style
from tests.e2e.test_library import Api
from tests.hostile import Watchdog, dense_midi, many_tracks_midi, zip_bomb_mxl
from tests.music import chorale_midi
from tests.play import play_session

ROOT = Path(__file__).resolve().parents[2]
STALL_S = 1.0  # worst /api/health answer allowed while a hostile request runs


async def upload(api: Api, data: bytes, **params) -> tuple[int, dict, float, float]:
    """``(status, body, seconds the upload took, worst /api/health answer in s)``."""
    with Watchdog(api.url) as dog:
        started = time.monotonic()
        status, body = await api.call("POST", "/api/pieces", data=data, **params)
        took = time.monotonic() - started
    return status, body, took, dog.worst_s


def code_of(body: dict) -> str | None:
    """The error code of an answer (``None`` for a success)."""
    return body.get("error", {}).get("code")


async def notes(api: Api, piece_id: str) -> tuple[dict, float]:
    """``GET /api/pieces/{id}/notes`` (unauthenticated) and the worst /api/health answer."""
    anonymous = Api(api.url, None, None)
    with Watchdog(api.url) as dog:
        body = await anonymous.ok("GET", f"/api/pieces/{piece_id}/notes")
    return body, dog.worst_s


async def test_five_thousand_tracks_with_ten_names_neither_stall_nor_take_long(server):
    api = await Api.guest(server.url, "many tracks")
    data = many_tracks_midi(5000)  # ≈ 125 KB: T0…T9 over and over
    status, piece, took, worst = await upload(api, data)
    assert status == 201, piece
    assert worst < STALL_S, f"/api/health took {worst:.2f} s during the upload"
    assert took < 15, f"the upload took {took:.1f} s (cubic part naming took 18-47 s)"
    names = [p["name"] for p in piece["parts"]]
    assert names[:11] == [f"T{i}" for i in range(10)] + ["T0 (2)"]
    assert names[-1] == "T9 (500)" and len(set(names)) == 5000

    body, worst = await notes(api, piece["id"])  # cold: loaded in a worker
    assert worst < STALL_S, f"/api/health took {worst:.2f} s during a cold /notes"
    assert [p["name"] for p in body["parts"]] == names
    assert all(len(p["notes"]) == 1 for p in body["parts"])


async def test_a_midi_file_over_the_note_cap_is_refused_quickly(server):
    api = await Api.guest(server.url, "dense")
    before = (await api.ok("GET", "/api/pieces"))["total"]
    data = dense_midi(833_000)
    assert len(data) < 5_000_000  # within the upload cap: the note cap refuses it
    status, body, took, worst = await upload(api, data)
    assert (status, code_of(body)) == (413, "piece_too_large"), body
    assert "20000 notes" in body["error"]["message"]
    assert worst < STALL_S, f"/api/health took {worst:.2f} s during the upload"
    assert took < 15, f"refusing took {took:.1f} s"
    assert (await api.ok("GET", "/api/pieces"))["total"] == before  # nothing stored


async def test_a_piece_at_the_note_cap_uploads_and_draws_without_stalling(server):
    api = await Api.guest(server.url, "at the cap")
    status, piece, _, worst = await upload(api, dense_midi(20_000))
    assert status == 201, piece
    assert worst < STALL_S
    assert piece["parts"][0]["notes"] == 20_000
    assert code_of((await upload(api, dense_midi(20_001)))[1]) == "piece_too_large"
    for _ in ("cold", "warm"):
        body, worst = await notes(api, piece["id"])
        assert worst < STALL_S, f"/api/health took {worst:.2f} s during /notes"
        assert len(body["parts"][0]["notes"]) == 20_000


def two_parts(sizes: list[int]) -> bytes:
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    for size in sizes:
        track = mido.MidiTrack()
        for index in range(size):
            track.append(mido.Message("note_on", note=60 + index % 12, velocity=64, time=0))
            track.append(mido.Message("note_off", note=60 + index % 12, velocity=0, time=10))
        midi.tracks.append(track)
    buffer = BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


async def test_caps_per_piece_and_per_part_follow_the_settings(fresh_server):
    server = fresh_server("--max-piece-notes", "300", "--max-part-notes", "200")
    api = await Api.guest(server.url, "caps")
    ok = await api.ok("POST", "/api/pieces", 201, data=two_parts([200, 100]))
    assert [p["notes"] for p in ok["parts"]] == [200, 100]
    message = await api.bad("POST", "/api/pieces", 413, "piece_too_large", data=two_parts([201]))
    assert "more than 200 notes" in message and "one part" in message
    message = await api.bad(
        "POST", "/api/pieces", 413, "piece_too_large", data=two_parts([150, 150, 1])
    )
    assert "more than 300 notes" in message
    # In a type 0 file a part is a channel.
    channels = mido.MidiFile(type=0, ticks_per_beat=480)
    track = mido.MidiTrack()
    for index in range(300):
        channel = index % 2
        track.append(mido.Message("note_on", channel=channel, note=60, velocity=64, time=0))
        track.append(mido.Message("note_off", channel=channel, note=60, velocity=0, time=10))
    channels.tracks.append(track)
    buffer = BytesIO()
    channels.save(file=buffer)
    ok = await api.ok("POST", "/api/pieces", 201, data=buffer.getvalue())
    assert [(p["name"], p["notes"]) for p in ok["parts"]] == [
        ("Channel 1", 150),
        ("Channel 2", 150),
    ]
    message = await api.bad("POST", "/api/pieces", 413, "piece_too_large", data=dense_midi(201))
    assert "one part" in message


async def test_a_zip_bomb_musicxml_is_refused_before_it_is_inflated(server):
    api = await Api.guest(server.url, "bomb")
    bomb = zip_bomb_mxl(800_000_000)  # ≈ 0.8 MB inflating to 800 MB
    status, body, took, worst = await upload(api, bomb, filename="bomb.mxl")
    assert (status, code_of(body)) == (413, "piece_too_large"), body
    assert "unpacks to" in body["error"]["message"]
    assert worst < STALL_S, f"/api/health took {worst:.2f} s during the upload"
    assert took < 15, f"refusing took {took:.1f} s"


async def test_a_zip_of_many_entries_is_refused(server):
    api = await Api.guest(server.url, "entries")
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for index in range(1000):
            zf.writestr(f"part{index}.xml", b"")
    message = await api.bad(
        "POST", "/api/pieces", 413, "piece_too_large", data=buffer.getvalue(), filename="x.mxl"
    )
    assert "1000 entries" in message


def test_cli_import_holds_files_to_the_caps(tmp_path):
    dense = tmp_path / "dense.mid"
    dense.write_bytes(dense_midi(25_000))
    data = tmp_path / "data"

    def tutti(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "server", "pieces", "import", str(dense), "--data-dir", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )

    refused = tutti(str(data))
    assert refused.returncode == 1
    assert "not imported" in refused.stderr and "more than 20000 notes" in refused.stderr
    imported = tutti(str(data), "--max-piece-notes", "30000", "--max-part-notes", "30000")
    assert imported.returncode == 0, imported.stderr
    assert "parts: Channel 1" in imported.stdout


@pytest.mark.realtime
async def test_real_music_still_uploads_draws_and_plays(server):
    midi = chorale_midi("bach/bwv66.6")
    api = await Api.guest(server.url, "chorale")
    status, piece, _, worst = await upload(api, midi, title="BWV 66.6")
    assert status == 201 and worst < STALL_S
    expected = load_midi(midi)
    body, _ = await notes(api, piece["id"])
    assert [p["name"] for p in body["parts"]] == expected.part_names
    assert [len(p["notes"]) for p in body["parts"]] == [len(p.notes) for p in expected.parts]
    assert body["parts"][0]["notes"][0] == [
        round(expected.parts[0].notes[0].onset_s, 4),
        round(expected.parts[0].notes[0].offset_s, 4),
        expected.parts[0].notes[0].pitch,
        expected.parts[0].notes[0].velocity,
        round(expected.parts[0].notes[0].onset_beat, 6),
    ]
    finished, players, _, _, played = await play_session(
        server.url,
        midi,
        mode="duet",
        styles={"Soprano": Style(jitter_ms=0, seed=1), "Bass": Style(jitter_ms=0, seed=2)},
        tempo_bpm=240.0,
        title="BWV 66.6 duet",
    )
    results = finished["results"]
    for client in players.values():
        result = results[client.user["id"]]
        assert result["notes_matched"] == len(played.part(result["part"]).notes)
        assert result["complete"] is True
