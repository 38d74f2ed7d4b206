"""Recordings scored afterwards, against a real server: real pieces rendered to audio by
FluidSynth with the GM soundfont, transcribed by Basic Pitch in the server's worker pool,
scored as a room player, saved as a session; progress over a real Socket.IO client.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sqlite3
import struct
import time
from pathlib import Path

import aiohttp
import mido
import pytest

from rooms.piece import load_midi
from server.clients.room_client import TuttiClient
from tests import audio
from tests.music import chorale_midi
from tests.play import connected, upload_piece

pytestmark = pytest.mark.skipif(
    not audio.available(), reason="needs fluidsynth and fluid-soundfont-gm"
)

CHORALE = "bach/bwv66.6"
PIANO = "joplin/maple_leaf_rag"


async def post_audio(
    client: TuttiClient, path: str, body: bytes, content_type: str = "audio/wav", **params
) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {client.token}"}) as http,
        http.post(
            client.url + path, params=params, data=body, headers={"Content-Type": content_type}
        ) as resp,
    ):
        return resp.status, await resp.json()


async def score(client: TuttiClient, piece_id: str, wav: bytes, **params) -> dict:
    """Upload a recording, wait for its job; the job's ``job:finished`` or ``job:failed``."""
    status, body = await post_audio(client, "/api/performances", wav, piece_id=piece_id, **params)
    assert status == 202, body
    job_id = body["job_id"]

    def mine(data):
        return data["job_id"] == job_id

    done, failed = (
        asyncio.ensure_future(client.wait_for("job:finished", mine, timeout=240)),
        asyncio.ensure_future(client.wait_for("job:failed", mine, timeout=240)),
    )
    finished, pending = await asyncio.wait({done, failed}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return {"job_id": job_id, **finished.pop().result()}


def sessions_in(database: Path) -> int:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT count(*) FROM practice_sessions").fetchone()[0]


@pytest.fixture(scope="module")
def chorale_wav() -> bytes:
    return audio.render(audio.part_only(chorale_midi(CHORALE), "Soprano"))


async def test_chorale_part_is_scored_like_a_room_player(server, chorale_wav) -> None:
    client = await connected(server.url, "Ann")
    other = await connected(server.url, "Bob")
    try:
        piece = await upload_piece(client, chorale_midi(CHORALE))
        status, body = await post_audio(
            client, "/api/performances", chorale_wav, piece_id=piece["id"], part="Soprano"
        )
        assert status == 202, body
        job_id = body["job_id"]
        # /api/health answers while the job runs in the worker pool (measured, not timed).
        health_ms = []
        async with aiohttp.ClientSession() as http:
            while not client.received.get("job:finished"):
                t0 = time.perf_counter()
                async with http.get(server.url + "/api/health") as resp:
                    assert resp.status == 200
                health_ms.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(0.05)
        print(f"/api/health during the job: {len(health_ms)} answers, max {max(health_ms):.1f} ms")
        finished = await client.wait_for("job:finished", timeout=120)
        assert finished["job_id"] == job_id
        stages = [e["stage"] for e in client.received["job:progress"]]
        assert stages[0] == "decoding" and stages[-1] == "saving"
        assert {"transcribing", "scoring"} <= set(stages)
        fractions = [e["fraction"] for e in client.received["job:progress"]]
        assert fractions == sorted(fractions) and fractions[0] >= 0 and fractions[-1] <= 1
        assert not other.received.get("job:progress")  # the uploader's devices only

        job = await client.fetch_json(f"/api/jobs/{job_id}")
        assert job["status"] == "done" and job["fraction"] == 1.0
        assert job["session_id"] == finished["session_id"]
        with pytest.raises(Exception, match="not_found"):
            await other.fetch_json(f"/api/jobs/{job_id}")

        session = await client.fetch_json(f"/api/sessions/{finished['session_id']}")
        (log,) = session["logs"]
        assert log["activity_type"] == "repertoire" and log["source"] == "audio"
        assert log["part"] == "Soprano" and log["piece_id"] == piece["id"]
        result = log["result"]
        expected = len(load_midi(chorale_midi(CHORALE)).part("Soprano").notes)
        assert result["notes_expected"] == expected
        assert result["accuracy"] >= 0.9, result
        assert len(result["notes"]) == expected and result["tempo_bpm_played"] is not None
        recording = mido.MidiFile(
            file=io.BytesIO(
                await client.fetch_bytes(f"/api/sessions/{finished['session_id']}/recording.mid")
            )
        )
        ons = sum(1 for t in recording.tracks for m in t if m.type == "note_on" and m.velocity)
        assert ons == result["notes_played"]
    finally:
        await client.disconnect()
        await other.disconnect()


async def test_injected_mistakes_show_in_the_counts(server) -> None:
    dropped, wrong = (4, 15, 27), (9, 21)
    midi, injected = audio.with_mistakes(
        chorale_midi(CHORALE), "Soprano", dropped=dropped, wrong=wrong
    )
    client = await connected(server.url, "Cleo")
    try:
        piece = await upload_piece(client, chorale_midi(CHORALE))
        finished = await score(client, piece["id"], audio.render(midi), part="Soprano")
        assert "session_id" in finished, finished
        session = await client.fetch_json(f"/api/sessions/{finished['session_id']}")
        result = session["logs"][0]["result"]
        print({k: v for k, v in result.items() if k != "notes"})
        assert result["missed"] == len(dropped) + len(wrong)
        assert result["wrong_pitch"] >= len(wrong)
        notes = result["notes"]
        for i in dropped:
            assert notes[i]["judgement"] == "miss" and "played_pitch" not in notes[i]
        for i, pitch in injected.wrong_pitch.items():
            assert notes[i]["judgement"] == "miss" and notes[i]["played_pitch"] == pitch
        missed = {i for i, n in enumerate(notes) if n["judgement"] == "miss"}
        assert missed == set(dropped) | set(wrong)
    finally:
        await client.disconnect()


async def test_piano_piece_scored_whole_and_imported_from_audio(server) -> None:
    midi = audio.excerpt(chorale_midi(PIANO), 20.0)
    wav = audio.render(midi)
    client = await connected(server.url, "Dora")
    try:
        piece = await upload_piece(client, midi)
        finished = await score(client, piece["id"], wav)  # no part: the whole piece
        session = await client.fetch_json(f"/api/sessions/{finished['session_id']}")
        (log,) = session["logs"]
        result = log["result"]
        assert log["part"] == "All parts"
        assert result["notes_expected"] == sum(len(p.notes) for p in load_midi(midi).parts)
        print({k: v for k, v in result.items() if k != "notes"})
        # The transcription against the grid (mir_eval's onset F1 in the result). The
        # accuracy is printed, not held to a bound: on dense piano the live scorer's tempo
        # tracker is thrown by a spurious note (README, Audio: figures).
        assert result["f1"] >= 0.75, result

        status, imported = await post_audio(client, "/api/pieces", wav, title="Rag by ear")
        assert status == 201, imported
        assert imported["source_type"] == "transcribed" and imported["title"] == "Rag by ear"
        assert len(imported["parts"]) == 1
        notes = await client.fetch_json(f"/api/pieces/{imported['id']}/notes")
        transcribed = len(notes["parts"][0]["notes"])
        assert 0.7 * result["notes_expected"] <= transcribed <= 1.3 * result["notes_expected"]
        library = await client.fetch_json("/api/pieces?source_type=transcribed")
        assert imported["id"] in {p["id"] for p in library["pieces"]}
    finally:
        await client.disconnect()


def silence_wav(seconds: float) -> bytes:
    data = b"\0\0" * int(audio.SAMPLE_RATE * seconds)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, audio.SAMPLE_RATE, audio.SAMPLE_RATE * 2, 2, 16)
    return header + b"data" + struct.pack("<I", len(data)) + data


