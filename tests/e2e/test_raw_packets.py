"""Raw Socket.IO packets against a real server: every event that asks for an ack gets one.

The official client cannot send what a hostile or broken client can: an event
named ``connect`` or ``disconnect``, a payload with lone surrogates, invalid
JSON, or extra arguments. These tests speak Engine.IO v4 / Socket.IO v5 over
a plain WebSocket and check the server answers each with an error ack and
keeps the connection as it was.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.play import connected


class RawSocket:
    """One Socket.IO connection spoken packet by packet (text frames only)."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws
        self.next_id = 1
        self.events: list[list[Any]] = []  # server events received meanwhile

    @classmethod
    async def open(cls, url: str, token: str) -> RawSocket:
        http = aiohttp.ClientSession()
        ws_url = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        ws = await http.ws_connect(ws_url)
        sock = cls(http, ws)
        opening = await sock._text()
        assert opening.startswith("0"), opening
        await ws.send_str("40" + json.dumps({"token": token, "device_id": "raw"}))
        while True:  # presence:state may come before the CONNECT packet
            text = await sock._text()
            if not text.startswith("42"):
                break
            sock.events.append(json.loads(text[2:]))
        assert text.startswith("40"), text
        return sock

    async def _text(self) -> str:
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), 10)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            if msg.data == "2":  # Engine.IO ping
                await self.ws.send_str("3")
                continue
            return msg.data

    async def call_raw(self, body: str) -> list[Any]:
        """Send ``42<id><body>`` (``body`` as it is on the wire) and return the ack's data."""
        ack_id = self.next_id
        self.next_id += 1
        await self.ws.send_str(f"42{ack_id}{body}")
        prefix = f"43{ack_id}"
        while True:
            text = await self._text()
            if text.startswith(prefix):
                return json.loads(text[len(prefix) :])
            if text.startswith("42"):
                self.events.append(json.loads(text[2:]))

    async def call(self, *args: Any) -> Any:
        data = await self.call_raw(json.dumps(list(args)))
        assert len(data) == 1, data
        return data[0]

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


def error_code(ack: Any) -> str | None:
    return ack["error"]["code"] if isinstance(ack, dict) and "error" in ack else None


async def health(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(url + "/api/health") as resp:
        return await resp.json()


async def test_reserved_event_names_are_unknown_events(server):
    host = await connected(server.url, "Reserved")
    sock = await RawSocket.open(server.url, host.token)
    room = (await sock.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"]
    joined = await sock.call("room:join", {"room_id": room["room_id"], "role": "player"})
    assert len(joined["room"]["members"]) == 1
    connections = (await health(server.url))["connections"]

    # A client-sent "disconnect" must not make the server forget the connection.
    assert error_code(await sock.call("disconnect", {})) == "unknown_event"
    assert error_code(await sock.call("disconnect")) == "unknown_event"
    # Nor may a client-sent "connect" register it again (with another token or the same).
    assert error_code(await sock.call("connect", {}, {"token": host.token})) == "unknown_event"
    for name in ("connect_error", "*", "message", "no:such:event"):
        assert error_code(await sock.call(name, {})) == "unknown_event", name

    assert (await health(server.url))["connections"] == connections
    # Still connected, still in the room: it can play.
    start = await sock.call("room:start", {"room_id": room["room_id"]})
    assert start["room_id"] == room["room_id"]
    note = {"room_id": room["room_id"], "type": "on", "pitch": 60, "velocity": 80}
    accepted = await sock.call("note", {**note, "t": start["start_at"]})
    assert accepted["accepted"] == 1
    await sock.close()
    await host.disconnect()


async def test_undecodable_payloads_get_invalid_value(server):
    host = await connected(server.url, "Surrogates")
    sock = await RawSocket.open(server.url, host.token)
    for body in (
        '["room:create",{"mode":"free","name":"\\ud800"}]',  # a lone high surrogate
        '["room:create",{"mode":"free","name":"x\\udc00"}]',  # a lone low surrogate
        '["clock",{"t0":1}',  # not JSON at all
        '["clock",{"t0":NaN}]',
        "[]",  # no event name
        '{"event":"clock"}',  # not an array
    ):
        data = await sock.call_raw(body)
        assert len(data) == 1 and error_code(data[0]) == "invalid_value", (body, data)
    assert "t1" in await sock.call("clock", {"t0": 1})  # the connection carries on
    await sock.close()
    await host.disconnect()


async def test_wrong_number_of_arguments_gets_wrong_arity(server):
    host = await connected(server.url, "Arity")
    sock = await RawSocket.open(server.url, host.token)
    rooms = (await health(server.url))["rooms"]
    for args in (
        ("clock", {"t0": 1}, {"t0": 2}),
        ("room:create", {"mode": "free"}, "extra"),
        ("sync:pull", {"cursor": 0}, 1, 2),
    ):
        assert error_code(await sock.call(*args)) == "wrong_arity", args
    assert (await health(server.url))["rooms"] == rooms  # nothing was created
    assert "t1" in await sock.call("clock", {"t0": 1})
    await sock.close()
    await host.disconnect()
