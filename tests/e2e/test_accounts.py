"""Accounts through a real ``tutti serve``: magic links (outbox and SMTP), token rotation,
guest → account merge, Socket.IO reconnection with a refreshed token.

The outbox is ``DATA_DIR/outbox``; the SMTP test runs a real aiosmtpd server.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from server.clients.room_client import TuttiClient, TuttiError
from server.db.engine import make_engine, make_sessionmaker, sqlite_url
from server.db.models import ClientMutation, Goal, UserPreferences
from server.db.versions import next_version
from server.services.auth import issue_token
from tests.servers import free_port

LINK_RE = re.compile(r"#login=([A-Za-z0-9_-]+)")


async def call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """One REST request; returns ``(status, JSON body or None)``."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    kwargs: dict[str, Any] = {"headers": headers}
    if raw is not None:
        kwargs["data"] = raw
    elif body is not None:
        kwargs["json"] = body
    async with aiohttp.ClientSession() as http, http.request(method, base + path, **kwargs) as resp:
        text = await resp.text()
        return resp.status, (await resp.json() if text else None)


def outbox_messages(data_dir: Path, to: str) -> list[email.message.EmailMessage]:
    """The messages in the outbox addressed to ``to``, oldest first (names sort by time)."""
    found = []
    for path in sorted((data_dir / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == to:
            found.append(message)
    return found


def link_token(message: email.message.EmailMessage) -> str:
    match = LINK_RE.search(message.get_content())
    assert match, message.get_content()
    return match.group(1)


async def request_link(server, address: str, guest_token: str | None = None) -> str:
    """``POST /api/auth/login`` and take the link's token from the outbox."""
    before = len(outbox_messages(server.data_dir, address))
    status, body = await call(
        server.url, "POST", "/api/auth/login", {"email": address}, token=guest_token
    )
    assert status == 202, body
    assert body == {"sent": True, "email": address, "expires_in": 600}
    messages = outbox_messages(server.data_dir, address)
    assert len(messages) == before + 1
    return link_token(messages[-1])


async def log_in(server, address: str, guest_token: str | None = None) -> dict:
    token = await request_link(server, address, guest_token)
    status, body = await call(server.url, "POST", "/api/auth/verify", {"token": token})
    assert status == 200, body
    return body


def error_code(status: int, body: Any, expected_status: int) -> str:
    assert status == expected_status, body
    return body["error"]["code"]


# --------------------------------------------------------------------------- the flow


async def test_magic_link_flow_rotation_reuse_and_logout(server):
    address = "Ada.Lovelace+tutti@Example.com"
    normal = "ada.lovelace+tutti@example.com"
    status, body = await call(server.url, "POST", "/api/auth/login", {"email": f"  {address} "})
    assert status == 202 and body["email"] == normal

    # The outbox holds an RFC 5322 message with the link; the log has it too.
    [message] = outbox_messages(server.data_dir, normal)
    assert message["Subject"] and message["Date"] and message["Message-ID"]
    assert message["From"] == "tutti@localhost"
    assert f"http://127.0.0.1:{server.port}/#login=" in message.get_content()
    link = link_token(message)
    assert len(link) == 43  # token_urlsafe(32)
    # The log names the address and the outbox file, never the link (hardening issue §4).
    assert link not in server.log.read_text()
    raw = next((server.data_dir / "outbox").glob("*.eml")).read_bytes()
    assert b"\r\n" in raw  # RFC 5322 line ends

    status, tokens = await call(server.url, "POST", "/api/auth/verify", {"token": link})
    assert status == 200, tokens
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
    user = tokens["user"]
    assert user["email"] == normal and user["is_guest"] is False
    assert user["display_name"] == "ada.lovelace"

    # Only SHA-256 hashes are stored.
    with sqlite3.connect(server.database) as db:
        hashes = {h for (h,) in db.execute("SELECT token_hash FROM login_links")}
        hashes |= {h for (h,) in db.execute("SELECT token_hash FROM refresh_tokens")}
    assert hashlib.sha256(link.encode()).hexdigest() in hashes
    assert hashlib.sha256(tokens["refresh_token"].encode()).hexdigest() in hashes
    assert link not in hashes and tokens["refresh_token"] not in hashes

    status, me = await call(server.url, "GET", "/api/auth/me", token=tokens["access_token"])
    assert status == 200 and me == user

    # Rotation: every refresh gives a new pair and spends the old refresh token.
    r1 = tokens["refresh_token"]
    status, second = await call(server.url, "POST", "/api/auth/refresh", {"refresh_token": r1})
    assert status == 200, second
    r2 = second["refresh_token"]
    assert r2 != r1 and second["user"] == user and second["expires_in"] == 900
    status, me = await call(server.url, "GET", "/api/auth/me", token=second["access_token"])
    assert status == 200 and me["id"] == user["id"]
    status, third = await call(server.url, "POST", "/api/auth/refresh", {"refresh_token": r2})
    assert status == 200, third
    r3 = third["refresh_token"]

    # Reuse of a spent token revokes the whole family, the newest token too.
    status, body = await call(server.url, "POST", "/api/auth/refresh", {"refresh_token": r1})
    assert error_code(status, body, 401) == "refresh_reused"
    status, body = await call(server.url, "POST", "/api/auth/refresh", {"refresh_token": r3})
    assert error_code(status, body, 401) == "refresh_revoked"

    # A second login finds the same account; logout ends that login.
    again = await log_in(server, normal)
    assert again["user"] == user
    refresh = again["refresh_token"]
    status, body = await call(server.url, "POST", "/api/auth/logout", {"refresh_token": refresh})
    assert status == 204 and body is None
    status, body = await call(server.url, "POST", "/api/auth/refresh", {"refresh_token": refresh})
    assert error_code(status, body, 401) == "refresh_revoked"
    status, _ = await call(server.url, "POST", "/api/auth/logout", {"refresh_token": refresh})
    assert status == 204  # idempotent
    status, body = await call(server.url, "POST", "/api/auth/logout", {"refresh_token": "x" * 43})
    assert error_code(status, body, 401) == "invalid_refresh_token"


async def test_link_is_single_use(server):
    token = await request_link(server, "once@example.com")
    status, _ = await call(server.url, "POST", "/api/auth/verify", {"token": token})
    assert status == 200
    status, body = await call(server.url, "POST", "/api/auth/verify", {"token": token})
    assert error_code(status, body, 401) == "link_used"
    status, body = await call(server.url, "POST", "/api/auth/verify", {"token": token[::-1]})
    assert error_code(status, body, 401) == "invalid_link"


async def test_link_expires(fresh_server):
    server = fresh_server("--login-link-ttl-s", "1")
    status, _ = await call(server.url, "POST", "/api/auth/login", {"email": "late@example.com"})
    assert status == 202
    [message] = outbox_messages(server.data_dir, "late@example.com")
    await asyncio.sleep(1.5)
    status, body = await call(
        server.url, "POST", "/api/auth/verify", {"token": link_token(message)}
    )
    assert error_code(status, body, 401) == "link_expired"


class _Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


async def test_login_mail_via_smtp(fresh_server):
    inbox = _Inbox()
    port = free_port()
    smtpd = Controller(inbox, hostname="127.0.0.1", port=port)
    smtpd.start()
    try:
        server = fresh_server(
            "--smtp-host", "127.0.0.1",
            "--smtp-port", str(port),
            "--smtp-starttls", "false",
            "--smtp-from", "practice@tutti.example",
            "--public-url", "https://tutti.example/",
        )  # fmt: skip
        status, body = await call(server.url, "POST", "/api/auth/login", {"email": "b@example.com"})
        assert status == 202, body
        [(sender, recipients, content)] = inbox.messages
        assert sender == "practice@tutti.example" and recipients == ["b@example.com"]
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert "https://tutti.example/#login=" in message.get_content()
        status, tokens = await call(
            server.url, "POST", "/api/auth/verify", {"token": link_token(message)}
        )
        assert status == 200 and tokens["user"]["email"] == "b@example.com"
        assert not (server.data_dir / "outbox").exists()
    finally:
        smtpd.stop()
    # The SMTP server is gone: the login is refused, not lost silently.
    status, body = await call(server.url, "POST", "/api/auth/login", {"email": "b@example.com"})
    assert error_code(status, body, 503) == "mail_failed"
    with sqlite3.connect(server.database) as db:  # the unsent link was discarded
        assert db.execute("SELECT count(*) FROM login_links").fetchone() == (1,)


@pytest.mark.parametrize(
    ("path", "raw", "code"),
    [
        ("/api/auth/login", b"{not json", "invalid_json"),
        ("/api/auth/login", b"", "invalid_json"),
        ("/api/auth/login", b"[]", "wrong_type"),
        ("/api/auth/login", b"{}", "missing_field"),
        ("/api/auth/login", b'{"email": 5}', "wrong_type"),
        ("/api/auth/login", b'{"email": "a@example.com", "x": 1}', "unknown_field"),
        ("/api/auth/login", b'{"email": "not-an-address"}', "invalid_email"),
        ("/api/auth/login", b'{"email": "a@b@example.com"}', "invalid_email"),
        ("/api/auth/login", b'{"email": "   "}', "invalid_email"),
        ("/api/auth/login", b'{"email": "' + b"a" * 400 + b'@example.com"}', "invalid_value"),
        ("/api/auth/verify", b'{"token": ""}', "invalid_value"),
        ("/api/auth/verify", b'{"token": null}', "wrong_type"),
        ("/api/auth/verify", b'{"token": "abc", "device_id": 3}', "wrong_type"),
        ("/api/auth/verify", b'"token"', "wrong_type"),
        ("/api/auth/refresh", b'{"refresh_token": 1}', "wrong_type"),
        ("/api/auth/refresh", b'{"refresh_token": "a", "token": "a"}', "unknown_field"),
        ("/api/auth/refresh", b'{"refresh_token": "' + b"a" * 600 + b'"}', "invalid_value"),
        ("/api/auth/logout", b"{}", "missing_field"),
    ],
)
async def test_bad_bodies(server, path, raw, code):
    status, body = await call(server.url, "POST", path, raw=raw)
    assert error_code(status, body, 400) == code


async def test_bad_tokens_and_rate_limit(server):
    status, body = await call(server.url, "GET", "/api/auth/me")
    assert error_code(status, body, 401) == "missing_token"
    status, body = await call(server.url, "GET", "/api/auth/me", token="nonsense")
    assert error_code(status, body, 401) == "invalid_token"
    status, body = await call(
        server.url, "POST", "/api/auth/login", {"email": "c@example.com"}, token="nonsense"
    )
    assert error_code(status, body, 401) == "invalid_token"
    status, body = await call(server.url, "POST", "/api/auth/verify", {"token": "x" * 43})
    assert error_code(status, body, 401) == "invalid_link"
    status, body = await call(server.url, "POST", "/api/auth/refresh", {"refresh_token": "y"})
    assert error_code(status, body, 401) == "invalid_refresh_token"

    for _ in range(5):
        await request_link(server, "eager@example.com")
    status, body = await call(server.url, "POST", "/api/auth/login", {"email": "eager@example.com"})
    assert error_code(status, body, 429) == "too_many_links"


# --------------------------------------------------------------------------- guest merge


async def play_free_room(host: TuttiClient, *others: TuttiClient, end: bool = True) -> str:
    """A short free jam: everyone joins as a player, plays three notes; the host ends it.

    Returns the room id, or with ``end`` the saved session id.
    """
    room = await host.call("room:create", {"mode": "free", "count_in_beats": 0, "name": "jam"})
    room_id = room["room"]["room_id"]
    for client in (host, *others):
        await client.call("room:join", {"room_id": room_id, "role": "player"})
    started = await host.call("room:start", {"room_id": room_id})
    await asyncio.sleep(max(0.0, (started["start_at"] - host.server_now()) / 1000) + 0.05)
    for client in (host, *others):
        for pitch in (60, 64, 67):
            t = client.server_now()
            for kind, velocity in (("on", 80), ("off", 0)):
                note = {"type": kind, "pitch": pitch, "velocity": velocity, "t": t}
                await client.call("note", {"room_id": room_id, **note})
    if not end:
        return room_id
    return (await host.call("room:end", {"room_id": room_id}))["session_id"]


async def test_guest_merges_into_account(server):
    sessionmaker = make_sessionmaker(make_engine(sqlite_url(server.database)))
    address = "merge@example.com"

    # The account exists already (another device), with preferences and a client.
    account = await log_in(server, address)
    account_id = account["user"]["id"]
    async with sessionmaker.begin() as db:
        db.add(
            UserPreferences(
                user_id=account_id,
                data={"theme": "light"},
                version=await next_version(db, account_id),
            )
        )
        db.add(ClientMutation(user_id=account_id, client_id="phone", last_mutation_id=3))

    # The guest plays alone, then with the account (connected with its access token).
    guest = TuttiClient(server.url)
    await guest.connect("Gina")
    await guest.sync_clock(3)
    guest_id = guest.user["id"]
    alone = await play_free_room(guest)
    laptop = TuttiClient(server.url)
    laptop.token = account["access_token"]
    await laptop.connect(device_name="laptop")
    await laptop.sync_clock(3)
    together_room = await play_free_room(guest, laptop, end=False)

    # A goal, preferences and an applied mutation of the guest's (as a sync push writes them).
    async with sessionmaker.begin() as db:
        goal = Goal(
            title="Scales daily", user_id=guest_id, version=await next_version(db, guest_id)
        )
        db.add(goal)
        prefs = {"theme": "dark", "metronome": True}
        db.add(
            UserPreferences(user_id=guest_id, data=prefs, version=await next_version(db, guest_id))
        )
        db.add(ClientMutation(user_id=guest_id, client_id="phone", last_mutation_id=7))
        db.add(ClientMutation(user_id=guest_id, client_id="tablet", last_mutation_id=2))

    # The guest asks for a link with its token; while its room is still being played the
    # link is refused (and stays usable).
    link = await request_link(server, address, guest_token=guest.token)
    status, body = await call(server.url, "POST", "/api/auth/verify", {"token": link})
    assert error_code(status, body, 409) == "guest_in_room"
    together = (await guest.call("room:end", {"room_id": together_room}))["session_id"]
    with sqlite3.connect(server.database) as db:
        account_log_before = db.execute(
            "SELECT id FROM practice_logs WHERE session_id = ? AND user_id = ?",
            (together, account_id),
        ).fetchone()[0]
        version_before = db.execute(
            "SELECT version FROM user_sync WHERE user_id = ?", (account_id,)
        ).fetchone()[0]

    status, tokens = await call(server.url, "POST", "/api/auth/verify", {"token": link})
    assert status == 200, tokens
    assert tokens["user"]["id"] == account_id
    assert tokens["merged"] == {
        "practice_logs_dropped": 1,
        "practice_logs": 1,
        "goals": 1,
        "repertoire_items": 0,
        "practice_templates": 0,
        "user_preferences": 1,
        "sheet_music": 0,
        "practice_sessions": 2,
        "client_mutations": 2,
    }
    # The guest's connection is closed: its user is gone.
    for _ in range(50):
        if not guest.sio.connected:
            break
        await asyncio.sleep(0.05)
    assert not guest.sio.connected

    with sqlite3.connect(server.database) as db:
        assert db.execute("SELECT count(*) FROM users WHERE id = ?", (guest_id,)).fetchone() == (0,)
        for table in (
            "practice_logs",
            "goals",
            "user_preferences",
            "user_sync",
            "client_mutations",
        ):
            rows = db.execute(f"SELECT count(*) FROM {table} WHERE user_id = ?", (guest_id,))
            assert rows.fetchone() == (0,), table
        # The solo session's log now belongs to the account, with a new version.
        [(log_user, log_version)] = db.execute(
            "SELECT user_id, version FROM practice_logs WHERE session_id = ?", (alone,)
        ).fetchall()
        assert log_user == account_id and log_version > version_before
        # The shared session keeps only the account's own log.
        assert db.execute(
            "SELECT id FROM practice_logs WHERE session_id = ?", (together,)
        ).fetchall() == [(account_log_before,)]
        (goal_user, goal_version) = db.execute(
            "SELECT user_id, version FROM goals WHERE id = ?", (goal.id,)
        ).fetchone()
        assert goal_user == account_id and goal_version > version_before
        versions = [
            v
            for (v,) in db.execute(
                "SELECT version FROM practice_logs WHERE user_id = ?", (account_id,)
            )
        ]
        assert len(versions) == len(set(versions))  # each change its own version
        mutations = dict(
            db.execute(
                "SELECT client_id, last_mutation_id FROM client_mutations WHERE user_id = ?",
                (account_id,),
            ).fetchall()
        )
        assert mutations == {"phone": 7, "tablet": 2}
    async with sessionmaker() as db:
        merged_prefs = await db.get(UserPreferences, account_id)
        assert merged_prefs.data == {"theme": "light", "metronome": True}  # the account's keys win
        assert merged_prefs.version > version_before
    for session_id in (alone, together):
        session = await laptop.fetch_json(f"/api/sessions/{session_id}")  # the account's device
        assert session["host_user_id"] == account_id
        assert {p["user_id"] for p in session["participants"]} == {account_id}
        assert {log["user_id"] for log in session["logs"]} == {account_id}

    # The guest token names nobody now; a second link with it moves nothing twice.
    status, body = await call(server.url, "GET", "/api/auth/me", token=guest.token)
    assert error_code(status, body, 401) == "unknown_user"
    second = await log_in(server, address, guest_token=guest.token)
    assert second["user"]["id"] == account_id and second["merged"] is None
    async with sessionmaker() as db:
        goals = (await db.scalars(select(Goal).where(Goal.user_id == account_id))).all()
        assert [g.id for g in goals] == [goal.id]
    with sqlite3.connect(server.database) as db:
        assert db.execute(
            "SELECT count(*) FROM practice_logs WHERE session_id IN (?, ?)", (alone, together)
        ).fetchone() == (2,)
    await laptop.disconnect()
    await sessionmaker.kw["bind"].dispose()


async def test_guest_push_repeated_after_login_is_applied_once(server):
    """A device pushed as a guest, logs in, and re-pushes the same mutations as the account."""
    guest = TuttiClient(server.url)
    await guest.login_guest("Pushy")
    goal_id = "goal-" + guest.user["id"][:12]
    push = {
        "client_id": "phone-" + guest.user["id"][:8],
        "mutations": [
            {
                "mutation_id": 1,
                "entity": "goal",
                "op": "put",
                "id": goal_id,
                "fields": {"title": "Arpeggios"},
            }
        ],
    }
    status, answer = await call(server.url, "POST", "/api/sync/push", push, token=guest.token)
    if status in (404, 405):
        pytest.skip("the sync protocol has no push yet")
    assert status == 200 and answer["last_mutation_id"] == 1, answer

    tokens = await log_in(server, "pushy@example.com", guest_token=guest.token)
    assert tokens["merged"]["goals"] == 1 and tokens["merged"]["client_mutations"] == 1
    access = tokens["access_token"]
    with sqlite3.connect(server.database) as db:
        (version,) = db.execute(
            "SELECT version FROM user_sync WHERE user_id = ?", (tokens["user"]["id"],)
        ).fetchone()
    for _ in range(2):  # the outbox was not cleared before the login: sent again, twice
        status, answer = await call(server.url, "POST", "/api/sync/push", push, token=access)
        assert status == 200 and "error" not in answer, answer
        # Recognised as applied: nothing written, no version taken.
        assert answer["last_mutation_id"] == 1 and answer["version"] == version, answer
    status, pulled = await call(server.url, "GET", "/api/sync/pull?cursor=0", token=access)
    goals = [c for c in pulled["changes"] if c["entity"] == "goal"]
    assert [(g["id"], g["fields"]["title"]) for g in goals] == [(goal_id, "Arpeggios")]


# --------------------------------------------------------------------------- Socket.IO


async def test_device_reconnects_with_refreshed_token(server):
    tokens = await log_in(server, "device@example.com")
    user = tokens["user"]
    secret = server.secret
    short = issue_token(
        secret, user_id=user["id"], display_name=user["display_name"], guest=False, ttl_s=1
    )
    device = TuttiClient(server.url)
    device.token = short
    await device.connect(device_id="piano")
    ack = await device.call("clock", {"t0": time.time() * 1000})
    assert "t1" in ack
    await device.disconnect()

    await asyncio.sleep(2.1)  # exp is whole seconds: past it for sure
    device = TuttiClient(server.url)
    device.token = short
    with pytest.raises(TuttiError) as refused:
        await device.connect(device_id="piano")
    assert refused.value.code == "token_expired"

    status, fresh = await call(
        server.url, "POST", "/api/auth/refresh", {"refresh_token": tokens["refresh_token"]}
    )
    assert status == 200, fresh
    device = TuttiClient(server.url)
    device.token = fresh["access_token"]
    await device.connect(device_id="piano")
    room = await device.call("room:create", {"mode": "free", "name": "after refresh"})
    assert room["room"]["host"] == user["id"]
    await device.disconnect()
