"""The starter library: a fresh server's library holds the bundled public-domain pieces
(server/music/starter, written by tests/make_starter_library.py), once, and plays them."""

from __future__ import annotations

import json
from importlib import resources

import aiohttp
import pytest

from rooms.piece import load_midi
from server.clients.bot import Style
from tests.play import play_session
from tests.servers import start_server

TEMPO = 180.0  # BPM: real time, short enough for a test


def manifest() -> list[dict]:
    folder = resources.files("server.music.starter")
    return json.loads(folder.joinpath("manifest.json").read_text("utf-8"))["pieces"]


async def library(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(url + "/api/pieces") as resp:
        assert resp.status == 200
        return await resp.json()


async def test_a_fresh_server_lists_the_starter_pieces_with_their_fields(fresh_server):
    server = fresh_server(starter_library=True)
    body = await library(server.url)
    entries = manifest()
    assert len(entries) >= 12
    assert body["total"] == len(entries)
    listed = {p["id"]: p for p in body["pieces"]}
    assert set(listed) == {e["id"] for e in entries}
    for entry in entries:
        piece = listed[entry["id"]]
        assert piece["title"] == entry["title"]
        assert piece["composer"] == entry["composer"]
        assert piece["key"] == entry["key"]
        assert piece["difficulty"] == entry["difficulty"]
        assert [p["name"] for p in piece["parts"]] == entry["parts"]
        assert len(piece["parts"]) >= 2  # every one plays as a duet or an ensemble
        assert piece["source_type"] == "public_domain"
        assert "music21 corpus" in piece["attribution"]
        assert entry["corpus_path"] in piece["attribution"]
        assert piece["notation"] == "available"
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.url + "/api/pieces", params={"source_type": "public_domain"}) as resp,
    ):
        assert (await resp.json())["total"] == len(entries)


async def test_a_restart_adds_no_second_copy(tmp_path):
    server = start_server(tmp_path / "data", starter_library=True)
    try:
        first = await library(server.url)
    finally:
        server.stop()
    again = start_server(tmp_path / "data", starter_library=True)
    try:
        second = await library(again.url)
    finally:
        again.stop()
    assert second["total"] == first["total"] == len(manifest())
    assert [p["id"] for p in second["pieces"]] == [p["id"] for p in first["pieces"]]


async def test_no_starter_library_leaves_the_library_empty(fresh_server):
    server = fresh_server("--no-starter-library", starter_library=True)  # the flag
    assert (await library(server.url))["total"] == 0


@pytest.mark.realtime
async def test_a_duet_on_a_starter_piece_plays(fresh_server):
    server = fresh_server(starter_library=True)
    entry = next(e for e in manifest() if e["corpus_path"] == "bach/bwv26.6")
    midi = resources.files("server.music.starter").joinpath(entry["midi"]).read_bytes()
    styles = {"Soprano": Style(jitter_ms=10, seed=1), "Bass": Style(jitter_ms=10, seed=2)}
    finished, players, _, _, _ = await play_session(
        server.url,
        midi,
        mode="duet",
        styles=styles,
        tempo_bpm=TEMPO,
        title=entry["title"],
        piece_id=entry["id"],
    )
    piece = load_midi(midi)
    for part, client in players.items():
        result = finished["results"][client.user["id"]]
        assert result["part"] == part
        assert result["notes_expected"] == len(piece.part(part).notes)
        assert result["notes_matched"] == result["notes_expected"]
        assert result["complete"] is True
