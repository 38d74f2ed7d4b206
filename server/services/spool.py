"""The spool: finished rooms kept on disk until the database has them, so none is ever lost.

Each finished room is written to ``DATA_DIR/spool/<session_id>.json`` (written
aside, ``fsync``'d, renamed, the folder ``fsync``'d) *before* the first attempt
to save it, and removed only once the database holds the session. A process
that dies in between finds it at its next start and saves it then. Saving is
idempotent by session id (:func:`server.db.finished_rooms.save_finished_room`),
so a file whose session is already saved is simply removed. Files are 0600.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from pathlib import Path
from typing import Any

import orjson

from rooms.finished import FinishedRoom, PlayerOutcome


def to_json(finished: FinishedRoom) -> bytes:
    """``finished`` as JSON bytes (the recording base64)."""
    data = dataclasses.asdict(finished)
    data["recording_midi"] = base64.b64encode(finished.recording_midi).decode()
    return orjson.dumps(data)


def from_json(raw: bytes) -> FinishedRoom:
    """The :class:`FinishedRoom` :func:`to_json` wrote. Raises ``ValueError`` on bad data."""
    data: dict[str, Any] = orjson.loads(raw)
    data["players"] = tuple(PlayerOutcome(**p) for p in data["players"])
    data["spectators"] = tuple(data.get("spectators", ()))
    data["recording_midi"] = base64.b64decode(data.get("recording_midi", ""))
    try:
        return FinishedRoom(**data)
    except TypeError as exc:
        raise ValueError(f"not a spooled finished room: {exc}") from exc


class FinishedRoomSpool:
    """Finished rooms not yet saved, one file each in ``folder`` (blocking file I/O: call it
    from a thread)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _path(self, session_id: str) -> Path:
        if not session_id.isalnum():  # session ids are uuid4 hex: never a path
            raise ValueError(f"bad session id {session_id!r}")
        return self.folder / f"{session_id}.json"

    def put(self, finished: FinishedRoom) -> Path:
        """Write ``finished`` durably; returns its file."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(finished.session_id)
        partial = path.with_suffix(".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, to_json(finished))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
        folder = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself survives a power cut
        finally:
            os.close(folder)
        return path

    def remove(self, session_id: str) -> None:
        """Forget ``session_id`` (it is in the database now)."""
        self._path(session_id).unlink(missing_ok=True)

    def pending(self) -> list[FinishedRoom]:
        """Every spooled room, oldest file first; unreadable files are left for an operator."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                found.append(from_json(path.read_bytes()))
            except (OSError, ValueError):
                continue
        return found

    def __len__(self) -> int:
        return len(list(self.folder.glob("*.json"))) if self.folder.is_dir() else 0
