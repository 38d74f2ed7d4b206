"""A small offline-first sync client: one device of one user (tests, benchmarks, tools).

A :class:`SyncDevice` keeps

* ``rows`` — the server's state as far as it has pulled: ``(entity, id) →
  {"version", "deleted", "fields"}``, and ``cursor``, the version it has
  pulled up to;
* ``outbox`` — its own mutations not yet acknowledged, numbered 1, 2, 3, …
  under its ``client_id``. A mutation is written to the store file *before*
  anything is sent (no debounced write to lose on close);
* ``acked`` — acknowledged mutations whose effect it has not pulled yet
  (each with the ``version`` the push answered); dropped once ``cursor``
  reaches that version.

What the device shows (:meth:`SyncDevice.view`) is ``rows`` with ``acked``
and ``outbox`` replayed on top, by the server's rules (a put patches fields
or creates, a put on a tombstone is ignored, a delete makes a tombstone).
Once everything is pushed and pulled, the view *is* the server's state.

:meth:`push` sends the outbox (at most 100 per request) and retries on a
transport failure with the same mutation ids — a lost ack is harmless, the
server skips ids it has applied. :meth:`pull` pages through changes by cursor.
A ``sync:poke`` from the server starts a pull. Pushing and pulling go over
Socket.IO (``transport="socketio"``) or REST (``transport="rest"``); pokes
always come over the Socket.IO connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import socketio

from server.clients.sync_transports import (
    RestTransport,
    SocketTransport,
    SyncRefused,
    TransportError,
)
from server.realtime import codec

Key = tuple[str, str]
PREFERENCES_ID = "me"
MAX_PUSH = 100


# --------------------------------------------------------------------------- transports


# --------------------------------------------------------------------------- local rules


def apply_mutation(rows: dict[Key, dict[str, Any]], mutation: dict[str, Any]) -> None:
    """Apply ``mutation`` to ``rows`` by the server's rules (an optimistic local write)."""
    entity = mutation["entity"]
    key = (entity, mutation.get("id") or PREFERENCES_ID)
    row = rows.get(key)
    if entity == "preferences":
        fields = dict(row["fields"]) if row else {}
        if mutation["op"] == "delete":
            fields = {}
        for name, value in mutation.get("fields", {}).items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        rows[key] = {"version": row["version"] if row else 0, "deleted": False, "fields": fields}
        return
    if mutation["op"] == "delete":
        if row is not None:
            rows[key] = {**row, "deleted": True, "fields": {}}
        return
    if row is None:
        rows[key] = {"version": 0, "deleted": False, "fields": dict(mutation["fields"])}
    elif not row["deleted"]:  # a put on a tombstone is ignored: delete wins
        rows[key] = {**row, "fields": {**row["fields"], **mutation["fields"]}}


# --------------------------------------------------------------------------- the device


