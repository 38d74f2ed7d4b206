"""How a sync device reaches the server: over its Socket.IO connection or over REST,
with the same answers."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import socketio


class TransportError(Exception):
    """The request or its answer was lost (offline, timeout, connection dropped)."""


class SyncRefused(Exception):
    """The server refused a whole request (a bug in the client, not a network fault)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SocketTransport:
    """``sync:push`` / ``sync:pull`` over a connected ``socketio.AsyncClient``."""

    def __init__(self, sio: socketio.AsyncClient, timeout: float = 5.0) -> None:
        self.sio = sio
        self.timeout = timeout

    async def _call(self, event: str, data: Any) -> dict[str, Any]:
        if not self.sio.connected:
            raise TransportError("not connected")
        try:
            answer = await self.sio.call(event, data, timeout=self.timeout)
        except (socketio.exceptions.SocketIOError, ConnectionError, OSError) as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc
        if not isinstance(answer, dict):
            raise TransportError(f"unexpected answer {answer!r}")
        return answer

    async def push(self, body: dict[str, Any]) -> dict[str, Any]:
        return _checked(await self._call("sync:push", body))

    async def pull(self, cursor: int, limit: int) -> dict[str, Any]:
        return _checked(await self._call("sync:pull", {"cursor": cursor, "limit": limit}))


class RestTransport:
    """``POST /api/sync/push`` / ``GET /api/sync/pull`` with a bearer token."""

    def __init__(self, url: str, token: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.http: aiohttp.ClientSession | None = None
        self.enabled = True  # False: "offline"

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if not self.enabled:
            raise TransportError("offline")
        if self.http is None:
            self.http = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self.http.request(
                method, self.url + path, headers=self.headers, **kwargs
            ) as resp:
                body = await resp.json(loads=orjson.loads, content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc
        return _checked(body)

    async def push(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", "/api/sync/push", json=body)

    async def pull(self, cursor: int, limit: int) -> dict[str, Any]:
        return await self._request(
            "GET", "/api/sync/pull", params={"cursor": str(cursor), "limit": str(limit)}
        )

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None


def _checked(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise TransportError(f"unexpected answer {answer!r}")
    if "error" in answer and "last_mutation_id" not in answer:
        raise SyncRefused(answer["error"]["code"], answer["error"]["message"])
    return answer
