"""The browser client: served by a real ``tutti serve``, self-consistent, and (where a
JavaScript runtime is installed) its pure functions agree with the server's: the clock sync
with :mod:`rooms.clock`, presence diffs with :mod:`rooms.presence`, token times with
:mod:`server.auth`, the quick-log body with :mod:`server.logbook_api`. Where Chromium is
installed, the page runs in it: a login link, the practice log, presence and ``sync:poke``."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import random
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rooms.clock import ClockEstimator, ClockSample
from rooms.presence import Tracker, apply_diff, canonical, make_meta, room_topic, user_topic
from server.auth import issue_token
from server.client import TuttiClient
from server.logbook import ACTIVITY_TYPES

STATIC = Path(__file__).resolve().parent.parent / "static"


def fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read()


def rest(
    server, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    """A JSON request to ``server``: ``(status, body)``, for errors too."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def login_link(server, email: str, guest_token: str | None = None) -> str:
    """Ask for a login link and take its token from the server's outbox (no SMTP in tests)."""
    outbox = server.data_dir / "outbox"
    before = set(outbox.glob("*.eml")) if outbox.exists() else set()
    status, body = rest(server, "POST", "/api/auth/login", {"email": email}, guest_token)
    assert status == 202, body
    [new] = set(outbox.glob("*.eml")) - before
    return re.search(r"#login=([A-Za-z0-9_-]+)", new.read_text()).group(1)


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/", "text/html", b'<script src="/static/app.js"></script>'),
        ("/static/app.js", "javascript", b"ClockEstimator"),
        ("/static/style.css", "text/css", b".piano"),
        ("/static/vendor/socket.io.min.js", "javascript", b"Socket.IO v4."),
    ],
)
def test_page_and_assets_are_served(server, path, content_type, marker):
    status, ctype, body = fetch(server.url + path)
    assert status == 200
    assert content_type in ctype
    assert marker in body


def test_index_references_only_assets_that_exist(server):
    _, _, body = fetch(server.url + "/")
    refs = re.findall(r'(?:src|href)="(/static/[^"]+)"', body.decode())
    assert "/static/vendor/socket.io.min.js" in refs
    for ref in refs:
        status, _, _ = fetch(server.url + ref)
        assert status == 200, ref


def test_every_element_the_script_uses_is_in_the_page():
    html = (STATIC / "index.html").read_text()
    script = (STATIC / "app.js").read_text()
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    used = set(re.findall(r'\$\("([\w-]+)"\)', script))
    created = set(re.findall(r'id: "([\w-]+)"', script))  # made by the script itself
    assert used, "no $(id) lookups found: has app.js changed its helper?"
    assert used - ids - created == set()


def test_activity_choices_are_the_servers():
    html = (STATIC / "index.html").read_text()
    select = re.search(r'<select id="log-activity">(.*?)</select>', html, re.S).group(1)
    assert tuple(re.findall(r'<option value="([^"]+)"', select)) == ACTIVITY_TYPES


def test_vendored_socketio_is_documented():
    readme = (STATIC / "vendor" / "README.md").read_text()
    bundle = (STATIC / "vendor" / "socket.io.min.js").read_text()
    version = re.search(r"Socket\.IO v(\d+\.\d+\.\d+)", bundle).group(1)
    assert version in readme
    assert "MIT" in readme
    assert (STATIC / "vendor" / "socket.io-client.LICENSE").exists()


NODE = shutil.which("node")
needs_node = pytest.mark.skipif(
    NODE is None, reason="node is not installed: the JavaScript checks need it"
)


@needs_node
def test_js_clock_matches_rooms_clock():
    rng = random.Random(7)
    samples = []
    t = 1_700_000_000_000.0
    for _ in range(15):
        offset, up, down, work = rng.uniform(-500, 500), rng.uniform(1, 80), rng.uniform(1, 80), 0.3
        t0 = t
        t1 = t0 + up + offset
        t2 = t1 + work
        t3 = t2 - offset + down
        samples.append((t0, t1, t2, t3))
        t += 2000
    script = f"""
const {{ ClockEstimator, keyPitch, pitchName }} = require({json.dumps(str(STATIC / "app.js"))});
const c = new ClockEstimator(9);
const out = [];
for (const s of {json.dumps(samples)}) {{ c.add(...s); out.push([c.offsetMs, c.rttMs]); }}
const keys = ["KeyA", "KeyW", "KeyK", "Quote", "KeyQ"].map((k) => keyPitch(k, 4));
const names = [60, 61, 21].map(pitchName);
console.log(JSON.stringify({{ out, keys, up: keyPitch("KeyA", 5), names }}));
"""
    run = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    estimator = ClockEstimator()
    for (t0, t1, t2, t3), (offset, rtt) in zip(samples, got["out"], strict=True):
        estimator.add(ClockSample(t0, t1, t2, t3))
        assert offset == pytest.approx(estimator.offset_ms, abs=1e-6)
        assert rtt == pytest.approx(estimator.rtt_ms, abs=1e-6)
    assert got["keys"] == [60, 61, 72, 77, None]
    assert got["up"] == 72
    assert got["names"] == ["C4", "C♯4", "A0"]


