"""Observability: /livez, /readyz, /metrics and structured logs of real `tutti serve` processes."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys

import aiohttp
import orjson
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from server.app import create_app
from server.config import Settings
from server.observability.metrics import FastHistogram, Metrics, record_rejection, sql_operation
from tests.play import connected
from tests.servers import start_redis


async def get(url: str, path: str, headers: dict | None = None):
    async with aiohttp.ClientSession() as http, http.get(url + path, headers=headers) as resp:
        body = await resp.read()
        return resp.status, resp.headers, body


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of an exposition: (name, sorted labels) → value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(url: str) -> dict[tuple[str, tuple], float]:
    status, headers, body = await get(url, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(body.decode())


async def free_room(url: str, n_players: int = 2):
    """A started free jam on ``url`` with ``n_players`` connected players."""
    players = [await connected(url, f"p{i}") for i in range(n_players)]
    room_id = (await players[0].call("room:create", {"mode": "free", "count_in_beats": 0}))["room"][
        "room_id"
    ]
    for p in players:
        await p.call("room:join", {"room_id": room_id, "role": "player"})
    await players[0].call("room:start", {"room_id": room_id})
    return players, room_id


async def play(client, room_id: str, n: int) -> None:
    for i in range(n):
        await client.call(
            "note",
            {
                "room_id": room_id,
                "type": "on",
                "pitch": 60 + i % 12,
                "velocity": 80,
                "t": client.server_now(),
            },
        )


# --------------------------------------------------------------------------- probes


async def test_livez_and_readyz_answer_ok(server):
    status, headers, body = await get(server.url, "/livez")
    assert status == 200 and orjson.loads(body) == {"status": "ok"}
    status, headers, body = await get(server.url, "/readyz")
    assert status == 200
    assert orjson.loads(body) == {
        "status": "ok",
        "checks": {"database": "ok"},
        "backlog": {"finished_rooms": 0},  # nothing spooled (hardening issue §3)
    }


async def test_readyz_names_redis_when_it_is_away(fresh_server, tmp_path):
    redis = start_redis(tmp_path / "redis")
    try:
        proc = fresh_server("--redis-url", redis.url)
        status, _, body = await get(proc.url, "/readyz")
        assert status == 200, body
        assert orjson.loads(body)["checks"] == {"database": "ok", "redis": "ok"}
        redis.stop()
        status, _, body = await get(proc.url, "/readyz")
        answer = orjson.loads(body)
        assert status == 503
        assert answer["status"] == "unavailable" and answer["failed"] == ["redis"]
        assert answer["checks"]["database"] == "ok"
        assert answer["checks"]["redis"] == "timeout" or answer["checks"]["redis"].startswith(
            "error: "
        )
        # The process itself is alive: a failing dependency must not get it restarted.
        status, _, _ = await get(proc.url, "/livez")
        assert status == 200
        redis.restart()
        status, body = await ready_again(proc.url)
        assert status == 200, body
        # A Redis that hangs (stopped, not gone) is reported after the short timeout.
        redis.proc.send_signal(signal.SIGSTOP)
        try:
            status, _, body = await get(proc.url, "/readyz")
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        assert status == 503 and orjson.loads(body)["checks"]["redis"] == "timeout"
        status, body = await ready_again(proc.url)
        assert status == 200, body
    finally:
        redis.stop()


async def ready_again(url: str):
    for _ in range(50):  # the client reconnects on its next command
        status, _, body = await get(url, "/readyz")
        if status == 200:
            break
        await asyncio.sleep(0.1)
    return status, body


def test_serve_refuses_an_unknown_log_format(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--log-format", "xml", "--data-dir", tmp_path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "--log-format must be json or text" in run.stderr


# --------------------------------------------------------------------------- metrics


async def test_metrics_count_connections_rooms_notes_and_database(fresh_server):
    proc = fresh_server()
    before = await scrape(proc.url)
    assert before[("tutti_connections", ())] == 0
    assert before[("tutti_rooms", (("phase", "playing"),))] == 0
    players, room_id = await free_room(proc.url)
    await play(players[0], room_id, 30)
    await players[1].wait_for("note", lambda n: n["seq"] == 30, timeout=5)
    await play(players[1], room_id, 5)
    after = await scrape(proc.url)
    assert after[("tutti_connections", ())] == 2
    started = [after[("tutti_rooms", (("phase", p),))] for p in ("counting_in", "playing")]
    assert sum(started) == 1  # the start delay may not have passed yet
    assert after[("tutti_rooms", (("phase", "waiting"),))] == 0
    assert after[("tutti_notes_relayed_total", ())] == 35
    assert after[("tutti_relay_latency_seconds_count", ())] == 35  # one per message
    assert after[("tutti_scoring_seconds_count", ())] == 35  # one per note
    assert 0 < after[("tutti_relay_latency_seconds_sum", ())] < 35.0
    inf = after[("tutti_relay_latency_seconds_bucket", (("le", "+Inf"),))]
    assert inf == 35
    # Guest logins and the room's rows went through the database.
    selects = after[("tutti_db_query_seconds_count", (("operation", "select"),))]
    inserts = after[("tutti_db_query_seconds_count", (("operation", "insert"),))]
    assert selects > before.get(("tutti_db_query_seconds_count", (("operation", "select"),)), 0)
    assert inserts >= 2  # two guests
    # A batch counts each of its notes.
    await players[0].call(
        "notes",
        {
            "room_id": room_id,
            "events": [
                {"type": "on", "pitch": 60 + i, "velocity": 70, "t": players[0].server_now()}
                for i in range(4)
            ],
        },
    )
    batch = await scrape(proc.url)
    assert batch[("tutti_notes_relayed_total", ())] == 39
    assert batch[("tutti_relay_latency_seconds_count", ())] == 36
    assert batch[("tutti_scoring_seconds_count", ())] == 39
    for p in players:
        await p.disconnect()
    await asyncio.sleep(0.3)
    gone = await scrape(proc.url)
    assert gone[("tutti_connections", ())] == 0
    # Every player left: the room finished (kept a while to answer room_finished).
    assert gone[("tutti_rooms", (("phase", "finished"),))] == 1
    assert gone[("tutti_rooms", (("phase", "playing"),))] == 0


async def test_pubsub_lag_is_measured_on_the_receiving_process(fresh_server, redis):
    a_proc = fresh_server("--redis-url", redis.url)
    b_proc = fresh_server("--redis-url", redis.url)
    a = await connected(a_proc.url, "a")
    b = await connected(b_proc.url, "b")
    room_id = (await a.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"][
        "room_id"
    ]
    for client in (a, b):
        await client.call("room:join", {"room_id": room_id, "role": "player"})
    await a.call("room:start", {"room_id": room_id})
    await play(a, room_id, 20)
    await b.wait_for("note", lambda n: n["seq"] == 20, timeout=5)
    lag = await scrape(b_proc.url)
    count = lag[("tutti_redis_pubsub_lag_seconds_count", ())]
    assert count >= 20  # the notes, plus room:state and the like
    assert 0 <= lag[("tutti_redis_pubsub_lag_seconds_sum", ())] / count < 1.0
    for client in (a, b):
        await client.disconnect()


def test_record_rejection_counts_by_scope_and_kind(tmp_path):
    metrics = Metrics(process=False)
    record_rejection(metrics, "user", "rest")
    record_rejection(metrics, "user", "rest")
    record_rejection(metrics, "connection", "notes")
    got = samples(metrics.exposition().decode())
    key = "tutti_rate_limit_rejections_total"
    assert got[(key, (("kind", "rest"), ("scope", "user")))] == 2
    assert got[(key, (("kind", "notes"), ("scope", "connection")))] == 1
    # Through the application or its registry; two apps in one process do not clash.
    app1 = create_app(Settings(data_dir=str(tmp_path / "a"), dev=True))
    app2 = create_app(Settings(data_dir=str(tmp_path / "b"), dev=True))
    from server.appkeys import METRICS

    record_rejection(app1, "ip", "rest")
    record_rejection(app2[METRICS].registry, "ip", "event")
    one = samples(app1[METRICS].exposition().decode())
    two = samples(app2[METRICS].exposition().decode())
    assert one[(key, (("kind", "rest"), ("scope", "ip")))] == 1
    assert (key, (("kind", "event"), ("scope", "ip"))) not in one
    assert two[(key, (("kind", "event"), ("scope", "ip")))] == 1
    with pytest.raises(TypeError):
        record_rejection(object(), "ip", "rest")  # type: ignore[arg-type]


def test_fast_histogram_equals_prometheus_histogram():
    bounds = (0.001, 0.01, 0.1, 1.0)
    fast = FastHistogram("x_seconds", "x", bounds)
    registry = CollectorRegistry()
    reference = Histogram("x_seconds", "x", buckets=bounds, registry=registry)
    values = [0.0, 0.001, 0.0011, 0.05, 0.1, 0.5, 2.0, 7.0, 0.0099]
    for v in values:
        fast.observe(v)
        reference.observe(v)
    fast.observe(0.02, count=3)  # a batch: three notes of 20 ms each
    for _ in range(3):
        reference.observe(0.02)
    ours = {(s.name, tuple(s.labels.items())): s.value for s in fast.family().samples}
    theirs = {
        (s.name, tuple(s.labels.items())): s.value
        for f in registry.collect()
        for s in f.samples
        if not s.name.endswith("_created")
    }
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key])


def test_sql_operation_is_the_verb():
    assert sql_operation("SELECT 1") == "select"
    assert sql_operation("  insert INTO users VALUES (?)") == "insert"
    assert sql_operation("UPDATE x SET y=1") == "update"
    assert sql_operation("DELETE FROM x") == "delete"
    assert sql_operation("PRAGMA journal_mode=WAL") == "other"
    assert sql_operation("WITH a AS (SELECT 1) SELECT * FROM a") == "other"


# --------------------------------------------------------------------------- logs


def json_lines(path) -> list[dict]:
    """Every line of a server's output, each of which must be one JSON object."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    parsed = [orjson.loads(line) for line in lines]
    for entry in parsed:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    return parsed


