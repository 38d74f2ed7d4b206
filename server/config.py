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
    room, :mod:`server.realtime.fanout`) or ``stock`` (python-socketio's
    ``AsyncRedisManager``, one channel for everything; kept for comparison).
    ``secret_key`` signs access tokens and must be set unless ``dev`` (then
    an ephemeral key is made; see :meth:`resolved_secret_key`). Security
    headers and CORS: :mod:`server.rest.security`; rate limits and caps:
    :mod:`server.services.limits`, :mod:`server.realtime.guard`; the purge:
    :mod:`server.services.privacy`.
    ``token_ttl_s`` is the lifetime of guest access tokens,
    ``access_token_ttl_s`` that of account access tokens (refreshable).
    Login mail goes through ``smtp_host`` when set, else into
    ``data_dir/outbox`` (see :mod:`server.services.mailer`); login links point at
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
    reconnect_grace_s: float = field(
        default=15.0,
        metadata={"help": "a dropped member keeps part, role and room this long, s (0: off)"},
    )
    max_upload_bytes: int = field(default=5_000_000, metadata={"help": "largest MIDI upload"})
    # -- audio (server/rest/audio.py, server/services/audio_jobs.py) -----------------------
    max_audio_seconds: float = field(
        default=600.0, metadata={"help": "longest recording an audio upload may hold, s"}
    )
    max_audio_bytes: int = field(
        default=200_000_000, metadata={"help": "largest audio upload, bytes"}
    )
    max_audio_jobs: int = field(
        default=0, metadata={"help": "audio jobs running at once (0: CPUs - 1, at least 1)"}
    )
    max_audio_jobs_per_user: int = field(
        default=3, metadata={"help": "audio jobs one user may have queued or running"}
    )
    workers: int = field(
        default=0,
        metadata={
            "help": "processes sharing the port (SO_REUSEPORT) and rooms (Redis); "
            "0: one per CPU with --redis-url, else 1"
        },
    )
    websocket_only: bool = field(
        default=False,
        metadata={"help": "Socket.IO over websockets only (set for each of several workers)"},
    )
    shutdown_timeout_s: float = field(
        default=20.0,
        metadata={"help": "SIGTERM: drain and save, then exit at the latest after this, s"},
    )
    # -- what a piece may hold (server/services/pieces.py PieceLimits); over: 413 piece_too_large
    max_piece_notes: int = field(default=20_000, metadata={"help": "notes in one piece"})
    max_part_notes: int = field(default=20_000, metadata={"help": "notes in one part of a piece"})
    max_midi_events: int = field(
        default=200_000, metadata={"help": "MIDI events (of every kind) in one piece's file"}
    )
    max_musicxml_bytes: int = field(
        default=20_000_000, metadata={"help": "XML of a MusicXML file, unpacked (.mxl), bytes"}
    )
    max_musicxml_entries: int = field(
        default=64, metadata={"help": "entries in a compressed MusicXML (.mxl) zip"}
    )
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
    # -- security (server/rest/security.py) ---------------------------------------------------
    dev: bool = field(
        default=False, metadata={"help": "dev mode: an ephemeral secret key when none is set"}
    )
    cors_origins: str = field(
        default="", metadata={"help": "allowed cross origins, comma-separated ('*': any; '': none)"}
    )
    content_security_policy: str = field(
        default=(
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
            "img-src 'self' data:; "
            "connect-src 'self'; media-src 'self' blob:; worker-src 'self'; "
            "manifest-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'none'"
        ),
        metadata={"help": "Content-Security-Policy header ('' leaves it out)"},
    )
    referrer_policy: str = field(default="no-referrer", metadata={"help": "Referrer-Policy header"})
    permissions_policy: str = field(
        default="midi=(self), camera=(), microphone=(self), geolocation=()",
        metadata={"help": "Permissions-Policy header ('' leaves it out)"},
    )
    hsts_max_age_s: int = field(
        default=0, metadata={"help": "Strict-Transport-Security max-age, s (0: no header)"}
    )
    # -- limits (server/services/limits.py, server/realtime/guard.py) -------------------------
    rate_limit_rest_user: str = field(
        default="300/second;6000/minute", metadata={"help": "REST requests per user ('' off)"}
    )
    rate_limit_rest_ip: str = field(
        default="600/second;20000/minute", metadata={"help": "REST requests per client IP"}
    )
    rate_limit_events: str = field(
        default="200/second;6000/minute",
        metadata={"help": "Socket.IO events other than notes, per connection"},
    )
    note_quota: str = field(
        default="400/2seconds;3000/20seconds",
        metadata={"help": "note events (on and off) per connection: burst;steady"},
    )
    rate_limit_clock: str = field(
        default="30/second;600/minute",
        metadata={"help": "clock exchanges per connection (a burst at connect, then a few a s)"},
    )
    max_refusals: str = field(
        default="50/10seconds",
        metadata={"help": "refusals per connection past which it is closed ('' never)"},
    )
    handshake_timeout_s: float = field(
        default=10.0,
        metadata={"help": "close a connection not authenticated (Socket.IO connect) by then, s"},
    )
    # Tests and one household or classroom behind one NAT stay far below; a relay benchmark
    # from one machine raises it (0: no cap).
    max_connections_per_ip: int = field(
        default=100, metadata={"help": "Socket.IO connections from one client address (0: any)"}
    )
    max_connections_per_user: int = field(
        default=10, metadata={"help": "Socket.IO connections of one user (per process)"}
    )
    # A live session is one performer and an audience: hundreds of listeners, not thousands.
    max_spectators: int = field(default=1000, metadata={"help": "spectators in one room"})
    max_socket_payload_bytes: int = field(
        default=1_000_000, metadata={"help": "largest Socket.IO message, bytes"}
    )
    trust_forwarded_for: bool = field(
        default=False, metadata={"help": "take the client IP from X-Forwarded-For (behind a proxy)"}
    )
    # -- privacy (server/services/privacy.py) -------------------------------------------
    purge_after_days: float = field(
        default=30.0, metadata={"help": "days from DELETE /api/users/me to the purge"}
    )
    purge_interval_s: float = field(
        default=3600.0, metadata={"help": "how often the server runs the purge job, s"}
    )
    # -- the library (server/services/starter.py) ----------------------------------------
    starter_library: bool = field(
        default=True,
        metadata={"help": "add the bundled public-domain pieces to an empty library"},
    )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{Path(self.data_dir).resolve() / 'tutti.db'}"

    def resolved_workers(self) -> int:
        """How many processes ``tutti serve`` runs: ``workers``, or for 0 one per CPU when
        rooms can be shared (``redis_url`` set), else 1."""
        if self.workers > 0:
            return self.workers
        return (os.cpu_count() or 1) if self.redis_url else 1

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

    def resolved_max_audio_jobs(self) -> int:
        """``max_audio_jobs``, or CPUs − 1 (at least 1) when it is 0."""
        if self.max_audio_jobs > 0:
            return self.max_audio_jobs
        return max(1, (os.cpu_count() or 1) - 1)

    def resolved_secret_key(self) -> str:
        """``secret_key``; in dev mode without one, an ephemeral random key.

        Raises :class:`ConfigError` outside dev mode when no key is set: a
        production server must not sign tokens with a key nobody chose (and
        several processes must share one).
        """
        if self.secret_key:
            return self.secret_key
        if self.dev:
            return secrets.token_urlsafe(48)
        raise ConfigError(
            "no secret key: set TUTTI_SECRET_KEY (or --secret-key) to a long random string, "
            "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`, "
            "or run with --dev (TUTTI_DEV=1) for an ephemeral key"
        )

    def resolved_cors_origins(self) -> list[str] | str | None:
        """``"*"``, a list of origins, or ``None`` (same origin only)."""
        value = self.cors_origins.strip()
        if value == "*":
            return "*"
        origins = [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return origins or None


class ConfigError(ValueError):
    """A setting makes the server unsafe or unable to start; the message says what to do."""


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
        # A bare boolean flag (``--dev``) means true; ``--dev false`` works too.
        extra = {"nargs": "?", "const": True} if isinstance(f.default, bool) else {}
        parser.add_argument(
            flag,
            dest=f.name,
            type=_converter(f.default),
            default=None,
            help=f"{f.metadata.get('help', '')} (env {env}, default {f.default!r})",
            **extra,
        )
        if f.default is True:  # a setting that is on by default: --no-FLAG turns it off
            parser.add_argument(
                "--no-" + flag[2:],
                dest=f.name,
                action="store_const",
                const=False,
                help=f"turn {flag} off",
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
