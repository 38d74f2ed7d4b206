"""Security settings through real servers: the secret key, headers, CORS, private rooms,
host-only actions. Each refusal has its own code and changes nothing."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import socketio

from server.clients.room_client import TuttiClient, TuttiError
from server.realtime import codec
from tests.e2e.test_limits import health
from tests.music import chorale_midi
from tests.play import connected, upload_piece
from tests.servers import free_port


def fetch(url: str, method: str = "GET", headers: dict | None = None):
    """(status, headers, body) of one request, errors included."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def serve(tmp_path, *args: str, env: dict | None = None) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TUTTI_")}
    return subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--data-dir", str(tmp_path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**clean, **(env or {})},
        text=True,
    )


def test_no_secret_key_no_server_outside_dev_mode(tmp_path):
    proc = serve(tmp_path / "prod", "--port", str(free_port()))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "no secret key: set TUTTI_SECRET_KEY" in out and "--dev" in out
    assert not (tmp_path / "prod" / "secret.key").exists()

    port = free_port()
    proc = serve(tmp_path / "dev", "--port", str(port), env={"TUTTI_DEV": "1"})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if fetch(f"http://127.0.0.1:{port}/api/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("the dev server did not start")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "dev mode: an ephemeral secret key" in out
    assert not (tmp_path / "dev" / "secret.key").exists()  # nothing kept on disk


EXPECTED_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@pytest.mark.parametrize(
    "path",
    ["/", "/static/app.js", "/api/health", "/api/pieces/nope", "/api/users/me", "/nowhere"],
)
def test_security_headers_on_pages_assets_and_errors(server, path):
    status, headers, _ = fetch(server.url + path)
    assert status in (200, 401, 404)
    for name, value in EXPECTED_HEADERS.items():
        assert headers[name] == value, name
    csp = headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        # no inline scripts: the client has none; WebAssembly may compile (Verovio's score)
        "script-src 'self' 'wasm-unsafe-eval'",
        "connect-src 'self'",  # REST and Socket.IO websockets to this origin
        "worker-src 'self'",  # a service worker from /static
        "object-src 'none'",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert "unsafe-inline" not in csp and "'unsafe-eval'" not in csp  # JS eval stays refused
    assert "midi=(self)" in headers["Permissions-Policy"]  # Web MIDI for this origin
    assert "Strict-Transport-Security" not in headers  # only when served over HTTPS


def test_the_page_has_no_inline_script(server):
    _, _, body = fetch(server.url + "/")
    page = body.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    assert scripts and page.count("<script") == len(scripts)
    for attributes, content in scripts:  # files of our own origin only, nothing inline
        assert re.search(r'\ssrc="/static/[^"]+"', attributes), attributes
        assert content.strip() == ""
    assert re.search(r"\son[a-z]+\s*=", page) is None  # no inline event handlers
    assert "javascript:" not in page


def test_header_settings(fresh_server):
    server = fresh_server(
        "--content-security-policy", "default-src 'none'",
        "--referrer-policy", "same-origin",
        "--hsts-max-age-s", "31536000",
        "--permissions-policy", "",
    )  # fmt: skip
    _, headers, _ = fetch(server.url + "/api/health")
    assert headers["Content-Security-Policy"] == "default-src 'none'"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Permissions-Policy" not in headers


def preflight(url: str, origin: str):
    return fetch(
        url + "/api/pieces",
        "OPTIONS",
        {"Origin": origin, "Access-Control-Request-Method": "POST",
         "Access-Control-Request-Headers": "authorization"},
    )  # fmt: skip


async def socket_from(url: str, token: str, origin: str) -> bool:
    """Whether a Socket.IO connection with this ``Origin`` is accepted."""
    client = socketio.AsyncClient(reconnection=False, json=codec)
    try:
        await client.connect(
            url, auth={"token": token, "device_id": "d"}, headers={"Origin": origin},
            transports=["polling"], wait_timeout=5,
        )  # fmt: skip
    except socketio.exceptions.ConnectionError:
        return False
    await client.disconnect()
    return True


async def test_cors_same_origin_by_default(server):
    status, headers, _ = preflight(server.url, "https://evil.example")
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    _, headers, _ = fetch(server.url + "/api/pieces", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers
    guest = await connected(server.url, "Origin test")
    assert not await socket_from(server.url, guest.token, "https://evil.example")
    assert await socket_from(server.url, guest.token, server.url)  # the page's own origin
    await guest.disconnect()


async def test_cors_allowed_origins_setting(fresh_server):
    app = "https://app.example"
    server = fresh_server("--cors-origins", f"{app}, https://other.example")
    status, headers, _ = preflight(server.url, app)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == app and headers["Vary"] == "Origin"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    _, headers, _ = fetch(server.url + "/api/pieces", headers={"Origin": app})
    assert headers["Access-Control-Allow-Origin"] == app
    status, headers, _ = preflight(server.url, "https://evil.example")
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    guest = await connected(server.url, "Origin test")
    assert await socket_from(server.url, guest.token, app)
    assert not await socket_from(server.url, guest.token, "https://evil.example")
    await guest.disconnect()


async def test_private_room_needs_its_invite(server):
    host = await connected(server.url, "Host")
    rooms_before = health(server.url)["rooms"]
    for bad, code in (("yes", "wrong_type"), (1, "wrong_type")):
        with pytest.raises(TuttiError) as refused:
            await host.call("room:create", {"mode": "free", "count_in_beats": 0, "private": bad})
        assert refused.value.code == code
    assert health(server.url)["rooms"] == rooms_before  # nothing was created
    created = await host.call("room:create", {"mode": "free", "count_in_beats": 0, "private": True})
    rid, code = created["room"]["room_id"], created["invite_code"]
    assert len(code) == 11
    await host.call("room:join", {"room_id": rid, "role": "player"})  # the host needs none
    public = await host.call("room:create", {"mode": "free", "count_in_beats": 0})
    assert "invite_code" not in public

    guest = await connected(server.url, "Guest")
    for data, code_expected in (
        ({}, "invite_required"),
        ({"invite": "x" * 11}, "invalid_invite"),
        ({"invite": code.upper() if code.upper() != code else code + "x"}, "invalid_invite"),
        ({"invite": 42}, "wrong_type"),
        ({"invite": ""}, "invalid_value"),
        ({"invite": "x" * 65}, "invalid_value"),
    ):
        with pytest.raises(TuttiError) as refused:
            await guest.call("room:join", {"room_id": rid, "role": "player", **data})
        assert refused.value.code == code_expected, data
    state = await host.call("room:join", {"room_id": public["room"]["room_id"], "role": "player"})
    assert len(state["room"]["members"]) == 1
    joined = await guest.call("room:join", {"room_id": rid, "role": "player", "invite": code})
    assert {m["display_name"] for m in joined["room"]["members"]} == {"Host", "Guest"}
    assert health(server.url)["rejections"].get("invite", 0) >= 3
    await host.disconnect()
    await guest.disconnect()


async def test_host_only_actions_are_refused_to_others(server):
    host = await connected(server.url, "Host")
    piece = await upload_piece(host, chorale_midi("bach/bwv66.6"), title="host only")
    room = (
        await host.call(
            "room:create",
            {"piece_id": piece["id"], "mode": "duet", "tempo_bpm": 200, "count_in_beats": 0},
        )
    )["room"]
    rid = room["room_id"]
    other = await connected(server.url, "Other")
    await host.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})
    await other.call("room:join", {"room_id": rid, "role": "player", "part": "Bass"})
    with pytest.raises(TuttiError) as refused:
        await other.call("room:start", {"room_id": rid})
    assert refused.value.code == "not_host"
    started = await host.call("room:start", {"room_id": rid})  # the host can
    assert started["start_at"]
    with pytest.raises(TuttiError) as refused:
        await other.call("room:end", {"room_id": rid})
    assert refused.value.code == "not_host"
    ended = await host.call("room:end", {"room_id": rid})
    assert ended["session_id"]
    await host.disconnect()
    await other.disconnect()


