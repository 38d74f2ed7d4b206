"""A bare python-socketio + aiohttp relay: the floor of Tutti's own stack.

No application logic: no authentication, validation, scoring, recording or
recovery streams. Same stack as ``tutti serve`` (aiohttp, python-socketio,
uvloop, orjson as the JSON codec). Events (every one acked):

* ``join {"room_id"}`` → enters the Socket.IO room; ack ``{"room_id"}``.
* ``note {"room_id", ...}`` → relays the payload unchanged as ``note`` to the
  room except the sender; ack ``{"accepted": 1}``.

Run: ``python loadtests/relays/bare_python.py --port 8090``.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import socketio
from aiohttp import web


class _Codec:
    @staticmethod
    def dumps(obj: Any, **_ignored: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(data: Any, **_ignored: Any) -> Any:
        return orjson.loads(data)


def make_app() -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*", json=_Codec)
    app = web.Application()
    sio.attach(app, socketio_path="socket.io")

    @sio.event
    async def join(sid: str, data: dict) -> dict:
        await sio.enter_room(sid, data["room_id"])
        return {"room_id": data["room_id"]}

    @sio.event
    async def note(sid: str, data: dict) -> dict:
        await sio.emit("note", data, room=data["room_id"], skip_sid=sid)
        return {"accepted": 1}

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(make_app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
