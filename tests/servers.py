"""Real processes for tests: ``tutti serve`` and ``redis-server``, each on its own free port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(check, timeout: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up in {timeout} s:\n{log.read_text()[-3000:]}")


@dataclass
class ServerProcess:
    """A running ``tutti serve`` (``python -m server serve``) with its own data folder."""

    url: str
    port: int
    data_dir: Path
    proc: subprocess.Popen
    log: Path
    secret: str = ""

    @property
    def database(self) -> Path:
        return self.data_dir / "tutti.db"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


TEST_SECRET = "tutti-test-secret-" + "k" * 32
"""The secret key test servers sign tokens with (production refuses to start without one)."""


def start_server(
    data_dir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    starter_library: bool = False,
) -> ServerProcess:
    """Start ``tutti serve`` on a free port and wait until ``/api/health`` answers.

    The server gets :data:`TEST_SECRET` unless ``extra`` has its own ``--secret-key``.
    It starts with an empty library (``--no-starter-library``) unless
    ``starter_library`` is true: most tests count the pieces they add.
    """
    port = free_port()
    secret = TEST_SECRET
    if "--secret-key" in extra:
        secret = extra[extra.index("--secret-key") + 1]
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"server-{port}.log"
    args = [
        sys.executable,
        "-m",
        "server",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--secret-key",
        TEST_SECRET,
        *extra,  # a --secret-key here wins (argparse keeps the last)
    ]
    if "--workers" not in extra:
        args += ["--workers", "1"]  # one process per test server, Redis or not
    if "--reconnect-grace-s" not in extra:
        # A dropped member leaves at once, as most tests expect; the grace period's own
        # tests (tests/e2e/test_reconnect_grace.py) set it.
        args += ["--reconnect-grace-s", "0"]
    if not starter_library:
        args.append("--no-starter-library")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TUTTI_")}
    full_env.update(env or {})
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=Path(__file__).resolve().parent.parent,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with urllib.request.urlopen(url + "/api/health", timeout=1) as resp:
            return resp.status == 200

    _wait_for(healthy, 30, "tutti serve", proc, log)
    return ServerProcess(url, port, data_dir, proc, log, secret)


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


@dataclass
class RedisProcess:
    url: str
    proc: subprocess.Popen
    workdir: Path | None = None
    port: int = 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def restart(self) -> None:
        """Stop and start again on the same port: empty (no persistence)."""
        assert self.workdir is not None
        self.stop()
        self.proc = start_redis(self.workdir, port=self.port).proc


def start_redis(workdir: Path, port: int | None = None) -> RedisProcess:
    """Start a private ``redis-server`` (no persistence) on a free port (or ``port``)."""
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("redis-server is not installed; run tests/install-test-deps.sh")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"redis-{port}.log"
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(log),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    log.touch()

    def pong() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    _wait_for(pong, 15, "redis-server", proc, log)
    return RedisProcess(f"redis://127.0.0.1:{port}/0", proc, workdir, port)


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL server's ``bin`` folder (Debian layout), if any."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresProcess:
    """A private PostgreSQL cluster on a free port; ``url`` is a SQLAlchemy asyncpg URL."""

    url: str
    port: int
    datadir: Path
    bindir: Path
    run_as: list[str]

    def create_database(self, name: str) -> str:
        """Create an empty database; return its SQLAlchemy asyncpg URL."""
        subprocess.run(
            [
                str(self.bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                name,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        subprocess.run(
            [
                *self.run_as,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )


def start_postgres(workdir: Path, database: str = "tutti_test") -> PostgresProcess:
    """initdb + pg_ctl start a throwaway cluster (trust auth, no fsync) on a free port.

    PostgreSQL refuses to run as root, so as root the cluster runs as the
    ``postgres`` system user (created by the distribution's package).
    """
    bindir = postgres_bin_dir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed; run tests/install-test-deps.sh")
    run_as: list[str] = []
    workdir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(workdir, "postgres")
        os.chmod(workdir, 0o700)
        for parent in workdir.parents:  # the postgres user must be able to reach the folder
            if parent == Path("/"):
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o001)
    datadir = workdir / "pgdata"
    subprocess.run(
        [
            *run_as,
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    log = workdir / "postgres.log"
    subprocess.run(
        [
            *run_as,
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-l",
            str(log),
            "-w",
            "-o",
            f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off",
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return PostgresProcess(
        f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{database}", port, datadir, bindir, run_as
    )