async def test_json_logs_carry_request_ids(fresh_server):
    proc = fresh_server()
    status, headers, _ = await get(proc.url, "/api/pieces", {"X-Request-ID": "trace-42.a:b"})
    assert status == 200 and headers["X-Request-ID"] == "trace-42.a:b"
    status, headers, _ = await get(proc.url, "/api/pieces/nope")  # an error answer too
    assert status == 404
    generated = headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    _, headers, _ = await get(proc.url, "/livez", {"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])  # replaced, not echoed
    await asyncio.sleep(0.2)
    entries = json_lines(proc.log)
    access = [e for e in entries if e["logger"] == "aiohttp.access"]
    mine = [e for e in access if e.get("request_id") == "trace-42.a:b"]
    assert len(mine) == 1
    assert mine[0]["path"] == "/api/pieces" and mine[0]["status"] == 200
    assert mine[0]["method"] == "GET" and mine[0]["duration_ms"] >= 0
    assert any(e.get("request_id") == generated and e["status"] == 404 for e in access)


async def test_json_logs_carry_connection_ids(fresh_server):
    proc = fresh_server()
    client = await connected(proc.url, "ada")
    sid = client.sio.get_sid()
    room = (await client.call("room:create", {"mode": "free", "name": "logged"}))["room"]
    await client.call("room:join", {"room_id": room["room_id"], "role": "player"})
    await client.disconnect()
    await asyncio.sleep(0.3)
    entries = json_lines(proc.log)
    created = [e for e in entries if f"room {room['room_id']} created" in e["message"]]
    assert len(created) == 1
    assert created[0]["connection_id"] == sid
    assert created[0]["logger"] == "tutti.rooms" and created[0]["level"] == "INFO"
    # ...and the id of the HTTP request carrying the events (here the WebSocket upgrade).
    assert re.fullmatch(r"[0-9a-f]{32}", created[0]["request_id"])
    # Lines outside any connection's handling carry no connection id.
    ready = [e for e in entries if e["message"].startswith("database ready")]
    assert ready and "connection_id" not in ready[0]


async def test_text_log_format(fresh_server):
    proc = fresh_server("--log-format", "text")
    await get(proc.url, "/livez", {"X-Request-ID": "text-1"})
    await asyncio.sleep(0.2)
    text = proc.log.read_text()
    line = next(ln for ln in text.splitlines() if "GET /livez" in ln)
    assert not line.startswith("{")
    assert re.search(r" INFO aiohttp\.access: GET /livez 200 .* \[request_id=text-1\]$", line)


def test_json_formatter_keeps_tracebacks_extras_and_bound_ids():
    import io
    import logging

    from server.observability.logs import CONNECTION_ID, JsonFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tutti.test_formatter")
    logger.addHandler(handler)
    logger.propagate = False
    token = CONNECTION_ID.set("sid-1")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.error("failed %s", "here", exc_info=True, extra={"room_id": "r1"})
    finally:
        CONNECTION_ID.reset(token)
        logger.removeHandler(handler)
    (line,) = out.getvalue().splitlines()
    entry = orjson.loads(line)
    assert entry["message"] == "failed here" and entry["level"] == "ERROR"
    assert entry["connection_id"] == "sid-1" and entry["room_id"] == "r1"
    assert "request_id" not in entry
    assert entry["exception"].startswith("Traceback") and "ValueError: boom" in entry["exception"]
