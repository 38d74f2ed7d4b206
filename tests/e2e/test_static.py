"""The browser client: served by a real ``tutti serve``, self-consistent, and (where a
JavaScript runtime is installed) its pure functions agree with the server's: the clock sync
with :mod:`rooms.clock`, presence diffs with :mod:`rooms.presence`, token times with
:mod:`server.services.auth`, the quick-log body with :mod:`server.rest.logbook`, the quick log
as a sync mutation with :mod:`server.services.sync`. The page itself runs in Chromium in
tests/e2e/test_browser*.py."""

from __future__ import annotations

import copy
import json
import random
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rooms.clock import ClockEstimator, ClockSample
from rooms.presence import Tracker, apply_diff, canonical, make_meta, room_topic, user_topic
from server.services.auth import issue_token
from server.services.logbook import ACTIVITY_TYPES

STATIC = Path(__file__).resolve().parents[2] / "static"


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
        ("/", "text/html", b'<script type="module" src="/static/main.js"></script>'),
        ("/static/main.js", "javascript", b"boot()"),
        ("/static/clock.js", "javascript", b"ClockEstimator"),
        ("/sw.js", "javascript", b"caches"),
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


MODULES = sorted(p.name for p in STATIC.glob("*.js") if p.name != "sw.js")


def test_every_element_the_scripts_use_is_in_the_page():
    html = (STATIC / "index.html").read_text()
    script = "\n".join((STATIC / name).read_text() for name in MODULES)
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    used = set(re.findall(r'\$\("([\w-]+)"\)', script))
    assert used, "no $(id) lookups found: have the modules changed their helper?"
    assert used - ids == set()


def test_modules_import_only_modules_that_exist_and_are_cached_offline():
    worker = (STATIC / "sw.js").read_text()
    for name in MODULES:
        for target in re.findall(r'from "\./([\w.]+)"', (STATIC / name).read_text()):
            assert (STATIC / target).is_file(), f"{name} imports {target}"
        assert f'"/static/{name}"' in worker, f"sw.js does not cache {name}"


