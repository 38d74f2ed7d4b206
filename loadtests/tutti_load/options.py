"""Tutti's locust command-line arguments (also settable as ``TUTTI_*`` variables)."""

from __future__ import annotations

from typing import Any

from locust import events


@events.init_command_line_parser.add_listener
def add_arguments(parser) -> None:
    group = parser.add_argument_group("Tutti", "Tutti load-test scenario")

    def arg(flag: str, env: str, help: str, **kwargs: Any) -> None:
        group.add_argument(flag, env_var=f"TUTTI_{env}", help=help, **kwargs)

    arg(
        "--piece",
        "PIECE",
        "piece the rooms play: an id or a (case-insensitive) title substring; default: the "
        "first piece of the library with enough parts, importing Tutti's Bach chorale when "
        "there is none",
        default="",
    )
    arg(
        "--room-size",
        "ROOM_SIZE",
        "players per room: 2 = duet, 3-8 = ensemble (default 2)",
        type=int,
        default=2,
    )
    arg(
        "--tempo-bpm",
        "TEMPO_BPM",
        "room tempo, quarter notes per minute (default: the piece's own tempo map)",
        type=float,
        default=0.0,
    )
    arg(
        "--play-seconds",
        "PLAY_SECONDS",
        "play at most this long, then the host ends the "
        "room (default 0: the whole piece, the room finishes by itself)",
        type=float,
        default=0.0,
    )
    arg(
        "--jitter-ms",
        "JITTER_MS",
        "uniform onset jitter of each played note, ms (default 10)",
        type=float,
        default=10.0,
    )
    arg(
        "--count-in",
        "COUNT_IN",
        "count-in beats of each room, 0-16 (default 0)",
        type=int,
        default=0,
    )
    arg(
        "--group-wait",
        "GROUP_WAIT",
        "seconds a host waits for its room to fill before starting anyway (default 10)",
        type=float,
        default=10.0,
    )
    arg(
        "--watch-seconds",
        "WATCH_SECONDS",
        "how long a spectator stays in a room (default 0: until it finishes)",
        type=float,
        default=0.0,
    )
    arg(
        "--devices",
        "DEVICES",
        "devices (Socket.IO connections) per DevicePracticer (default 3)",
        type=int,
        default=3,
    )
    arg(
        "--sync-timeout",
        "SYNC_TIMEOUT",
        "seconds within which every other device must have pulled a pushed change (default 10)",
        type=float,
        default=10.0,
    )
    arg(
        "--think-seconds",
        "THINK_SECONDS",
        "mean pause between two actions of an ApiUser or "
        "DevicePracticer, s (uniform in 0.5-1.5 times it; default 1.5)",
        type=float,
        default=1.5,
    )
    arg(
        "--clock-interval",
        "CLOCK_INTERVAL",
        "seconds between clock exchanges after the initial sync (default 2)",
        type=float,
        default=2.0,
    )
    arg(
        "--transport",
        "TRANSPORT",
        "Socket.IO transport: websocket, polling, or upgrade "
        "(polling, then WebSocket; default websocket)",
        choices=["websocket", "polling", "upgrade"],
        default="websocket",
    )


def option(environment, name: str, default: Any) -> Any:
    """The parsed value of ``--name`` (``default`` when locust runs without a parser)."""
    options = getattr(environment, "parsed_options", None)
    return getattr(options, name, default) if options is not None else default
