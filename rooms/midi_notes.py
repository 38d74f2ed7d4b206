"""Reading a decoded MIDI track: absolute ticks, track names, and notes grouped into raw parts.

A note starts at a ``note_on`` with velocity > 0 and ends at the next
``note_off`` (or ``note_on`` with velocity 0) for the same channel and pitch
in the same track; overlapping notes of the same pitch are closed first in,
first out. A note still open at the end of its track ends at the track's
last tick. Zero-length notes are kept (``offset == onset``). A ``note_off``
with no open note is ignored.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import mido


def absolute(track: Iterable[mido.Message]) -> Iterator[tuple[int, mido.Message]]:
    """``(absolute tick, message)`` of each message of a track (its times are deltas)."""
    tick = 0
    for msg in track:
        tick += msg.time
        yield tick, msg


def track_names(track: Iterable[mido.Message]) -> list[str]:
    """Distinct non-blank track names in order of appearance, stripped."""
    names: list[str] = []
    seen: set[str] = set()
    for msg in track:
        if msg.type == "track_name" and (name := msg.name.strip()) and name not in seen:
            seen.add(name)
            names.append(name)
    return names


@dataclass
class RawPart:
    """A part's notes before timing: ``notes`` are ``(onset_tick, offset_tick, pitch,
    velocity)`` in reading order; ``channels`` those used; ``program`` the GM program
    0–127 set on the channel of its first note before that note (``None`` if none)."""

    notes: list[tuple[int, int, int, int]]
    channels: set[int]
    program: int | None


def read_notes(track: Iterable[mido.Message], *, by_channel: bool) -> dict[int, RawPart]:
    """Notes of one track grouped by channel (``by_channel``) or all in group 0.

    Groups appear in the order of their first note.
    """
    groups: dict[int, RawPart] = {}
    programs: dict[int, int] = {}
    sounding: dict[tuple[int, int], deque[tuple[int, int]]] = {}
    tick = 0
    for tick, msg in absolute(track):
        if msg.type == "program_change":
            programs[msg.channel] = msg.program
        elif msg.type == "note_on" and msg.velocity > 0:
            group = msg.channel if by_channel else 0
            if group not in groups:
                groups[group] = RawPart([], set(), programs.get(msg.channel))
            groups[group].channels.add(msg.channel)
            sounding.setdefault((msg.channel, msg.note), deque()).append((tick, msg.velocity))
        elif msg.type in ("note_on", "note_off"):
            queue = sounding.get((msg.channel, msg.note))
            if queue:
                onset, velocity = queue.popleft()
                group = msg.channel if by_channel else 0
                groups[group].notes.append((onset, tick, msg.note, velocity))
    end = tick
    for (channel, pitch), queue in sounding.items():
        for onset, velocity in queue:
            groups[channel if by_channel else 0].notes.append((onset, end, pitch, velocity))
    return groups
