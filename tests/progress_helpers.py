"""Helpers of the progress and analytics tests: a guest with a REST helper, log bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp

from server.clients.room_client import TuttiClient


class Guest:
    """A guest user of a running server, calling its REST API."""

    def __init__(self, url: str, token: str, user: dict) -> None:
        self.url = url
        self.token = token
        self.id = user["id"]

    @classmethod
    async def login(cls, url: str, name: str = "musician") -> Guest:
        client = TuttiClient(url)
        user = await client.login_guest(name)
        return cls(url, client.token, user)

    async def call(self, method: str, path: str, body: Any = None, **kwargs) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if body is not None:
            kwargs["json"] = body
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.url + path, headers=headers, **kwargs) as resp,
        ):
            raw = await resp.read()
            if resp.content_type == "application/json":
                import orjson

                return resp.status, orjson.loads(raw)
            return resp.status, raw

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200, **kw) -> Any:
        got, data = await self.call(method, path, body, **kw)
        assert got == status, (method, path, got, data)
        return data

    async def get(self, path: str, **params: str) -> Any:
        return await self.ok("GET", path, params=params)

    async def log(self, start: datetime, seconds: float = 600, **fields: Any) -> dict:
        """A manual practice log through the REST logbook."""
        body = {
            "activity_type": "technique",
            "start_time": start.astimezone(UTC).isoformat(),
            "duration_seconds": seconds,
            **fields,
        }
        return await self.ok("POST", "/api/practice/logs", body, status=201)

    async def push(self, logs: list[dict], client_id: str | None = None) -> dict:
        """Push ``logs`` (logbook_entry fields) as sync mutations 1, 2, …"""
        mutations = [
            {
                "mutation_id": i,
                "entity": "logbook_entry",
                "op": "put",
                "id": uuid.uuid4().hex,
                "fields": fields,
            }
            for i, fields in enumerate(logs, start=1)
        ]
        body = {"client_id": client_id or uuid.uuid4().hex, "mutations": mutations}
        answer = await self.ok("POST", "/api/sync/push", body)
        assert "error" not in answer, answer
        return answer


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()