def run_js(body: str, data: Any = None) -> Any:
    """Run ``body`` in node with ``T`` = app.js's pure functions and ``data`` (JSON, on stdin);
    returns what the script prints (JSON)."""
    script = (
        f"const T = require({json.dumps(str(STATIC / 'app.js'))});\n"
        "const data = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n" + body
    )
    run = subprocess.run(
        [NODE, "-e", script], input=json.dumps(data), capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def presence_history(seed: int) -> list[dict]:
    """Random device changes through :class:`rooms.presence.Tracker`, as a client sees them:
    per topic, the ``presence:state`` it gets at some point and every ``presence:diff`` after,
    plus two a client must shrug off (a join it already has, a leave of an unknown ref)."""
    rng = random.Random(seed)
    tracker = Tracker()
    topics = [user_topic("u1"), room_topic("r1")]
    seen: dict[str, dict] = {}
    refs = iter(range(1, 10_000))
    for step in range(80):
        user, device = rng.choice(["u1", "u2", "u3"]), rng.choice(["phone", "laptop", "tablet"])
        if rng.random() < 0.25:
            _, diffs = tracker.remove(user, device)
        else:
            meta = make_meta(
                device_id=device,
                device_name=f"{user}'s {device}",
                online_at=1_700_000_000_000 + step,
                room_id=rng.choice([None, "r1", "r1", "r2"]),
                status=rng.choice(["idle", "practicing", "listening"]),
                ref=f"n.{next(refs)}",  # "n.10" sorts before "n.9": both sides must agree
            )
            _, diffs = tracker.put(user, meta)
        if step == 15:  # the client connects / joins here
            seen = {t: {"state": tracker.state(t), "diffs": []} for t in topics}
        for topic, change in diffs.items():
            if topic in seen:
                seen[topic]["diffs"].append(change)
                if rng.random() < 0.1:
                    seen[topic]["diffs"].append(copy.deepcopy(change))  # delivered twice
    for topic in topics:
        seen[topic]["diffs"].append(
            {"joins": {}, "leaves": {"u9": {"metas": [{"ref": "gone", "device_id": "x"}]}}}
        )
        seen[topic]["final"] = tracker.state(topic)
    return list(seen.values())


@needs_node
def test_js_presence_matches_rooms_presence():
    histories = [h for seed in range(6) for h in presence_history(seed)]
    got = run_js(
        """
const out = data.map(({ state, diffs }) => {
  const frozen = JSON.stringify(state);
  const steps = [];
  let s = T.canonicalPresence(state);
  for (const d of diffs) steps.push((s = T.applyPresenceDiff(s, d)));
  if (JSON.stringify(state) !== frozen) throw new Error("the state given was changed");
  return steps;
});
console.log(JSON.stringify(out));
""",
        histories,
    )
    for history, steps in zip(histories, got, strict=True):
        expected = canonical(history["state"])
        for change, step in zip(history["diffs"], steps, strict=True):
            expected = apply_diff(expected, change)
            assert step == expected
        assert steps[-1] == history["final"]
    assert any(len(h["final"]) > 1 for h in histories), "no topic with several users: a weak test"


@needs_node
def test_js_presence_lists_a_users_devices_newest_first():
    state = {"u": {"metas": [{"ref": "1", "online_at": 5}, {"ref": "2", "online_at": 9}]}}
    got = run_js(
        "console.log(JSON.stringify([T.presenceMetas(data, 'u'), T.presenceMetas(data, 'v'),"
        " T.presenceMetas(null, 'u')]));",
        state,
    )
    assert got == [[{"ref": "2", "online_at": 9}, {"ref": "1", "online_at": 5}], [], []]


@needs_node
def test_js_reads_server_tokens_and_login_links():
    now = 1_700_000_000
    tokens = {
        ttl: issue_token("k" * 32, user_id="u", display_name="A", guest=False, ttl_s=ttl, now=now)
        for ttl in (900, 10)
    }
    got = run_js(
        """
const out = {};
for (const [ttl, t] of Object.entries(data)) out[ttl] = [T.tokenTimes(t), T.refreshDueMs(t)];
out.bad = [T.tokenTimes("not.a-token.!"), T.refreshDueMs("")];
out.links = ["#login=abc_-9", "login=x&room=r", "#room=r", "", "#login="].map(T.loginTokenFromHash);
console.log(JSON.stringify(out));
""",
        tokens,
    )
    start, ms = now * 1000, 1000
    assert got["900"] == [{"issuedAt": start, "expiresAt": start + 900 * ms}, start + 840 * ms]
    # A short-lived token is renewed a fifth of its life early, not 60 s (before it exists).
    assert got["10"] == [{"issuedAt": start, "expiresAt": start + 10 * ms}, start + 8 * ms]
    assert got["bad"] == [None, None]
    assert got["links"] == ["abc_-9", "x", None, None, None]


@needs_node
def test_js_device_names_and_durations():
    agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.1 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) CriOS/120.0 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
        "Mobile Safari/537.36 EdgA/120.0 Edg/120.0",
        "",
    ]
    got = run_js(
        "console.log(JSON.stringify([data.map((ua) => T.describeDevice(ua, 'Plan9')),"
        " [null, 12.4, 59.6, 60, 1500, 3600, 3930].map(T.formatPracticeTime)]));",
        agents,
    )
    assert got[0] == [
        "Chrome on Linux",
        "Safari on macOS",
        "Firefox on Windows",
        "Chrome on iOS",
        "Edge on Android",
        "Browser on Plan9",
    ]
    assert got[1] == ["—", "12 s", "60 s", "1 min", "25 min", "1 h 00 min", "1 h 06 min"]


