"""The locust scenario runs headless against a real server without a single failure."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"

# locust runs in its own process: importing it here would monkey-patch this one with gevent.


def run_locust(url: str, csv_prefix: Path, *extra: str, timeout: float = 40) -> None:
    args = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        "8",
        "-r",
        "8",
        "-t",
        "6s",
        "--host",
        url,
        "--only-summary",
        "--exit-code-on-error",
        "1",
        "--csv",
        str(csv_prefix),
        *extra,
    ]
    run = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"locust exited {run.returncode}:\n{run.stderr[-4000:]}"


def stats(csv_prefix: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(f"{csv_prefix}_stats.csv", newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


def test_locust_jam_has_no_failures(fresh_server, tmp_path):
    server = fresh_server()
    prefix = tmp_path / "tutti"
    run_locust(server.url, prefix, "--room-size", "4", "--notes-per-second", "8")
    rows = stats(prefix)
    total = rows[("", "Aggregated")]
    assert int(total["Failure Count"]) == 0, rows
    notes = rows[("sio", "note")]
    assert int(notes["Request Count"]) > 100  # 8 players × 16 events/s for a few seconds
    assert int(notes["Failure Count"]) == 0
    assert int(rows[("relay", "note")]["Request Count"]) > 100  # partners heard them
    assert int(rows[("clock", "rtt")]["Request Count"]) >= 8 * 8  # initial sync of each user
    assert int(rows[("sio", "room:create")]["Request Count"]) == 2  # 8 users / 4 per room
    assert int(rows[("sio", "room:start")]["Request Count"]) == 2
    assert "Traceback" not in server.log.read_text()
