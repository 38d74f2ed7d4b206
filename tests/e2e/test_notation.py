"""Every piece's score: ``GET /api/pieces/{id}/musicxml`` (server/services/notation.py).

A MusicXML import keeps its original; a MIDI import is converted with music21 at import;
a piece whose conversion fails still plays and answers ``404 notation_unavailable``;
pieces stored without notation are converted when the server starts.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
import zipfile
from pathlib import Path

import aiohttp
import mido
import music21
import pytest

from server.clients.bot import Style
from tests.music import chorale_midi
from tests.play import connected, play_session, upload_piece
from tests.servers import start_server

MEDIA_TYPE = "application/vnd.recordare.musicxml+xml"


def corpus_mxl(name: str = "bach/bwv66.6") -> bytes:
    return Path(music21.corpus.getWork(name)).read_bytes()


def root_document(mxl: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(mxl)) as archive:
        names = [n for n in archive.namelist() if not n.startswith("META-INF/")]
        (score,) = [n for n in names if n.endswith((".xml", ".musicxml"))]
        return archive.read(score)


def odd_metre_midi() -> bytes:
    """Two parts in 255/2 time: our reader plays it, music21 cannot write its measures
    as MusicXML ("inexpressible durations")."""
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("time_signature", numerator=255, denominator=2),
            mido.MetaMessage("set_tempo", tempo=500_000),
        ]
    )
    midi.tracks.append(conductor)
    for index, name in enumerate(("Upper", "Lower")):
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
        for pitch in (60, 62, 64, 65, 67, 65, 64, 62):
            track.append(mido.Message("note_on", note=pitch - 12 * index, velocity=80, time=0))
            track.append(mido.Message("note_off", note=pitch - 12 * index, velocity=0, time=480))
        midi.tracks.append(track)
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


async def get(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def test_a_musicxml_import_returns_its_original(server):
    client = await connected(server.url, "engraver")
    try:
        mxl = corpus_mxl()
        packed = await upload_piece(client, mxl, filename="bwv66.6.mxl")
        plain = await upload_piece(client, root_document(mxl), filename="bwv66.6.musicxml")
    finally:
        await client.disconnect()
    for piece in (packed, plain):
        assert piece["source_type"] == "musicxml_upload"
        assert piece["notation"] == "available"
        status, media, body = await get(f"{server.url}/api/pieces/{piece['id']}/musicxml")
        assert status == 200 and media == MEDIA_TYPE
        assert body == root_document(mxl)  # byte for byte the score the sender had


async def test_a_midi_import_gets_a_converted_score_with_its_parts(server):
    midi = chorale_midi("bach/bwv66.6")
    client = await connected(server.url, "uploader")
    try:
        piece = await upload_piece(client, midi, title="BWV 66.6 for notation")
    finally:
        await client.disconnect()
    assert piece["notation"] == "available"
    status, media, body = await get(f"{server.url}/api/pieces/{piece['id']}/musicxml")
    assert status == 200 and media == MEDIA_TYPE
    assert body.lstrip().startswith(b"<?xml") and b"<score-partwise" in body[:2000]
    score = music21.converter.parseData(body, format="musicxml")
    assert len(score.parts) == len(piece["parts"]) == 4
    # The notes survive the round trip: each part has its pitches in order.
    expected = music21.converter.parseData(midi, format="midi")
    for got, want in zip(score.parts, expected.parts, strict=True):
        pitches = [n.pitch.midi for n in got.stripTies().flatten().notes]
        assert pitches == [n.pitch.midi for n in want.stripTies().flatten().notes]


async def test_an_unknown_piece_has_no_score(server):
    status, _, body = await get(f"{server.url}/api/pieces/{'0' * 32}/musicxml")
    assert status == 404 and b'"unknown_piece"' in body


@pytest.mark.realtime
async def test_a_piece_whose_conversion_fails_still_plays(fresh_server):
    server = fresh_server()
    midi = odd_metre_midi()
    styles = {"Upper": Style(jitter_ms=5, seed=1), "Lower": Style(jitter_ms=5, seed=2)}
    finished, players, _, host, _ = await play_session(
        server.url, midi, mode="duet", styles=styles, tempo_bpm=240, title="Odd metre"
    )
    for client in players.values():
        result = finished["results"][client.user["id"]]
        assert result["notes_matched"] == result["notes_expected"] == 8
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/api/pieces") as resp:
            (piece,) = (await resp.json())["pieces"]
        assert piece["notation"] == "unavailable"
        async with http.get(f"{server.url}/api/pieces/{piece['id']}/musicxml") as resp:
            body = await resp.json()
            assert resp.status == 404
        assert body["error"]["code"] == "notation_unavailable"
        assert "inexpressible" in body["error"]["message"]
    await host.disconnect()
    for client in players.values():
        await client.disconnect()


async def test_pieces_stored_without_notation_are_converted_at_start(tmp_path):
    server = start_server(tmp_path / "data")
    try:
        client = await connected(server.url, "uploader")
        piece = await upload_piece(client, chorale_midi("bach/bwv26.6"), title="BWV 26.6")
        await client.disconnect()
    finally:
        server.stop()
    with sqlite3.connect(server.database) as db:  # as a database from before 0006 holds it
        db.execute("UPDATE sheet_music SET notation = NULL, musicxml_data = NULL")
    again = start_server(tmp_path / "data")
    try:
        url = f"{again.url}/api/pieces/{piece['id']}"
        for _ in range(600):  # converted in the background, after the start
            status, _, _ = await get(url + "/musicxml")
            if status == 200:
                break
            await asyncio.sleep(0.05)
        assert status == 200
        score = music21.converter.parseData((await get(url + "/musicxml"))[2], format="musicxml")
        assert len(score.parts) == 4
    finally:
        again.stop()


async def test_generated_material_gets_its_score_right_after(server):
    client = await connected(server.url, "sight-reader")
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                server.url + "/api/pieces/generate",
                json={"kind": "phrase", "difficulty": 3, "parts": 2, "measures": 8, "seed": 5},
                headers={"Authorization": f"Bearer {client.token}"},
            ) as resp,
        ):
            piece = await resp.json()
            assert resp.status == 201, piece
    finally:
        await client.disconnect()
    assert piece["notation"] in ("pending", "available")  # answered before the conversion
    url = f"{server.url}/api/pieces/{piece['id']}/musicxml"
    for _ in range(600):
        status, _, body = await get(url)
        if status == 200:
            break
        await asyncio.sleep(0.05)
    assert status == 200
    assert len(music21.converter.parseData(body, format="musicxml").parts) == 2