async def test_a_deleted_users_socket_on_another_process_is_let_go(fresh_server, redis):
    shared = ("--redis-url", redis.url)
    one = fresh_server(*shared)
    two = fresh_server(*shared, "--database-url", f"sqlite+aiosqlite:///{one.database}")
    phone = TuttiClient(one.url)
    await phone.connect("Two devices")
    laptop = TuttiClient(two.url)
    laptop.token = phone.token
    await laptop.connect()
    status, _, _ = fetch(
        one.url + "/api/users/me", "DELETE", {"Authorization": f"Bearer {phone.token}"}
    )
    assert status == 204
    for client in (phone, laptop):
        for _ in range(100):
            if not client.sio.connected:
                break
            await asyncio.sleep(0.05)
        assert not client.sio.connected


async def test_cors_headers_on_refusals_made_before_the_handler(fresh_server):
    """The transport's own refusals on /socket.io (here 429 over the per-address cap),
    made before engine.io answers, carry CORS headers for an allowed origin, so a browser
    app can read them (before: none; the REST middlewares' 429/413 had them already)."""
    app = "https://app.example"
    server = fresh_server("--cors-origins", app, "--max-connections-per-ip", "1")
    handshake = server.url + "/socket.io/?EIO=4&transport=polling"
    first = fetch(handshake, headers={"Origin": app})
    assert first[0] == 200
    status, headers, body = fetch(handshake, headers={"Origin": app})
    assert status == 429, body
    assert headers["Access-Control-Allow-Origin"] == app
    status, headers, _ = fetch(handshake, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers
