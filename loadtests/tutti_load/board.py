"""Pairing players into rooms, and the live rooms spectators pick from (one locust process).

gevent switches only at blocking calls, so plain attributes need no locks.
Rooms are formed inside one process: with ``--processes N`` each process pairs
its own users (give each a multiple of ``--room-size`` players).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from gevent.event import Event


@dataclass(eq=False)
class Group:
    """One room's worth of players; the first to claim a place is the host.

    ``sent`` holds each player's acknowledged note seqs and ``done`` the players
    that stopped sending: once every player is done, a player can tell which of
    its partners' notes never reached it.
    """

    number: int
    size: int
    claimed: int = 1  # the host
    joined: int = 0
    closed: bool = False  # no more claims: the host is about to start
    room_id: str | None = None
    created: Event = field(default_factory=Event)  # set when room_id is known (or failed)
    players: list[str] = field(default_factory=list)  # user ids that joined
    sent: dict[str, set[int]] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    all_done: Event = field(default_factory=Event)

    def finished_sending(self, user_id: str) -> None:
        self.done.add(user_id)
        if self.done >= set(self.players):
            self.all_done.set()


class Board:
    """Hands out places in groups and lists the started rooms."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._open: Group | None = None
        self.live: dict[str, Group] = {}  # started, not yet finished

    def claim(self, size: int) -> tuple[Group, bool]:
        """A place in the open group, or a new group (then the caller is its host)."""
        group = self._open
        if group is not None and not group.closed and group.claimed < group.size:
            group.claimed += 1
            if group.claimed >= group.size:
                self._open = None
            return group, False
        group = Group(next(self._numbers), max(1, min(size, 8)))
        self._open = group if group.size > 1 else None
        return group, True

    def close(self, group: Group) -> None:
        group.closed = True
        if self._open is group:
            self._open = None

    def live_room(self) -> str | None:
        return random.choice(list(self.live)) if self.live else None


BOARD = Board()


def reset() -> None:
    """A new run (the web UI can start many) must not join the rooms of the last one."""
    global BOARD
    BOARD = Board()


def board() -> Board:
    return BOARD