@needs_node
def test_js_quick_log_body_is_what_the_server_takes(server):
    forms = [
        {"minutes": "25", "activity": "scales", "instrument": " cello ", "work": "", "notes": "x"},
        {"minutes": 0.5, "activity": "", "instrument": "", "work": "Suite 1", "notes": "  "},
    ]
    got = run_js(
        """
const bodies = data.map((f, i) => T.quickLogBody(f, "log-" + i));
const refused = ["0", "-5", "abc", String(7 * 24 * 60 + 1)].map((minutes) => {
  try { T.quickLogBody({ minutes, activity: "other" }); return null; } catch (e) { return e.name; }
});
console.log(JSON.stringify({ bodies, refused }));
""",
        forms,
    )
    assert got["refused"] == ["RangeError"] * 4
    assert got["bodies"] == [
        {
            "id": "log-0",
            "activity_type": "scales",
            "duration_seconds": 1500,
            "instrument": "cello",
            "notes": "x",
        },
        {"id": "log-1", "activity_type": "other", "duration_seconds": 30, "work_title": "Suite 1"},
    ]
    _, guest = rest(server, "POST", "/api/auth/guest", {"display_name": "Logger"})
    token = guest["access_token"]
    for body in got["bodies"]:
        status, row = rest(server, "POST", "/api/practice/quick-log", body, token)
        assert status == 201, row
        assert row["source"] == "quick_log"
        assert {k: row[k] for k in body} == body
    # Sent again (a retry after a lost answer): the same id is not a second entry.
    status, again = rest(server, "POST", "/api/practice/quick-log", got["bodies"][0], token)
    assert (status, again["error"]["code"]) == (409, "already_exists")
    _, listed = rest(server, "GET", "/api/practice/logs?limit=20", token=token)
    assert [row["id"] for row in listed["logs"]] == ["log-1", "log-0"]  # newest first


CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no /usr/bin/chromium: the headless-browser tests need it"
)


