"""Secrets and files: the data folder, the database and the outbox of login links are the
server's own (0700/0600); a login link never reaches the log; a secret key on the command
line is warned about; an unusable data folder is a clear message and exit status 2."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_accounts import call, link_token, outbox_messages
from tests.servers import TEST_SECRET, free_port, start_server

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_data_folder_database_and_outbox_are_private(tmp_path):
    data = tmp_path / "data"
    proc = start_server(data)
    try:
        status, _ = await call(proc.url, "POST", "/api/auth/login", {"email": "ada@example.com"})
        assert status == 202
        (message,) = outbox_messages(data, "ada@example.com")
        token = link_token(message)
        assert mode(data) == 0o700
        for db_file in data.glob("tutti.db*"):
            assert mode(db_file) == 0o600, db_file
        assert mode(data / "outbox") == 0o700
        for eml in (data / "outbox").iterdir():
            assert mode(eml) == 0o600, eml
    finally:
        proc.stop()
    log = proc.log.read_text()
    assert "ada@example.com" in log and "outbox" in log
    assert token not in log  # the link logs its reader in
    assert "--secret-key on the command line" in log


def test_existing_world_readable_files_are_made_private(tmp_path):
    data = tmp_path / "old"
    proc = start_server(data)
    proc.stop()
    data.chmod(0o755)
    (data / "tutti.db").chmod(0o644)
    proc = start_server(data)
    try:
        assert mode(data) == 0o700 and mode(data / "tutti.db") == 0o600
    finally:
        proc.stop()


def test_an_unusable_data_folder_is_a_clear_message(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", str(free_port())]
        + ["--data-dir", str(blocker / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"TUTTI_SECRET_KEY": TEST_SECRET, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2, result.stderr
    assert "cannot use the data folder" in result.stderr and str(blocker) in result.stderr
    assert "Traceback" not in result.stderr
