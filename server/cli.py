"""The ``tutti`` command line: serve, pieces import, users purge, bot, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from rooms.catalogue import STYLE_PERIODS
from rooms.generate import KINDS
from server.config import Settings, add_arguments, settings_from

SERVER_SETTINGS = None  # all of them
DB_SETTINGS = ["data_dir", "database_url", "log_level"]
PIECE_LIMITS = [  # server/services/pieces.py PieceLimits
    "max_piece_notes",
    "max_part_notes",
    "max_midi_events",
    "max_musicxml_bytes",
    "max_musicxml_entries",
]


def _configure_logging(level: str, fmt: str = "text") -> None:
    from server.observability.logs import configure

    configure(level, fmt)  # server/observability/logs.py: JSON lines or text, with correlation ids


def prepare_data_dir(path: str) -> str | None:
    """Create ``path`` (mode 0700) and check that it is writable; make what is in it private.

    Returns ``None`` when it is usable, else a message for people naming the folder and
    the reason (the caller exits with status 2).
    """
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        for name in ("tutti.db", "tutti.db-wal", "tutti.db-shm"):
            if (folder / name).exists():
                os.chmod(folder / name, 0o600)
        if (folder / "outbox").is_dir():
            os.chmod(folder / "outbox", 0o700)
            for eml in (folder / "outbox").iterdir():
                os.chmod(eml, 0o600)
    except OSError as exc:
        return f"cannot use the data folder {str(folder)!r}: {exc.strerror or exc}"
    return None


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from server.app import create_app

    # Everything the server writes (database, outbox of login links, logs) is its own only.
    os.umask(0o077)
    if any(a == "--secret-key" or a.startswith("--secret-key=") for a in args.argv):
        warning = (
            "--secret-key on the command line shows in the process list "
            "(/proc/PID/cmdline); set TUTTI_SECRET_KEY instead"
        )
        if settings.log_format == "json":  # every line of output is then one JSON object
            logging.getLogger("tutti").warning(warning)
        else:
            print(f"tutti serve: warning: {warning}", file=sys.stderr)
    problem = prepare_data_dir(settings.data_dir)
    if problem is not None:
        print(f"tutti serve: {problem}", file=sys.stderr)
        return 2
    workers = settings.resolved_workers()
    if workers > 1:
        if not settings.redis_url:
            print(
                "tutti serve: --workers > 1 shares rooms through Redis: add --redis-url",
                file=sys.stderr,
            )
            return 2
        from server.workers import supervise

        return supervise(settings, args.argv, workers)

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop does not exist on Windows
        pass
    try:
        app = create_app(settings)
    except ValueError as exc:  # ConfigError: no secret key; a malformed rate limit
        print(f"tutti serve: {exc}", file=sys.stderr)
        return 2
    listening = f"Tutti listening on http://{settings.host}:{settings.port}"
    if settings.log_format == "json":  # every line of output is then one JSON object
        logging.getLogger("tutti").info(listening)
    else:
        print(listening, flush=True)
    from server.observability.logs import AccessLogger

    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        shutdown_timeout=5,
        access_log_class=AccessLogger,
        reuse_port=settings.websocket_only,  # the workers of --workers N share the port
    )
    return 0


def cmd_users_purge(settings: Settings, args: argparse.Namespace) -> int:
    """Purge the deactivated users that are due (what ``tutti serve`` does every hour)."""
    from datetime import UTC, datetime, timedelta

    from server.db.engine import make_engine, make_sessionmaker, upgrade_database
    from server.services.purge import purge_due

    now = None
    if args.now:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            print(f"tutti users purge: --now {args.now!r} is not an ISO 8601 time", file=sys.stderr)
            return 2
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)

    async def run() -> list[str]:
        engine = make_engine(settings.resolved_database_url())
        try:
            await upgrade_database(engine)
            return await purge_due(
                make_sessionmaker(engine),
                purge_after=timedelta(days=settings.purge_after_days),
                redis_url=settings.redis_url,
                now=now,
            )
        finally:
            await engine.dispose()

    purged = asyncio.run(run())
    print(f"purged {len(purged)} user(s)" + "".join(f"\n  {u}" for u in purged))
    return 0


def cmd_pieces_import(settings: Settings, args: argparse.Namespace) -> int:
    from server.services.pieces_import import import_files

    if args.title and len(args.files) > 1:
        print("--title applies to one file; give one file or leave --title out", file=sys.stderr)
        return 2
    split_pitch = args.split_pitch if args.split_hands else None
    return asyncio.run(
        import_files(
            settings,
            [Path(f) for f in args.files],
            title=args.title,
            composer=args.composer,
            split_pitch=split_pitch,
            instrument=args.instrument,
            style_period=args.style_period,
        )
    )


def cmd_pieces_generate(settings: Settings, args: argparse.Namespace) -> int:
    from rooms.generate import GenerateError, Request
    from server.services.pieces_import import generate_piece

    try:
        request = Request(
            kind=args.kind,
            difficulty=args.difficulty,
            key=args.key,
            parts=args.parts,
            measures=args.measures,
            seed=args.seed,
        )
    except GenerateError as exc:
        print(f"tutti pieces generate: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else None
    return asyncio.run(generate_piece(settings, request, out=out))


def cmd_bot(settings: Settings, args: argparse.Namespace) -> int:
    from server.clients.bot import Style, run_bot
    from server.clients.demo import results_table
    from server.clients.room_client import TuttiError

    style = Style(
        jitter_ms=args.jitter_ms,
        tempo_ratio=args.tempo_ratio,
        dropped=args.drop,
        wrong=args.wrong,
        seed=args.seed,
    )
    print(
        f"Joining room {args.room} as {args.name!r} to play {args.part or 'a free part'}; "
        "waiting for the host to start...",
        flush=True,
    )
    try:
        finished = asyncio.run(run_bot(args.url, args.room, args.part, name=args.name, style=style))
    except TuttiError as exc:
        print(f"tutti bot: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"tutti bot: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    print(results_table(finished, {}))
    print(f"Session {finished['session_id']}")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    import dataclasses

    from server.clients.demo import main

    # The demo's own server is a throwaway: dev mode (an ephemeral secret key).
    return main(dataclasses.replace(settings, dev=True), args.url, args.tempo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tutti", description="Tutti: a real-time collaborative practice server for musicians."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server")
    add_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    pieces = sub.add_parser("pieces", help="manage the piece library")
    pieces_sub = pieces.add_subparsers(dest="pieces_command", required=True, metavar="ACTION")
    imp = pieces_sub.add_parser("import", help="import MIDI or MusicXML files into the library")
    imp.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="Standard MIDI Files (.mid) or MusicXML (.musicxml, .mxl, .xml; "
        "needs pip install 'tutti[musicxml]')",
    )
    imp.add_argument("--title", help="title (one file only; default: from the file)")
    imp.add_argument("--composer", help="composer to record")
    imp.add_argument(
        "--split-hands",
        action="store_true",
        help="split a one-part piano piece into right and left hands",
    )
    imp.add_argument(
        "--split-pitch",
        type=int,
        default=60,
        help="lowest MIDI pitch of the right hand (default 60, middle C)",
    )
    imp.add_argument("--instrument", help="instrument (default: from the MIDI programs)")
    imp.add_argument(
        "--style-period",
        choices=STYLE_PERIODS,
        help="style period (default: from the composer, when known)",
    )
    add_arguments(imp, [*DB_SETTINGS, *PIECE_LIMITS])
    imp.set_defaults(func=cmd_pieces_import)

    gen = pieces_sub.add_parser(
        "generate", help="generate sight-reading material (scales, arpeggios, phrases)"
    )
    gen.add_argument("--kind", choices=KINDS, default="phrase", help="what to generate")
    gen.add_argument("--difficulty", type=int, default=3, help="difficulty 1-10 (default 3)")
    gen.add_argument("--key", default="C major", help="key, e.g. 'G major', 'F# minor'")
    gen.add_argument("--parts", type=int, default=1, choices=(1, 2), help="1 = solo, 2 = duet")
    gen.add_argument("--measures", type=int, default=8, help="measures of 4/4 (1-64)")
    gen.add_argument("--seed", type=int, default=0, help="random seed (same seed, same notes)")
    gen.add_argument("--out", help="also write the MIDI file here")
    add_arguments(gen, DB_SETTINGS)
    gen.set_defaults(func=cmd_pieces_generate)

    bot = sub.add_parser("bot", help="join a room and play a part as a computer partner")
    bot.add_argument("--url", default="http://127.0.0.1:8080", help="server URL")
    bot.add_argument("--room", required=True, help="room id to join")
    bot.add_argument("--part", default=None, help="part to play (default: the first free one)")
    bot.add_argument("--name", default="Tutti bot", help="display name")
    bot.add_argument("--jitter-ms", type=float, default=15.0, help="onset jitter, ± ms")
    bot.add_argument(
        "--tempo-ratio", type=float, default=1.0, help="played/room tempo (0.95 = 5%% slower)"
    )
    bot.add_argument("--drop", type=int, default=0, help="notes to leave out")
    bot.add_argument("--wrong", type=int, default=0, help="notes to play at a wrong pitch")
    bot.add_argument("--seed", type=int, default=0, help="random seed of the mistakes")
    add_arguments(bot, ["log_level"])
    bot.set_defaults(func=cmd_bot)

    users = sub.add_parser("users", help="manage users")
    users_sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    purge = users_sub.add_parser(
        "purge", help="delete for good the users deactivated PURGE_AFTER_DAYS ago or more"
    )
    purge.add_argument("--now", default=None, help="ISO 8601 time to purge as of (default: now)")
    add_arguments(purge, [*DB_SETTINGS, "redis_url", "purge_after_days"])
    purge.set_defaults(func=cmd_users_purge)

    demo = sub.add_parser("demo", help="two bots play a Bach chorale as a duet")
    demo.add_argument("--url", default=None, help="use a running server instead of starting one")
    demo.add_argument("--tempo", type=float, default=None, help="room tempo, BPM")
    add_arguments(demo, ["data_dir", "database_url", "log_level", "grace_ms"])
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv  # the serve command line, for --workers to start copies of it
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"tutti: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        if settings.log_format not in ("json", "text"):
            print("tutti: --log-format must be json or text", file=sys.stderr)
            return 2
        _configure_logging(settings.log_level, settings.log_format)
    else:
        _configure_logging("WARNING")
    return args.func(settings, args)


if __name__ == "__main__":
    sys.exit(main())
