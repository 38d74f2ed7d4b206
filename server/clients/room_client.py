"""A small Tutti client over python-socketio's ``AsyncClient``, for bots, the demo and tests.

It logs in as a guest over REST, connects with the handshake ``auth``,
synchronises its clock NTP-style (:mod:`rooms.clock`) and turns error acks
into :class:`TuttiError`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from typing import Any

import aiohttp
import socketio

from rooms import errors
from rooms.clock import ClockEstimator, ClockSample
from server.realtime import codec


class TuttiError(errors.TuttiError):
    """An error ack or refused connection from the server; ``code`` is the server's error code."""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def local_ms() -> float:
    """This machine's clock, Unix epoch ms."""
    return time.time() * 1000.0


class TuttiClient:
    """One device's connection to a Tutti server at ``url`` (``http://host:port``)."""

    def __init__(self, url: str, *, transports: list[str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.transports = transports
        self.sio = socketio.AsyncClient(reconnection=False, json=codec)
        self.clock = ClockEstimator()
        self.user: dict[str, Any] = {}
        self.token: str | None = None
        self.received: dict[str, list[Any]] = defaultdict(list)
        self._waiters: list[tuple[str, Any, asyncio.Future]] = []
        self.sio.on("*", self._on_any)

    async def _on_any(self, event: str, data: Any = None) -> None:
        self.received[event].append(data)
        for waiter in list(self._waiters):
            name, predicate, future = waiter
            if name == event and not future.done() and (predicate is None or predicate(data)):
                future.set_result(data)
                self._waiters.remove(waiter)

    async def login_guest(self, display_name: str) -> dict[str, Any]:
        """``POST /api/auth/guest``; keeps the token; returns the user."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/api/auth/guest", json={"display_name": display_name}) as resp,
        ):
            body = await resp.json()
            if resp.status != 201:
                raise TuttiError(body["error"]["code"], body["error"]["message"])
        self.token = body["access_token"]
        self.user = body["user"]
        return self.user

    async def connect(
        self,
        display_name: str | None = None,
        *,
        device_id: str | None = None,
        device_name: str = "",
    ) -> None:
        """Log in as a guest (when no token yet) and open the Socket.IO connection."""
        if self.token is None:
            await self.login_guest(display_name or "player")
        auth = {
            "token": self.token,
            "device_id": device_id or uuid.uuid4().hex[:12],
            "device_name": device_name,
        }
        refusals: list[Any] = []
        self.sio.on("connect_error", refusals.append)
        try:
            await self.sio.connect(self.url, auth=auth, transports=self.transports, wait_timeout=10)
        except socketio.exceptions.ConnectionError as exc:
            reason = refusals[-1] if refusals else None
            if isinstance(reason, dict) and isinstance(reason.get("data"), dict):
                reason = reason["data"]  # ConnectionRefusedError(message, data) sends both
            if isinstance(reason, dict) and "code" in reason:
                raise TuttiError(reason["code"], reason.get("message", "")) from exc
            raise TuttiError("connection_failed", str(exc)) from exc

    async def call(self, event: str, data: Any = None, timeout: float = 10.0) -> Any:
        """Send an event and return its ack; raise :class:`TuttiError` on an error ack."""
        ack = await self.sio.call(event, data, timeout=timeout)
        if isinstance(ack, dict) and "error" in ack:
            raise TuttiError(ack["error"]["code"], ack["error"]["message"])
        return ack

    async def sync_clock(self, samples: int = 8) -> None:
        """Run ``samples`` clock exchanges (NTP-style) and report the median RTT."""
        for _ in range(samples):
            t0 = local_ms()
            ack = await self.call("clock", {"t0": t0, "rtt_ms": self.clock.rtt_ms})
            t3 = local_ms()
            self.clock.add(ClockSample(t0, ack["t1"], ack["t2"], t3))
        await self.call("clock", {"t0": local_ms(), "rtt_ms": self.clock.rtt_ms})

    def server_now(self) -> float:
        """Now on the server clock, epoch ms."""
        return self.clock.to_server(local_ms())

    async def wait_for(self, event: str, predicate=None, timeout: float = 30.0) -> Any:
        """The next ``event`` (matching ``predicate``), or one already received."""
        for data in self.received.get(event, []):
            if predicate is None or predicate(data):
                return data
        future = asyncio.get_running_loop().create_future()
        waiter = (event, predicate, future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def fetch_json(self, path: str) -> Any:
        """``GET`` a JSON resource (with this client's token); raise TuttiError on an error."""
        async with (
            aiohttp.ClientSession(headers=self._auth_headers()) as http,
            http.get(self.url + path) as resp,
        ):
            body = await resp.json()
            if resp.status != 200:
                raise TuttiError(body["error"]["code"], body["error"]["message"])
            return body

    async def fetch_bytes(self, path: str) -> bytes:
        """``GET`` a binary resource (with this client's token)."""
        async with (
            aiohttp.ClientSession(headers=self._auth_headers()) as http,
            http.get(self.url + path) as resp,
        ):
            if resp.status != 200:
                body = await resp.json()
                raise TuttiError(body["error"]["code"], body["error"]["message"])
            return await resp.read()

    async def disconnect(self) -> None:
        await self.sio.disconnect()
