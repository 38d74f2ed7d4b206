"""Extreme and hostile input against a real server: a coded 4xx, never a 5xx or a silent drop.

* Integer, date and range parameters at and beyond their ends (values past
  64 bits, 5000-digit numbers, 0001-01-01 and 9999-12-31, reversed ranges)
  answer ``400`` with a code; each of these once answered ``500``
  (``OverflowError`` or ``ValueError`` in the handler).
* JSON nested deeper than :data:`server.services.schemas.MAX_JSON_DEPTH`
  levels answers ``too_deep``; a refused mutation is consumed, so the
  device's next mutation is applied (it once wedged the queue for good).
* Every error body is ``{"error": {"code", "message"}}``, unknown routes and
  methods included; the ``Server`` header names no library version.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
import socketio

from server.clients.room_client import TuttiClient
from server.services.schemas import MAX_JSON_DEPTH

DEEP = 300  # past orjson's 254 levels: the depth that once crashed the write


class StdlibJsonPacket(socketio.packet.Packet):
    json = json


def nested(depth: int) -> Any:
    """A JSON value of ``depth`` levels: ``{"a": {"a": … [] …}}``."""
    value: Any = []
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def guest(url: str) -> str:
    client = TuttiClient(url)
    await client.login_guest("extreme")
    return client.token


async def call(url: str, method: str, path: str, token: str | None = None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url + path, headers=headers, **kw) as resp,
    ):
        text = await resp.text()
        return resp, text


def json_error(resp, text: str) -> dict:
    assert resp.content_type == "application/json", (resp.status, text[:200])
    body = json.loads(text)
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


# --------------------------------------------------------------------------- parameters

BIG = str(2**63)  # one past the largest 64-bit integer
HUGE = "9" * 5000  # past Python's int() digit limit


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (f"/api/pieces?offset={BIG}", "out_of_range"),
        (f"/api/pieces?offset={HUGE}", "out_of_range"),
        (f"/api/sync/pull?cursor={HUGE}", "out_of_range"),
        (f"/api/sync/pull?limit=-{HUGE}", "out_of_range"),
        (f"/api/practice/logs?limit={HUGE}", "out_of_range"),
        (f"/api/goals?offset={BIG}", "out_of_range"),
        ("/api/analytics/practice-time?to=9999-12-31", "out_of_range"),
        ("/api/analytics/practice-time?to=0001-01-01", "out_of_range"),
        ("/api/analytics/practice-time?from=9999-12-30&to=9999-12-31", "out_of_range"),
        ("/api/analytics/repertoire?to=9999-12-31", "out_of_range"),
        ("/api/analytics/improvement?to=9999-12-31", "out_of_range"),
        ("/api/analytics/export?to=9999-12-31", "out_of_range"),
        ("/api/analytics/report.pdf?to=9999-12-31", "out_of_range"),
        ("/api/progress/statistics?to=9999-12-31", "out_of_range"),
        ("/api/progress/statistics?from=0001-01-01", "out_of_range"),
        ("/api/practice/sessions?from=0001-01-01", "invalid_value"),
    ],
)
async def test_extreme_parameters_answer_a_coded_400(server, path, code):
    token = await guest(server.url)
    resp, text = await call(server.url, "GET", path, token)
    assert resp.status == 400, (path, resp.status, text[:300])
    assert json_error(resp, text)["code"] == code, (path, text[:300])


async def test_the_last_and_first_allowed_days_are_served(server):
    token = await guest(server.url)
    for query in ("to=9998-12-31", "from=1900-01-01&to=1900-01-31", "from=9998-12-01"):
        for path in ("/api/analytics/practice-time", "/api/progress/statistics"):
            resp, text = await call(server.url, "GET", f"{path}?{query}", token)
            assert resp.status in (200, 400), (path, query, text[:300])
            if resp.status == 400:  # a range past today, or longer than 3660 days
                assert json_error(resp, text)["code"] == "invalid_range"


# --------------------------------------------------------------------------- deep JSON


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_deeply_nested_preferences_are_refused_too_deep(server, method):
    token = await guest(server.url)
    path = "/api/users/me/preferences"
    resp, text = await call(server.url, method, path, token, json={"theme": nested(DEEP)})
    assert resp.status == 400 and json_error(resp, text)["code"] == "too_deep", text[:300]
    resp, text = await call(
        server.url, method, path, token, json={"theme": nested(MAX_JSON_DEPTH + 1)}
    )
    assert resp.status == 400 and json_error(resp, text)["code"] == "too_deep", text[:300]
    resp, text = await call(
        server.url, method, path, token, json={"theme": nested(MAX_JSON_DEPTH - 1)}
    )
    assert resp.status == 200, text[:300]  # the deepest allowed is stored


def _prefs(mid: int, fields: Any) -> dict:
    return {"mutation_id": mid, "entity": "preferences", "op": "put", "fields": fields}


async def test_a_deep_mutation_over_rest_is_consumed_and_the_next_applied(server):
    token = await guest(server.url)
    push = {"client_id": "deep-rest", "mutations": [_prefs(1, {"x": nested(DEEP)})]}
    resp, text = await call(server.url, "POST", "/api/sync/push", token, json=push)
    assert resp.status == 200, text[:300]
    body = json.loads(text)
    assert body["last_mutation_id"] == 1 and body["error"]["code"] == "too_deep", body
    push = {"client_id": "deep-rest", "mutations": [_prefs(2, {"x": 1})]}
    resp, text = await call(server.url, "POST", "/api/sync/push", token, json=push)
    body = json.loads(text)
    assert resp.status == 200 and body["last_mutation_id"] == 2 and "error" not in body, body


async def test_a_deep_mutation_over_socketio_is_consumed_and_the_next_applied(server):
    token = await guest(server.url)
    # The stdlib's JSON (our client's orjson cannot even write it), on this client only:
    # python-socketio keeps the JSON module on the packet class.
    client = socketio.AsyncClient(reconnection=False, serializer=StdlibJsonPacket)
    await client.connect(server.url, auth={"token": token}, transports=["websocket"])
    try:
        ack = await client.call(
            "sync:push",
            {"client_id": "deep-sio", "mutations": [_prefs(1, {"x": nested(DEEP)})]},
        )
        assert ack["last_mutation_id"] == 1 and ack["error"]["code"] == "too_deep", ack
        ack = await client.call(
            "sync:push", {"client_id": "deep-sio", "mutations": [_prefs(2, {"x": 1})]}
        )
        assert ack["last_mutation_id"] == 2 and "error" not in ack, ack
    finally:
        await client.disconnect()


# --------------------------------------------------------------------------- HTTP errors


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/no-such-route", 404, "not_found"),
        ("GET", "/no-such-page", 404, "not_found"),
        ("DELETE", "/api/health", 405, "method_not_allowed"),
        ("POST", "/api/goals/g1", 405, "method_not_allowed"),
    ],
)
async def test_unknown_routes_and_methods_answer_json_errors(server, method, path, status, code):
    resp, text = await call(server.url, method, path)
    assert resp.status == status, text[:300]
    assert json_error(resp, text)["code"] == code
    if status == 405:
        assert "GET" in resp.headers["Allow"]


async def test_the_server_header_names_no_library_version(server):
    for path in ("/api/health", "/api/no-such-route", "/livez"):
        resp, _ = await call(server.url, "GET", path)
        assert "aiohttp" not in resp.headers.get("Server", "").lower(), resp.headers["Server"]
        assert "python" not in resp.headers.get("Server", "").lower(), resp.headers["Server"]
