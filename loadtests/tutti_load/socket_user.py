"""What every simulated user shares: guest login, Socket.IO, clock sync, metrics.

Socket.IO runs on python-socketio's *synchronous* client: locust monkey-patches
threads, sockets and ``websocket-client`` with gevent, so the client's reader
thread is a greenlet and ``call`` blocks only the calling user. Event handlers
run in their own greenlets (python-socketio starts one per event).

Metrics are locust request events (statistics, CSV, charts):
``report(type, name, ms, exc)``; an ``exc`` makes it a failure.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import gevent
import socketio
from locust import HttpUser
from locust.exception import StopUser

from rooms.clock import ClockEstimator, ClockSample
from tutti_load.options import option


class CallFailed(Exception):
    """An error ack: ``code`` is the server's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Lost(Exception):
    """Something sent never arrived where it had to (a lost note, an unsynced change)."""


def wall_ms() -> float:
    return time.time() * 1000.0


class Reporter:
    """``report``/``fire`` as locust request events of one user."""

    environment: Any
    user_id: str | None = None

    def report(
        self, kind: str, name: str, ms: float, exc: BaseException | None = None, length: int = 0
    ) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=ms,
            response_length=length,
            exception=exc,
            context={"user_id": self.user_id},
        )

    def fire(self, kind: str, name: str, start: float, exc: BaseException | None = None) -> None:
        """Report the time since ``start`` (``time.perf_counter()``)."""
        self.report(kind, name, (time.perf_counter() - start) * 1000.0, exc)


class Connection(Reporter):
    """One Socket.IO connection with its own clock estimate (one device)."""

    def __init__(
        self,
        user: HttpUser,
        token: str,
        device_id: str,
        device_name: str,
        handlers: dict[str, Callable[[Any], None]],
    ) -> None:
        self.environment = user.environment
        self.user_id = getattr(user, "user_id", None)
        self.host = user.host
        self.token = token
        self.device_id = device_id
        self.device_name = device_name
        self.clock = ClockEstimator()
        transport = option(self.environment, "transport", "websocket")
        self.transports = None if transport == "upgrade" else [transport]
        self.clock_interval_s = max(0.2, float(option(self.environment, "clock_interval", 2.0)))
        self.sio = socketio.Client(reconnection=False)
        for event, handler in handlers.items():
            self.sio.on(event, handler)
        self._clock_loop: gevent.Greenlet | None = None

    @property
    def connected(self) -> bool:
        return self.sio.connected

    def connect(self, *, sync_clock: bool = True) -> None:
        """Handshake (request ``sio``/``connect``), then 8 clock exchanges and a clock loop."""
        auth = {"token": self.token, "device_id": self.device_id, "device_name": self.device_name}
        start = time.perf_counter()
        try:
            self.sio.connect(self.host, auth=auth, transports=self.transports, wait_timeout=10)
        except Exception as exc:  # refused, or the server is not there
            self.fire("sio", "connect", start, exc)
            raise StopUser() from exc
        self.fire("sio", "connect", start)
        if sync_clock:
            for _ in range(8):
                self.clock_exchange()
            self._clock_loop = gevent.spawn(self._keep_clock)

    def close(self) -> None:
        if self._clock_loop is not None:
            self._clock_loop.kill(block=False)
        with gevent.Timeout(5, False), contextlib.suppress(Exception):
            self.sio.disconnect()

    # -- clock (NTP-style, as server/clients/room_client.py and the browser do) ----------

    def clock_exchange(self) -> None:
        t0 = wall_ms()
        start = time.perf_counter()
        try:
            ack = self.call("clock", {"t0": t0, "rtt_ms": self.clock.rtt_ms})
            sample = ClockSample(t0, ack["t1"], ack["t2"], wall_ms())
        except ValueError:  # the local wall clock stepped back mid-exchange: drop it
            return
        except Exception as exc:
            self.fire("clock", "rtt", start, exc)
            return
        self.clock.add(sample)
        self.report("clock", "rtt", max(0.0, sample.rtt_ms))

    def _keep_clock(self) -> None:
        while self.sio.connected:
            gevent.sleep(self.clock_interval_s)
            self.clock_exchange()

    def server_now(self) -> float:
        """Now on the server clock, epoch ms."""
        return self.clock.to_server(wall_ms())

    # -- calls -------------------------------------------------------------------------------

    def call(self, event: str, data: Any, timeout: float = 10.0) -> Any:
        """Emit with an ack; an error ack raises :class:`CallFailed`."""
        ack = self.sio.call(event, data, timeout=timeout)
        if isinstance(ack, dict) and "error" in ack:
            raise CallFailed(ack["error"].get("code", "?"), ack["error"].get("message", ""))
        return ack

    def timed_call(self, event: str, data: Any, kind: str = "sio") -> Any:
        """``call`` reported as request ``kind``/``event``; ``None`` on failure."""
        start = time.perf_counter()
        try:
            ack = self.call(event, data)
        except Exception as exc:
            self.fire(kind, event, start, exc)
            return None
        self.fire(kind, event, start)
        return ack


class TuttiUser(Reporter, HttpUser):
    """An abstract HttpUser with a guest login (``/api/auth/guest``)."""

    abstract = True
    token: str = ""

    def login(self, prefix: str) -> None:
        self.display_name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        with self.client.post(
            "/api/auth/guest",
            json={"display_name": self.display_name},
            name="/api/auth/guest",
            catch_response=True,
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"guest login answered {resp.status_code}: {resp.text[:200]}")
                raise StopUser()
            body = resp.json()
        self.token = body["access_token"]
        self.user_id = body["user"]["id"]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def connection(
        self, handlers: dict[str, Callable[[Any], None]], device: str = "locust"
    ) -> Connection:
        return Connection(self, self.token, uuid.uuid4().hex[:12], device, handlers)
