"""A raw aiohttp websocket relay, no Socket.IO: what the transport itself costs.

The limit the relay benchmark measures Tutti and the bare python-socketio
relay against (issue 12, target 9): aiohttp's websocket, uvloop, orjson and
a dict of rooms, no Engine.IO/Socket.IO framing, sessions, queues, writer
tasks, pings or acks as separate packets of a protocol layer. One websocket
per client at ``/ws``; every message is one JSON text frame
(:mod:`loadtests.rawjson` is its client):

* client → server ``[event, data, ack_id]`` (``ack_id`` an int, or absent);
* server → client ``[ack_id, value]`` (the ack: a number first) or
  ``[event, data]`` (a relayed event: a string first).

Events (every one acked when it has an ``ack_id``):

* ``join {"room_id"}`` → enters the room; ack ``{"room_id"}``.
* ``note {"room_id", ...}`` → relays ``["note", data]`` (``data`` unchanged,
  encoded once) to the room except the sender; ack ``{"accepted": 1}``.

Run: ``python loadtests/relays/raw_aiohttp.py --port 8091``.
"""

from __future__ import annotations

import argparse
import contextlib

import orjson
from aiohttp import WSMsgType, web


def make_app() -> web.Application:
    rooms: dict[str, set[web.WebSocketResponse]] = {}
    accepted = orjson.dumps({"accepted": 1})

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        mine: set[str] = set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                try:
                    message = orjson.loads(msg.data)
                    event, data = message[0], message[1]
                    ack_id = message[2] if len(message) > 2 else None
                    room_id = data["room_id"]
                except (orjson.JSONDecodeError, LookupError, TypeError):
                    continue  # not our protocol: dropped
                if event == "note":
                    out = b'["note",' + orjson.dumps(data) + b"]"
                    text = out.decode()
                    for peer in rooms.get(room_id, ()):
                        if peer is not ws:
                            with contextlib.suppress(ConnectionError):
                                await peer.send_str(text)
                    answer = accepted
                elif event == "join":
                    rooms.setdefault(room_id, set()).add(ws)
                    mine.add(room_id)
                    answer = orjson.dumps({"room_id": room_id})
                else:
                    continue
                if ack_id is not None:
                    await ws.send_str(f"[{int(ack_id)},{answer.decode()}]")
        finally:
            for room_id in mine:
                members = rooms.get(room_id)
                if members is not None:
                    members.discard(ws)
                    if not members:
                        del rooms[room_id]
        return ws

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(make_app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