def test_module_files_are_packaged():
    pyproject = (STATIC.parent / "pyproject.toml").read_text()
    data = pyproject.split("package-data")[1]
    patterns = re.search(r'"server\.static" = \[(.*?)\]', data).group(1)
    suffixes = {p.strip().strip('"').lstrip("*") for p in patterns.split(",")}
    for path in STATIC.iterdir():
        if path.is_file() and path.suffix != ".md":
            assert path.suffix in suffixes, f"{path.name} would be missing from the wheel"


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
@pytest.mark.parametrize("module", [*MODULES, "sw.js"])
def test_js_modules_parse(module):
    run = subprocess.run([NODE, "--check", str(STATIC / module)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


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
const {{ ClockEstimator }} = await import({json.dumps((STATIC / "clock.js").as_uri())});
const {{ keyPitch, pitchName }} = await import({json.dumps((STATIC / "music.js").as_uri())});
const c = new ClockEstimator(9);
const out = [];
for (const s of {json.dumps(samples)}) {{ c.add(...s); out.push([c.offsetMs, c.rttMs]); }}
const keys = ["KeyA", "KeyW", "KeyK", "Quote", "KeyQ"].map((k) => keyPitch(k, 4));
const names = [60, 61, 21].map(pitchName);
console.log(JSON.stringify({{ out, keys, up: keyPitch("KeyA", 5), names }}));
"""
    run = subprocess.run(
        [NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30
    )
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


PURE_MODULES = ("clock.js", "music.js", "presence.js", "session.js", "logbook.js")


def run_js(body: str, data: Any = None) -> Any:
    """Run ``body`` in node with ``T`` = the pure functions of the client's modules (ES modules,
    imported as the page does) and ``data`` (JSON, on stdin); returns what it prints (JSON)."""
    imports = "".join(
        f"Object.assign(T, await import({json.dumps((STATIC / m).as_uri())}));\n"
        for m in PURE_MODULES
    )
    script = (
        "import { readFileSync } from 'node:fs';\nconst T = {};\n"
        + imports
        + "const data = JSON.parse(readFileSync(0, 'utf8'));\n"
        + body
    )
    run = subprocess.run(
        [NODE, "--input-type=module", "-e", script],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        timeout=30,
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


@needs_node
def test_js_playout_delay():
    """The jitter buffer's default: p95 of the partner's transit delays + 5 ms once 8 notes
    came, before that half of each RTT + our RTT jitter + 5 ms; clamped to 0-500 ms."""
    transit = [20.0 + i for i in range(20)]  # 20..39 ms
    rtts = [10.0, 12.0, 11.0, 30.0, 10.0, 11.0, 12.0, 10.0, 11.0, 10.0]
    got = run_js(
        """
console.log(JSON.stringify([
  T.playoutDelayMs({ transitMs: data.transit, partnerRttMs: 40, ownRtts: data.rtts }),
  T.playoutDelayMs({ transitMs: data.transit.slice(0, 3), partnerRttMs: 40, ownRtts: data.rtts }),
  T.playoutDelayMs({ partnerRttMs: null, ownRtts: data.rtts }),
  T.playoutDelayMs({}),
  T.playoutDelayMs({ transitMs: Array(10).fill(2000) }),
  T.quantile([1, 2, 3, 4], 0.5),
]));
""",
        {"transit": transit, "rtts": rtts},
    )
    p95 = float(np.percentile(transit, 95))
    own = float(np.median(rtts))
    jitter = float(np.percentile(rtts, 95)) - own
    assert got[0] == round(p95 + 5)
    assert got[1] == round(40 / 2 + own / 2 + jitter + 5)
    assert got[2] == round(own + jitter + 5)
    assert got[3:] == [5, 500, 2.5]


@needs_node
def test_js_practice_chart_and_streak():
    entries = [
        {"start_time": "2026-03-10T09:00:00Z", "duration_seconds": 600},
        {"start_time": "2026-03-10T20:00:00Z", "duration_seconds": 300},
        {"start_time": "2026-03-09T23:30:00Z", "duration_seconds": 1200},  # 10th in UTC+1
        {"start_time": "2026-03-08T12:00:00Z", "duration_seconds": 60},
        {"start_time": "2026-03-05T12:00:00Z", "duration_seconds": 60},
        {"start_time": None, "duration_seconds": 60},
    ]
    got = run_js(
        """
console.log(JSON.stringify({
  utc: T.practiceByDay(data, "2026-03-10", 3, 0),
  plus1: T.practiceByDay(data, "2026-03-10", 3, -60),
  streak: [T.practiceStreak(data, "2026-03-10", 0), T.practiceStreak(data, "2026-03-11", 0),
           T.practiceStreak(data, "2026-03-12", 0), T.practiceStreak(data, "2026-03-10", -60)],
}));
""",
        entries,
    )
    assert got["utc"] == [
        {"day": "2026-03-08", "seconds": 60},
        {"day": "2026-03-09", "seconds": 1200},
        {"day": "2026-03-10", "seconds": 900},
    ]
    assert got["plus1"][1:] == [
        {"day": "2026-03-09", "seconds": 0},
        {"day": "2026-03-10", "seconds": 2100},
    ]
    # Today not yet practised does not break the streak; a day without practice does.
    assert got["streak"] == [3, 3, 0, 1]


@needs_node
def test_js_quick_log_mutation_is_what_sync_takes(server):
    form = {
        "minutes": "12",
        "activity": "scales",
        "instrument": "",
        "work": "",
        "notes": "arpeggios",
    }
    end_ms = 1_760_000_000_000
    fields = run_js(f"console.log(JSON.stringify(T.quickLogFields(data, {end_ms})))", form)
    assert fields == {
        "activity_type": "scales",
        "duration_seconds": 720,
        "notes": "arpeggios",
        "source": "quick_log",
        "start_time": "2025-10-09T08:41:20.000Z",
    }
    _, guest = rest(server, "POST", "/api/auth/guest", {"display_name": "Syncer"})
    token = guest["access_token"]
    push = {
        "client_id": "c1",
        "mutations": [
            {"mutation_id": 1, "entity": "logbook_entry", "op": "put", "id": "e1", "fields": fields}
        ],
    }
    status, answer = rest(server, "POST", "/api/sync/push", push, token)
    assert status == 200 and "error" not in answer, answer
    _, row = rest(server, "GET", "/api/practice/logs/e1", token=token)
    assert row["source"] == "quick_log" and row["duration_seconds"] == 720
