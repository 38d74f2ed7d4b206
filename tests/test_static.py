"""The browser client: served by a real ``tutti serve``, self-consistent, and (where a
JavaScript runtime is installed) its clock sync agrees with :mod:`rooms.clock`."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from rooms.clock import ClockEstimator, ClockSample

STATIC = Path(__file__).resolve().parent.parent / "static"


def fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read()


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


def test_vendored_socketio_is_documented():
    readme = (STATIC / "vendor" / "README.md").read_text()
    bundle = (STATIC / "vendor" / "socket.io.min.js").read_text()
    version = re.search(r"Socket\.IO v(\d+\.\d+\.\d+)", bundle).group(1)
    assert version in readme
    assert "MIT" in readme
    assert (STATIC / "vendor" / "socket.io-client.LICENSE").exists()


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed: the JavaScript checks need it")
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


CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None
)


@pytest.mark.skipif(
    CHROMIUM is None, reason="no /usr/bin/chromium: the headless-browser smoke test needs it"
)
def test_page_runs_in_headless_chromium(server):
    run = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            server.url + "/",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 'data-app="ready"' in run.stdout, run.stderr[-2000:]