async def test_bad_audio_is_refused_and_nothing_is_saved(fresh_server, chorale_wav) -> None:
    srv = fresh_server("--max-audio-seconds", "30")
    client = await connected(srv.url, "Eve")
    try:
        midi = chorale_midi(CHORALE)
        piece = await upload_piece(client, midi)
        pid = piece["id"]
        cases = [
            (chorale_wav, "text/plain", {"piece_id": pid}, 415, "not_audio"),
            (midi, "audio/wav", {"piece_id": pid}, 415, "not_audio"),
            (chorale_wav[: len(chorale_wav) // 2], "audio/wav", {"piece_id": pid}, 400,
             "corrupt_audio"),
            (b"RIFF\0\0\0\0WAVEjunk", "audio/wav", {"piece_id": pid}, 400, "corrupt_audio"),
            (silence_wav(31), "audio/wav", {"piece_id": pid}, 413, "audio_too_long"),
            (chorale_wav, "audio/wav", {"piece_id": "nope"}, 404, "unknown_piece"),
            (chorale_wav, "audio/wav", {"piece_id": pid, "part": "Viola"}, 400, "unknown_part"),
        ]  # fmt: skip
        for body, content_type, params, status, code in cases:
            got, answer = await post_audio(
                client, "/api/performances", body, content_type, **params
            )
            assert (got, answer["error"]["code"]) == (status, code), answer
            assert answer["error"]["message"]
        got, answer = await post_audio(client, "/api/pieces", silence_wav(31))
        assert (got, answer["error"]["code"]) == (413, "audio_too_long")

        # Known only once the job runs: a failed job, and still nothing saved.
        failed = await score(client, pid, silence_wav(3))
        assert failed["error"]["code"] == "no_notes_detected", failed
        flac = _flac(chorale_wav)
        failed = await score(client, pid, flac[: len(flac) // 2], content_type="audio/flac")
        assert failed["error"]["code"] == "corrupt_audio", failed
        job = await client.fetch_json(f"/api/jobs/{failed['job_id']}")
        assert job["status"] == "failed" and job["error"]["code"] == "corrupt_audio"
        got, answer = await post_audio(client, "/api/pieces", silence_wav(3))
        assert (got, answer["error"]["code"]) == (422, "no_notes_detected")
        assert sessions_in(srv.database) == 0
        library = await client.fetch_json("/api/pieces")
        assert library["total"] == 1
    finally:
        await client.disconnect()


def _flac(wav: bytes) -> bytes:
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(wav))
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="FLAC")
    return out.getvalue()


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


async def test_a_crashed_job_fails_and_the_server_keeps_serving(fresh_server, chorale_wav) -> None:
    srv = fresh_server("--max-audio-jobs", "1", "--max-audio-jobs-per-user", "1")
    client = await connected(srv.url, "Finn")
    try:
        piece = await upload_piece(client, chorale_midi(CHORALE))
        before = _children(srv.proc.pid)  # the pieces lane's workers, and the like
        long_wav = audio.render(chorale_midi(PIANO))
        status, body = await post_audio(client, "/api/performances", long_wav, piece_id=piece["id"])
        assert status == 202, body
        # The per-user cap: a second job while the first is queued or running.
        status, refused = await post_audio(
            client, "/api/performances", chorale_wav, piece_id=piece["id"]
        )
        assert (status, refused["error"]["code"]) == (429, "too_many_jobs")
        await client.wait_for("job:progress", lambda e: e["stage"] == "transcribing")
        for pid in _children(srv.proc.pid) - before:  # the audio lane's worker
            os.kill(pid, signal.SIGKILL)
        failed = await client.wait_for("job:failed", timeout=120)
        assert failed["error"]["code"] == "internal_error"
        assert srv.proc.poll() is None
        again = await score(client, piece["id"], chorale_wav, part="Soprano")
        assert "session_id" in again, again
        assert sessions_in(srv.database) == 1
    finally:
        await client.disconnect()


async def test_without_the_audio_extra_the_server_answers_501(fresh_server, tmp_path) -> None:
    # A Python path where soundfile cannot be imported: the extra is not installed.
    blocker = tmp_path / "blocker"
    (blocker / "soundfile").mkdir(parents=True)
    (blocker / "soundfile" / "__init__.py").write_text("raise ImportError('not installed')\n")
    srv = fresh_server(env={"PYTHONPATH": str(blocker)})
    client = await connected(srv.url, "Gus")
    try:
        piece = await upload_piece(client, chorale_midi(CHORALE))
        status, answer = await post_audio(
            client, "/api/performances", silence_wav(1), piece_id=piece["id"]
        )
        assert (status, answer["error"]["code"]) == (501, "audio_unavailable"), answer
    finally:
        await client.disconnect()