def dump_dom(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran (a fresh browser profile: no stored tokens)."""
    run = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 'data-app="ready"' in run.stdout, run.stderr[-2000:]
    return run.stdout


@needs_chromium
def test_page_runs_in_headless_chromium(server, tmp_path):
    assert 'data-view="login"' in dump_dom(server.url + "/", tmp_path)


@needs_chromium
def test_login_link_moves_a_guests_practice_in_headless_chromium(server, tmp_path):
    _, guest = rest(server, "POST", "/api/auth/guest", {"display_name": "Dora"})
    log = {"activity_type": "scales", "duration_seconds": 600, "notes": "thirds, slowly"}
    status, _ = rest(server, "POST", "/api/practice/quick-log", log, guest["access_token"])
    assert status == 201
    email = f"dora-{time.time_ns()}@example.com"
    token = login_link(server, email, guest_token=guest["access_token"])

    page = dump_dom(f"{server.url}/#login={token}", tmp_path / "first")
    assert 'data-view="lobby"' in page  # verified, tokens kept, in the lobby
    assert f'<b id="account-email">{email}</b>' in page
    assert "thirds, slowly" in page  # the guest's log, now the account's, in the practice log

    # The link works once: a second browser is told so, on the login screen.
    page = dump_dom(f"{server.url}/#login={token}", tmp_path / "second")
    assert 'data-view="login"' in page
    assert "This login link has already been used" in page


class DevTools:
    """Just enough of the Chrome DevTools Protocol to run JavaScript in a page."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def eval(self, expression: str) -> Any:
        self.next_id += 1
        params = {"expression": expression, "awaitPromise": True, "returnByValue": True}
        await self.ws.send_json(
            {"id": self.next_id, "method": "Runtime.evaluate", "params": params}
        )
        async for msg in self.ws:
            answer = json.loads(msg.data)
            if answer.get("id") == self.next_id:
                break
        else:
            raise AssertionError("the DevTools connection closed")
        assert "error" not in answer, answer["error"]  # e.g. the page navigated meanwhile
        result = answer["result"]
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    async def until(self, expression: str, timeout: float = 15.0) -> Any:
        """Poll ``expression`` until it is truthy."""
        deadline = time.monotonic() + timeout
        while not (value := await self.eval(expression)):
            assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
            await asyncio.sleep(0.1)
        return value

    async def loaded(self, timeout: float = 15.0) -> None:
        """Wait for app.js to have run; until the page has loaded, evaluating may fail (the
        first, blank page has no documentElement; a navigation destroys the context)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(AssertionError):
                if await self.eval("document.documentElement.dataset.app === 'ready'"):
                    return
            assert time.monotonic() < deadline, "app.js did not run"
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def chromium_page(url: str, profile: Path):
    """Headless Chromium showing ``url``, driven over DevTools (port chosen by Chromium)."""
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            [target] = [t for t in targets if t["type"] == "page"]
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield DevTools(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def text_of(element_id: str) -> str:
    return f"document.getElementById({json.dumps(element_id)}).innerText"


@needs_chromium
async def test_presence_and_sync_poke_in_headless_chromium(server, tmp_path):
    async with chromium_page(server.url + "/", tmp_path / "profile") as page:
        await page.loaded()
        await page.eval(
            "document.getElementById('display-name').value = 'Ada';"
            "document.getElementById('login-form').requestSubmit()"
        )
        await page.until("document.getElementById('conn-status').dataset.state === 'online'")
        await page.until(f"{text_of('devices-list')}.includes('(this device)')")

        # Another device of Ada's comes and goes: presence:diff joins, then leaves.
        phone = TuttiClient(server.url)
        phone.token = await page.eval("sessionStorage.getItem('tutti.token')")
        await phone.connect(device_id="phone", device_name="Ada's phone")
        try:
            await page.until(f'{text_of("devices-list")}.includes("Ada\'s phone")')
            # A change made elsewhere (REST, as the phone would) pokes the page, which pulls.
            log = {"activity_type": "etudes", "duration_seconds": 900, "notes": "Popper no. 1"}
            status, _ = await asyncio.to_thread(
                rest, server, "POST", "/api/practice/quick-log", log, phone.token
            )
            assert status == 201
            await page.until(f"{text_of('log-list')}.includes('Popper no. 1')")
        finally:
            await phone.sio.disconnect()
        await page.until(f'!{text_of("devices-list")}.includes("Ada\'s phone")')

        # In a room: each member's presence (idle, then practicing once the host starts).
        await page.eval("document.getElementById('create-form').requestSubmit()")
        await page.until("document.documentElement.dataset.view === 'room'")
        room_id = await page.eval("window.Tutti.state.roomId")
        room_presence = f"window.Tutti.state.presence.get('room:{room_id}')"
        bob_row = (
            "([...document.querySelectorAll('#members-table tbody tr')]"
            ".map((tr) => tr.innerText).find((t) => t.includes('Bob')) || '')"
        )
        bob = TuttiClient(server.url)
        await bob.connect("Bob", device_id="laptop", device_name="Bob's laptop")
        try:
            await bob.call("room:join", {"room_id": room_id, "role": "player"})
            await page.until(f"{bob_row}.includes('idle')")
            await page.eval("document.getElementById('start-btn').click()")
            await page.until(f"{bob_row}.includes('practicing')")
            assert bob.user["id"] in await page.eval(f"Object.keys({room_presence})")
        finally:
            await bob.sio.disconnect()
        # Bob's last device is gone: so is Bob from the room's presence.
        ada = await page.eval("window.Tutti.state.user.id")
        await page.until(f"JSON.stringify(Object.keys({room_presence})) === '[\"{ada}\"]'")
