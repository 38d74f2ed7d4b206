"""Settings: command-line flags and ``TUTTI_``-prefixed environment variables alike.

Every setting has a flag (``--data-dir``) and an environment variable
(``TUTTI_DATA_DIR``); a flag wins over the variable, the variable over the
default.
"""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path

ENV_PREFIX = "TUTTI_"


@dataclass(frozen=True)
class Settings:
    """Server settings. Times in ms unless named otherwise.

    ``database_url`` defaults to a SQLite file ``tutti.db`` in ``data_dir``;
    ``redis_url`` empty means in-process pub/sub (one process). ``fanout``
    picks the cross-process manager with Redis: ``rooms`` (ours, a channel per
    room, :mod:`server.fanout`) or ``stock`` (python-socketio's
    ``AsyncRedisManager``, one channel for everything; kept for comparison).
    ``secret_key`` signs access tokens; when empty, a random key is created
    once and kept in ``data_dir/secret.key`` so tokens survive restarts.
    ``token_ttl_s`` is the lifetime of guest access tokens,
    ``access_token_ttl_s`` that of account access tokens (refreshable).
    Login mail goes through ``smtp_host`` when set, else into
    ``data_dir/outbox`` (see :mod:`server.mailer`); login links point at
    ``public_url`` (see :meth:`resolved_public_url`).
    """

    host: str = field(default="127.0.0.1", metadata={"help": "address to listen on"})
    port: int = field(default=8080, metadata={"help": "TCP port to listen on"})
    data_dir: str = field(default="tutti-data", metadata={"help": "folder for the SQLite file"})
    database_url: str = field(default="", metadata={"help": "SQLAlchemy async URL"})
    redis_url: str = field(default="", metadata={"help": "redis://… to share rooms"})
    fanout: str = field(
        default="rooms", metadata={"help": "with Redis: 'rooms' (a channel per room) or 'stock'"}
    )
    secret_key: str = field(default="", metadata={"help": "key that signs access tokens"})
    token_ttl_s: int = field(default=7 * 24 * 3600, metadata={"help": "guest token lifetime, s"})
    start_delay_ms: float = field(default=1000.0, metadata={"help": "room:start to count-in, ms"})
    grace_ms: float = field(default=3000.0, metadata={"help": "wait after the piece's end, ms"})
    max_note_skew_ms: float = field(default=5000.0, metadata={"help": "note time vs now, ms"})
    score_interval_ms: float = field(default=250.0, metadata={"help": "min gap of score:update"})
    max_upload_bytes: int = field(default=5_000_000, metadata={"help": "largest MIDI upload"})
    log_level: str = field(default="INFO", metadata={"help": "DEBUG, INFO, WARNING, ERROR"})
    log_format: str = field(
        default="json", metadata={"help": "serve's log lines: 'json' (one object a line) or 'text'"}
    )
    public_url: str = field(
        default="", metadata={"help": "base URL of login links (default http://HOST:PORT)"}
    )
    access_token_ttl_s: int = field(default=900, metadata={"help": "account access token, s"})
    refresh_token_ttl_s: int = field(
        default=30 * 24 * 3600, metadata={"help": "refresh token lifetime, s"}
    )
    login_link_ttl_s: int = field(default=600, metadata={"help": "login link lifetime, s"})
    smtp_host: str = field(default="", metadata={"help": "SMTP server (empty: DATA_DIR/outbox)"})
    smtp_port: int = field(default=587, metadata={"help": "SMTP port (465: implicit TLS)"})
    smtp_username: str = field(default="", metadata={"help": "SMTP login (empty: none)"})
    smtp_password: str = field(default="", repr=False, metadata={"help": "SMTP password"})
    smtp_from: str = field(default="tutti@localhost", metadata={"help": "sender of login mail"})
    smtp_starttls: bool = field(
        default=True, metadata={"help": "require STARTTLS (false: plain SMTP)"}
    )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{Path(self.data_dir).resolve() / 'tutti.db'}"

    def resolved_public_url(self) -> str:
        """``public_url`` without a trailing slash, or ``http://HOST:PORT``.

        A wildcard listen address (``0.0.0.0``, ``::``) becomes ``localhost``.
        """
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("", "0.0.0.0", "::") else self.host
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = Path(self.data_dir) / "secret.key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_bool(raw: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``), any case.

    Raises ``ValueError`` for anything else (``bool("false")`` would be ``True``).
    """
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{raw!r} is not a boolean (true or false)")


def _converter(default: object):
    return parse_bool if isinstance(default, bool) else type(default)


def add_arguments(parser: argparse.ArgumentParser, names: list[str] | None = None) -> None:
    """Add ``--flag`` options for the named settings (all when ``names`` is None)."""
    for f in fields(Settings):
        if names is not None and f.name not in names:
            continue
        flag = "--" + f.name.replace("_", "-")
        env = ENV_PREFIX + f.name.upper()
        parser.add_argument(
            flag,
            dest=f.name,
            type=_converter(f.default),
            default=None,
            help=f"{f.metadata.get('help', '')} (env {env}, default {f.default!r})",
        )


def settings_from(args: argparse.Namespace | None = None, **overrides) -> Settings:
    """Build :class:`Settings` from defaults, then the environment, then flags, then overrides.

    Raises ``ValueError`` naming the variable when an environment value has the wrong type.
    """
    values = {}
    for f in fields(Settings):
        env = ENV_PREFIX + f.name.upper()
        if env in os.environ:
            raw = os.environ[env]
            try:
                values[f.name] = _converter(f.default)(raw)
            except ValueError as exc:
                raise ValueError(
                    f"{env}={raw!r} is not a valid {type(f.default).__name__}"
                ) from exc
        flag_value = getattr(args, f.name, None) if args is not None else None
        if flag_value is not None:
            values[f.name] = flag_value
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
