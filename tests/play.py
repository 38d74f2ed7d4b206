"""Helpers for tests that play real music through a running server."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from rooms.performance import Mistakes
from rooms.piece import Piece, load_midi
from server.clients.bot import Style, play_part
from server.clients.room_client import TuttiClient, TuttiError


async def upload_piece(client: TuttiClient, midi: bytes, **params: str) -> dict:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{client.url}/api/pieces",
            params=params,
            data=midi,
            headers={"Authorization": f"Bearer {client.token}"},
        ) as resp,
    ):
        body = await resp.json()
        assert resp.status == 201, body
        return body


async def expect_error(client: TuttiClient, event: str, data, code: str) -> str:
    """``client``'s ``event`` is refused with ``code`` and a message; returns the message."""
    with pytest.raises(TuttiError) as info:
        await client.call(event, data)
    assert info.value.code == code, info.value
    assert info.value.message
    return info.value.message


async def connected(url: str, name: str) -> TuttiClient:
    client = TuttiClient(url)
    await client.connect(name)
    await client.sync_clock(5)
    return client


async def play_session(
    url: str,
    midi: bytes,
    *,
    mode: str,
    styles: dict[str, Style],
    tempo_bpm: float,
    title: str,
    piece_id: str | None = None,
) -> tuple[dict, dict[str, TuttiClient], dict[str, Mistakes], TuttiClient, Piece]:
    """Upload ``midi`` (or, with ``piece_id``, take that piece of the library, whose
    file ``midi`` is), open a room, let one client per part in ``styles`` play it.

    Returns ``(room:finished payload, clients by part, injected mistakes by part,
    the spectating host, the piece)``.
    """
    host = await connected(url, "host")
    info = {"id": piece_id} if piece_id else await upload_piece(host, midi, title=title)
    piece = load_midi(midi, title=title)
    room = (
        await host.call(
            "room:create",
            {
                "piece_id": info["id"],
                "mode": mode,
                "tempo_bpm": tempo_bpm,
                "count_in_beats": 2,
                "name": title,
            },
        )
    )["room"]
    room_id = room["room_id"]
    await host.call("room:join", {"room_id": room_id, "role": "spectator"})
    players = {}
    for part in styles:
        players[part] = await connected(url, f"{part} player")
        await players[part].call("room:join", {"room_id": room_id, "role": "player", "part": part})
    started = await host.call("room:start", {"room_id": room_id})
    time_scale = piece.bpm / tempo_bpm
    mistakes = await asyncio.gather(
        *(
            play_part(
                players[part],
                room_id,
                piece.part(part),
                start_at=started["start_at"],
                time_scale=time_scale,
                style=style,
            )
            for part, style in styles.items()
        )
    )
    finished = await host.wait_for("room:finished", timeout=60)
    return finished, players, dict(zip(styles, mistakes, strict=True)), host, piece
