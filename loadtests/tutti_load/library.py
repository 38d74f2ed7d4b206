"""The piece the rooms play, read from the server's library over REST (once per process).

``--piece`` picks it by id or title; by default the first piece with enough
parts for ``--room-size``. An empty library gets Tutti's bundled Bach chorale
(``server/music/bwv66.6.mid``, as ``tutti demo`` imports it). The notes and
tempo map come from the server's own MIDI (``GET /api/pieces/{id}/midi``),
parsed with :func:`rooms.piece.load_midi` and split into hands exactly as the
server does (``split_pitch``), so each player plays what it is scored against.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from gevent.lock import Semaphore

from rooms.performance import PlannedEvent, humanize
from rooms.piece import Piece, load_midi

BUNDLED = Path(__file__).resolve().parents[2] / "server" / "music" / "bwv66.6.mid"
BUNDLED_TITLE = "Chorale BWV 66.6 (J. S. Bach)"


class NoPiece(Exception):
    """The library has no piece the rooms can play."""


@dataclass
class RoomPiece:
    info: dict[str, Any]  # GET /api/pieces/{id}
    piece: Piece

    @property
    def id(self) -> str:
        return self.info["id"]

    def plan(
        self, part: str, room_bpm: float, jitter_ms: float, seed: int
    ) -> list[list[PlannedEvent]]:
        """``part``'s note-ons and -offs in ms from ``start_at`` at ``room_bpm``, grouped by
        the moment they are due (a chord, or an off with the next on, is one group)."""
        time_scale = self.info["tempo_bpm"] / room_bpm  # room seconds per file second
        events = humanize(
            self.piece.part(part).notes, time_scale=time_scale, jitter_ms=jitter_ms, seed=seed
        )
        return [list(g) for _, g in groupby(events, key=lambda e: round(e.t_ms, 1))]


_lock = Semaphore()
_chosen: RoomPiece | None = None


def room_piece(user, wanted: str, parts_needed: int) -> RoomPiece:
    """The piece of this process's rooms, chosen (or imported) by the first caller."""
    global _chosen
    with _lock:
        if _chosen is None:
            _chosen = _choose(user, wanted, parts_needed)
        return _chosen


def reset() -> None:
    global _chosen
    _chosen = None


def _choose(user, wanted: str, parts_needed: int) -> RoomPiece:
    client = user.client
    library = client.get("/api/pieces", name="/api/pieces").json()["pieces"]
    fits = [p for p in library if len(p["parts"]) >= parts_needed]
    if wanted:
        match = [p for p in library if p["id"] == wanted] or [
            p for p in library if wanted.lower() in (p["title"] or "").lower()
        ]
        if not match:
            raise NoPiece(f"no piece {wanted!r} in the library")
        info = match[0]
    elif fits:
        info = next((p for p in fits if p["title"] == BUNDLED_TITLE), fits[0])
    else:
        resp = client.post(
            "/api/pieces",
            params={"title": BUNDLED_TITLE, "composer": "J. S. Bach"},
            data=BUNDLED.read_bytes(),
            headers=user.auth,
            name="/api/pieces [import]",
        )
        if resp.status_code != 201:
            raise NoPiece(f"importing the bundled chorale answered {resp.status_code}")
        info = resp.json()
    if len(info["parts"]) < parts_needed:
        raise NoPiece(
            f"{info['title']!r} has {len(info['parts'])} parts, "
            f"rooms of {parts_needed} need as many"
        )
    midi = client.get(f"/api/pieces/{info['id']}/midi", name="/api/pieces/{id}/midi").content
    piece = load_midi(midi, title=info["title"])
    if info.get("split_pitch") is not None:
        piece = piece.split_hands(info["split_pitch"])
    return RoomPiece(info, piece)