class SyncDevice:
    """One device (one ``client_id``) of one user; see the module docstring.

    ``store`` is the file the device's state lives in (``None``: memory only).
    ``clock_offset_s`` skews the device's own clock (:meth:`now`), which it
    uses only to stamp data such as a log's ``start_time``.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        client_id: str | None = None,
        store: str | os.PathLike[str] | None = None,
        transport: str = "socketio",
        clock_offset_s: float = 0.0,
        name: str = "device",
        timeout: float = 5.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.name = name
        self.store = Path(store) if store is not None else None
        self.clock_offset_s = clock_offset_s
        self.client_id = client_id or uuid.uuid4().hex
        self.next_mutation_id = 1
        self.outbox: list[dict[str, Any]] = []
        self.acked: list[tuple[int, dict[str, Any]]] = []  # (version, mutation)
        self.rows: dict[Key, dict[str, Any]] = {}
        self.cursor = 0
        self.rejected: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (mutation, error)
        self.pokes: list[dict[str, Any]] = []
        self.listeners: list[Callable[[dict[str, Any], float], None]] = []
        self.sio = socketio.AsyncClient(reconnection=False, json=codec)
        self.sio.on("sync:poke", self._on_poke)
        self.transport_name = transport
        self.rest = RestTransport(url, token, timeout)
        self.transport: SocketTransport | RestTransport = (
            self.rest if transport == "rest" else SocketTransport(self.sio, timeout)
        )
        self._push_lock = asyncio.Lock()
        self._pull_lock = asyncio.Lock()
        self._pull_task: asyncio.Task | None = None
        self._pull_again = False
        if self.store is not None and self.store.exists():
            self._load()

    # -- persistence -------------------------------------------------------------------

    def _save(self) -> None:
        if self.store is None:
            return
        data = {
            "client_id": self.client_id,
            "next_mutation_id": self.next_mutation_id,
            "outbox": self.outbox,
            "acked": self.acked,
            "rows": [[k[0], k[1], v] for k, v in self.rows.items()],
            "cursor": self.cursor,
        }
        tmp = self.store.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.store)

    def _load(self) -> None:
        data = orjson.loads(self.store.read_bytes())
        self.client_id = data["client_id"]
        self.next_mutation_id = data["next_mutation_id"]
        self.outbox = data["outbox"]
        self.acked = [(v, m) for v, m in data["acked"]]
        self.rows = {(e, i): v for e, i, v in data["rows"]}
        self.cursor = data["cursor"]

    # -- connection --------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self.sio.connected

    async def connect(self) -> None:
        """Open the Socket.IO connection (pokes; and push/pull with ``socketio``)."""
        self.rest.enabled = True
        if not self.sio.connected:
            await self.sio.connect(
                self.url,
                auth={
                    "token": self.token,
                    "device_id": self.client_id[:64],
                    "device_name": self.name[:100],
                },
                transports=["websocket"],
                wait_timeout=10,
            )

    async def disconnect(self) -> None:
        """Go offline: no pokes, pushes and pulls fail until :meth:`connect`."""
        self.rest.enabled = False
        if self._pull_task is not None:
            self._pull_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pull_task
            self._pull_task = None
        if self.sio.connected:
            await self.sio.disconnect()

    async def close(self) -> None:
        await self.disconnect()
        await self.rest.close()

    # -- local writes ------------------------------------------------------------------

    def now(self) -> datetime:
        """The device's clock (possibly wrong: it is only ever data)."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset_s)

    def mutate(self, entity: str, op: str, row_id: str, fields: dict[str, Any] | None = None):
        """Queue a mutation (persisted before this returns) and return it."""
        mutation = {
            "mutation_id": self.next_mutation_id,
            "entity": entity,
            "op": op,
            "id": row_id,
            "fields": dict(fields or {}),
        }
        self.next_mutation_id += 1
        self.outbox.append(mutation)
        self._save()
        return mutation

    def put(self, entity: str, row_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return self.mutate(entity, "put", row_id, fields)

    def delete(self, entity: str, row_id: str) -> dict[str, Any]:
        return self.mutate(entity, "delete", row_id)

    def create(self, entity: str, fields: dict[str, Any]) -> str:
        row_id = uuid.uuid4().hex
        self.put(entity, row_id, fields)
        return row_id

    def log_practice(self, activity_type: str, minutes: float, **fields: Any) -> str:
        """A quick log stamped with this device's clock."""
        start = self.now() - timedelta(minutes=minutes)
        return self.create(
            "logbook_entry",
            {
                "source": "quick_log",
                "activity_type": activity_type,
                "start_time": start.isoformat(),
                "duration_seconds": minutes * 60.0,
                **fields,
            },
        )

    # -- push --------------------------------------------------------------------------

    async def push(self, *, attempts: int = 4, backoff_s: float = 0.02) -> bool:
        """Send the outbox until it is empty; ``False`` when the transport keeps failing."""
        async with self._push_lock:
            while self.outbox:
                body = {"client_id": self.client_id, "mutations": self.outbox[:MAX_PUSH]}
                answer = None
                for attempt in range(attempts):
                    try:
                        answer = await self.transport.push(body)
                        break
                    except TransportError:
                        if not self.rest.enabled:  # offline: keep the outbox for later
                            return False
                        await asyncio.sleep(backoff_s * 2**attempt)
                if answer is None:
                    return False
                self.acknowledge(answer)
                error = answer.get("error")
                if error is not None and error["code"] == "mutation_gap":
                    raise SyncRefused("mutation_gap", error["message"])
            return True

    def acknowledge(self, answer: dict[str, Any]) -> None:
        """Take a push answer: acknowledged mutations leave the outbox."""
        last = answer["last_mutation_id"]
        error = answer.get("error")
        rejected = error["mutation_id"] if error and error["code"] != "mutation_gap" else None
        keep = []
        for mutation in self.outbox:
            mid = mutation["mutation_id"]
            if mid > last:
                keep.append(mutation)
            elif mid == rejected:
                self.rejected.append((mutation, error))
            else:
                self.acked.append((answer["version"], mutation))
        self.outbox = keep
        self._prune()
        self._save()

    # -- pull --------------------------------------------------------------------------

    async def pull(self, limit: int = 500) -> int:
        """Pull every change after ``cursor``; returns how many were applied."""
        applied = 0
        async with self._pull_lock:
            while True:
                answer = await self.transport.pull(self.cursor, limit)
                now = time.perf_counter()
                for change in answer["changes"]:
                    key = (change["entity"], change["id"])
                    held = self.rows.get(key)
                    if held is None or change["version"] > held["version"]:
                        self.rows[key] = {
                            "version": change["version"],
                            "deleted": change["deleted"],
                            "fields": change["fields"],
                        }
                        applied += 1
                        for listener in self.listeners:
                            listener(change, now)
                self.cursor = max(self.cursor, answer["cursor"])
                self._prune()
                self._save()
                if not answer["has_more"]:
                    return applied

    def _prune(self) -> None:
        self.acked = [(v, m) for v, m in self.acked if v > self.cursor]

    async def sync(self) -> bool:
        """Push the outbox, then pull; ``False`` when offline."""
        try:
            pushed = await self.push()
            await self.pull()
        except TransportError:
            return False
        return pushed

    async def _on_poke(self, data: Any = None) -> None:
        self.pokes.append(data)
        if isinstance(data, dict) and data.get("version", 0) <= self.cursor:
            return
        if self._pull_task is not None and not self._pull_task.done():
            self._pull_again = True
            return
        self._pull_task = asyncio.get_running_loop().create_task(self._pull_on_poke())

    async def _pull_on_poke(self) -> None:
        while True:
            self._pull_again = False
            with contextlib.suppress(TransportError):
                await self.pull()
            if not self._pull_again:
                return

    async def idle(self) -> None:
        """Wait for a pull started by a poke to finish."""
        while self._pull_task is not None and not self._pull_task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._pull_task)

    # -- what the device shows ---------------------------------------------------------

    def view(self) -> dict[Key, dict[str, Any]]:
        """Live rows as the device shows them: pulled state + its own pending mutations."""
        rows = {k: dict(v) for k, v in self.rows.items()}
        pending = sorted([m for _, m in self.acked] + self.outbox, key=lambda m: m["mutation_id"])
        for mutation in pending:
            apply_mutation(rows, mutation)
        return {k: v["fields"] for k, v in rows.items() if not v["deleted"]}

    def state(self) -> dict[Key, dict[str, Any]]:
        """The pulled state, tombstones included (compare with the server's)."""
        return {k: dict(v) for k, v in self.rows.items()}


async def server_state(url: str, token: str) -> dict[Key, dict[str, Any]]:
    """The user's whole logbook on the server, as a fresh device would pull it."""
    transport = RestTransport(url, token)
    rows: dict[Key, dict[str, Any]] = {}
    cursor = 0
    try:
        while True:
            answer = await transport.pull(cursor, 1000)
            for change in answer["changes"]:
                rows[(change["entity"], change["id"])] = {
                    "version": change["version"],
                    "deleted": change["deleted"],
                    "fields": change["fields"],
                }
            cursor = answer["cursor"]
            if not answer["has_more"]:
                return rows
    finally:
        await transport.close()
