"""The locust scenario runs headless against a real server: every user class, no failure,
no lost note, no lost sync change."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"

# locust runs in its own process: importing it here would monkey-patch this one with gevent.

EXPECTED = [
    ("POST", "/api/auth/guest"),
    ("POST", "/api/practice/quick-log"),
    ("sio", "connect"),
    ("clock", "rtt"),
    ("sio", "room:create"),
    ("sio", "room:join"),
    ("sio", "room:start"),
    ("sio", "note"),
    ("relay", "note"),  # partner → partner, DuetPlayer
    ("score", "score:update"),  # note-on → the score:update counting it
    ("score", "room:finished"),  # room:end → final results
    ("check", "notes delivered"),
    ("spectator", "note"),
    ("check", "spectator notes delivered"),
    ("sync", "sync:push"),
    ("sync", "sync:pull"),
    ("sync", "propagation"),
    ("check", "sync changes delivered"),
]


def run_locust(
    url: str, csv_prefix: Path, *extra: str, users: int = 10, seconds: int = 20
) -> subprocess.CompletedProcess:
    args = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "-u", str(users),
        "-r", str(users),
        "-t", f"{seconds}s",
        "--host", url,
        "--only-summary",
        "--exit-code-on-error", "1",
        "--csv", str(csv_prefix),
        *extra,
    ]  # fmt: skip
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60)


def stats(csv_prefix: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(f"{csv_prefix}_stats.csv", newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


def test_locust_all_user_classes_without_failures_or_losses(fresh_server, tmp_path):
    server = fresh_server()
    prefix = tmp_path / "tutti"
    # 10 users by weight: 6 DuetPlayers (3 duets on the bundled chorale, imported by the
    # first), 2 Spectators, 1 DevicePracticer (3 devices), 1 ApiUser. Rooms end after 5 s
    # of playing so several finish (and are checked) within the 20 s.
    run = run_locust(server.url, prefix, "--play-seconds", "5", "--think-seconds", "0.5")
    assert run.returncode == 0, f"locust exited {run.returncode}:\n{run.stderr[-4000:]}"
    rows = stats(prefix)
    failures = {k: r["Failure Count"] for k, r in rows.items() if int(r["Failure Count"])}
    assert not failures, f"{failures}\n{run.stderr[-4000:]}"
    for key in EXPECTED:
        assert key in rows and int(rows[key]["Request Count"]) > 0, (key, sorted(rows))
    # Loss would show as failures of these; they must not even appear.
    for lost in ("notes lost", "spectator notes lost", "sync changes lost"):
        assert ("check", lost) not in rows
    assert int(rows[("relay", "note")]["Request Count"]) > 100  # 6 players, ~2 notes/s each
    assert "Traceback" not in server.log.read_text()
