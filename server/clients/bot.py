"""A computer partner: joins a room, plays one part with human-like timing.

Used by ``tutti bot`` and ``tutti demo``. The bot plays in real time on the
server clock: each event is sent when it is due and stamped with the time it
was "played".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from rooms.performance import Mistakes, PlannedEvent, choose_mistakes, humanize
from rooms.piece import Part
from server.clients.room_client import TuttiClient, local_ms
from server.services.pieces import piece_from_midi


@dataclass(frozen=True)
class Style:
    """How the bot plays: ``jitter_ms`` uniform onset jitter (ms), ``tempo_ratio`` played/room
    tempo, ``dropped``/``wrong`` how many notes to leave out or play at a wrong pitch."""

    jitter_ms: float = 15.0
    tempo_ratio: float = 1.0
    dropped: int = 0
    wrong: int = 0
    seed: int = 0


async def load_part(client: TuttiClient, piece_id: str, part: str) -> Part:
    """Download the room's piece and return one part (as the server splits it)."""
    info = await client.fetch_json(f"/api/pieces/{piece_id}")
    midi = await client.fetch_bytes(f"/api/pieces/{piece_id}/midi")
    piece = piece_from_midi(midi, title=info["title"], split_pitch=info.get("split_pitch"))
    return piece.part(part)


def plan_groups(
    part: Part, *, time_scale: float, style: Style
) -> tuple[Mistakes, list[list[PlannedEvent]]]:
    """The mistakes ``style`` injects and the planned events, grouped by the moment they
    are due (a chord's notes, ms from ``start_at``, form one group)."""
    mistakes = choose_mistakes(
        part.notes, dropped=style.dropped, wrong=style.wrong, seed=style.seed
    )
    plan = humanize(
        part.notes,
        time_scale=time_scale,
        tempo_ratio=style.tempo_ratio,
        jitter_ms=style.jitter_ms,
        mistakes=mistakes,
        seed=style.seed,
    )
    return mistakes, [list(g) for _, g in groupby(plan, key=lambda e: round(e.t_ms, 1))]


async def send_group(
    client: TuttiClient, room_id: str, group: list[PlannedEvent], *, start_at: float
) -> None:
    """Wait until ``group`` is due on the server clock, then send it as one ``notes``
    message stamped with the time it was "played"."""
    due = start_at + group[0].t_ms
    delay = (client.clock.to_client(due) - local_ms()) / 1000.0
    if delay > 0:
        await asyncio.sleep(delay)
    events = [
        {"type": e.type, "pitch": e.pitch, "velocity": e.velocity, "t": start_at + e.t_ms}
        for e in group
    ]
    await client.call("notes", {"room_id": room_id, "events": events})


async def play_part(
    client: TuttiClient,
    room_id: str,
    part: Part,
    *,
    start_at: float,
    time_scale: float,
    style: Style,
) -> Mistakes:
    """Play ``part`` from ``start_at`` (server epoch ms); returns the mistakes injected."""
    mistakes, groups = plan_groups(part, time_scale=time_scale, style=style)
    for group in groups:
        await send_group(client, room_id, group, start_at=start_at)
    return mistakes


async def run_bot(
    url: str, room_id: str, part_name: str | None, *, name: str, style: Style
) -> dict[str, Any]:
    """Join ``room_id`` as a player of ``part_name``, play when the host starts, return results.

    Returns the ``room:finished`` payload. Raises :class:`server.clients.room_client.TuttiError`.
    """
    client = TuttiClient(url)
    await client.connect(name, device_name="tutti bot")
    try:
        await client.sync_clock()
        joined = await client.call(
            "room:join", {"room_id": room_id, "role": "player", "part": part_name}
        )
        room = joined["room"]
        me = client.user["id"]
        part_name = next(m["part"] for m in room["members"] if m["user_id"] == me)
        part = await load_part(client, room["piece_id"], part_name)
        started = await client.wait_for("room:started", timeout=3600)
        info = await client.fetch_json(f"/api/pieces/{room['piece_id']}")
        time_scale = info["tempo_bpm"] / started["tempo_bpm"]
        await play_part(
            client, room_id, part, start_at=started["start_at"], time_scale=time_scale, style=style
        )
        return await client.wait_for("room:finished", timeout=120)
    finally:
        await client.disconnect()
