"""Validation of every Socket.IO event and REST body (pydantic, strict types).

:func:`parse` turns a payload into a model or raises
:class:`rooms.errors.RoomError` with a specific code derived from the first
validation error:

==================  =====================================================
code                when
==================  =====================================================
``wrong_type``      a field (or the whole payload) has the wrong JSON type
``missing_field``   a required field is absent
``unknown_field``   a field the event does not define
``out_of_range``    a number outside its range (e.g. pitch 200)
``invalid_value``   a string outside its allowed values or lengths
``too_many_events`` a ``notes`` batch longer than ``MAX_BATCH`` events
==================  =====================================================
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rooms.errors import RoomError
from rooms.notes import NoteEvent

MAX_BATCH = 64

Id = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class ClockIn(_Strict):
    """``clock``: ``t0`` client send time, ms; ``rtt_ms`` the client's current median RTT."""

    t0: float
    rtt_ms: float | None = Field(default=None, ge=0, le=60_000)

    _check_t0 = field_validator("t0")(_finite)


class AuthIn(_Strict):
    """Socket.IO handshake ``auth``."""

    token: str = Field(min_length=1, max_length=4096)
    device_id: Id = "default"
    device_name: Text = ""


class RoomCreateIn(_Strict):
    piece_id: Id | None = None
    mode: Literal["duet", "ensemble", "free"]
    tempo_bpm: float | None = Field(default=None, ge=20, le=400)
    count_in_beats: int = Field(default=4, ge=0, le=16)
    name: Text = ""


class RecoverIn(_Strict):
    """``room:join``'s ``recover``: the last event a reconnecting client received."""

    epoch: Id
    offset: str = Field(min_length=3, max_length=64, pattern=r"^[0-9]+-[0-9]+$")


class RoomJoinIn(_Strict):
    room_id: Id
    role: Literal["player", "spectator"] = "player"
    part: Text | None = None
    instrument: Text | None = None
    recover: RecoverIn | None = None


class RoomIdIn(_Strict):
    room_id: Id


class NoteIn(_Strict):
    """One note event: ``t`` is Unix epoch ms on the server clock."""

    type: Literal["on", "off"]
    pitch: int = Field(ge=0, le=127)
    velocity: int = Field(ge=0, le=127)
    t: float

    _check_t = field_validator("t")(_finite)

    @model_validator(mode="after")
    def _velocity_of_note_on(self) -> NoteIn:
        if self.type == "on" and self.velocity == 0:
            raise ValueError("velocity of a note-on must be 1-127 (send type 'off' to release)")
        return self

    def to_event(self) -> NoteEvent:
        return NoteEvent(self.type, self.pitch, self.velocity, self.t)


class NoteMsg(NoteIn):
    room_id: Id


class NotesMsg(_Strict):
    room_id: Id
    events: list[NoteIn] = Field(min_length=1, max_length=MAX_BATCH)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("display_name must not be blank")
    return value.strip()


DisplayName = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_not_blank)]
"""A person's shown name: 1–50 characters, not blank, stripped."""


class GuestIn(_Strict):
    display_name: DisplayName


M = TypeVar("M", bound=BaseModel)

_CODES = {
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "finite_number": "out_of_range",
    "literal_error": "invalid_value",
    "string_too_short": "invalid_value",
    "string_too_long": "invalid_value",
    "value_error": "invalid_value",
}


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` as ``model``; raise ``RoomError`` with a specific code (see module)."""
    if not isinstance(data, dict):
        raise RoomError("wrong_type", f"expected a JSON object, got {_json_type(data)}")
    events = data.get("events")
    if model is NotesMsg and isinstance(events, list) and len(events) > MAX_BATCH:
        # Checked before validation so a huge batch costs nothing to refuse.
        raise RoomError(
            "too_many_events",
            f"a notes message holds at most {MAX_BATCH} events, got {len(events)}",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        kind = first["type"]
        code = _CODES.get(kind, "wrong_type" if kind.endswith("_type") else "invalid_value")
        if kind == "too_short" and first["loc"][:1] == ("events",):
            code = "invalid_value"
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise RoomError(code, f"{where}: {first['msg']}") from None


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", int: "a number", float: "a number"}
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return names.get(type(value), type(value).__name__)


class RoomCreateEvent(RoomCreateIn):
    """``room:create``: a ``private`` room's ack adds ``invite_code`` (:mod:`rooms.admission`)."""

    private: bool = False


class RoomJoinEvent(RoomJoinIn):
    """``room:join``: ``invite`` (1–64 characters) is needed for a private room."""

    invite: str | None = Field(default=None, min_length=1, max_length=64)
