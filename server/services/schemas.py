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
``too_deep``        free JSON (preferences, a mutation's ``fields``) nested
                    deeper than :data:`MAX_JSON_DEPTH` levels
``too_large``       free JSON longer than :data:`MAX_JSON_BYTES` bytes
``invalid_date``    a date parameter that is not ``YYYY-MM-DD``
==================  =====================================================

Every integer a model takes must fit a 64-bit SQL integer (``out_of_range``
beyond :data:`INT64_MIN`..:data:`INT64_MAX`, whatever the model's own bounds),
and every date :data:`MIN_DAY`..:data:`MAX_DAY` (``out_of_range``):
beyond them the database or date arithmetic would overflow. Query
parameters are validated with :class:`QueryModel` models and the
:data:`QueryInt` / :data:`QueryDay` types.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from rooms.errors import RoomError
from rooms.notes import NoteEvent
from rooms.practice import Ladder, Loop, Practice

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


class LadderIn(_Strict):
    """A tempo ladder (:class:`rooms.practice.Ladder`, which checks the ranges:
    ``invalid_ladder``): percentages of the piece's tempo and an accuracy 0–1."""

    start_pct: float
    step_pct: float
    target_pct: float
    min_accuracy: float

    _check = field_validator("start_pct", "step_pct", "target_pct", "min_accuracy")(_finite)

    def to_ladder(self) -> Ladder:
        return Ladder(self.start_pct, self.step_pct, self.target_pct, self.min_accuracy)


class LoopIn(_Strict):
    """Bars ``from_bar``–``to_bar`` (1-based; ``to_bar`` null: the last) ``repeats`` times
    (with a ladder: at most); the room checks them against the piece (``invalid_bars``)."""

    from_bar: int = 1
    to_bar: int | None = None
    repeats: int = Field(default=1, ge=-(2**31), le=2**31)

    def to_loop(self) -> Loop:
        return Loop(self.from_bar, self.to_bar, self.repeats)


class RoomCreateIn(_Strict):
    """``room:create``. Practice tools (:mod:`rooms.practice`): ``tempo_pct`` 25–150 % of
    the tempo, ``loop`` a section, ``ladder`` a tempo ladder, ``wait`` wait mode."""

    piece_id: Id | None = None
    mode: Literal["duet", "ensemble", "free"]
    tempo_bpm: float | None = Field(default=None, ge=20, le=400)
    count_in_beats: int = Field(default=4, ge=0, le=16)
    name: Text = ""
    tempo_pct: float = Field(default=100.0, ge=25, le=150)
    loop: LoopIn | None = None
    ladder: LadderIn | None = None
    wait: bool = False

    def to_practice(self) -> Practice:
        """The practice settings; ``RoomError("invalid_ladder")`` for a bad ladder."""
        return Practice(
            self.tempo_pct,
            None if self.loop is None else self.loop.to_loop(),
            None if self.ladder is None else self.ladder.to_ladder(),
            self.wait,
        )


class TempoEventIn(_Strict):
    """``room:tempo``: the room's tempo, 25–150 % of the piece's (before the start)."""

    room_id: Id
    tempo_pct: float = Field(ge=25, le=150)


class LoopEventIn(LoopIn):
    """``room:loop``: loop bars ``from_bar``–``to_bar`` ``repeats`` times, optionally with
    a ``ladder`` (before the start; the room's ``tempo_pct`` stays)."""

    room_id: Id
    ladder: LadderIn | None = None


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


class PartnerAddIn(_Strict):
    """``room:add_partner``: ``part`` null takes the first free part; ``follow`` false plays
    at the room tempo instead of following the human players. ``from_session`` and
    ``user_id``: replay that player's recorded take of a saved session instead (its part;
    ``follow`` false: at its recorded timing; :mod:`rooms.takes`)."""

    room_id: Id
    part: Text | None = None
    follow: bool = True
    from_session: Id | None = None
    user_id: Id | None = None

    @model_validator(mode="after")
    def _a_take_names_its_player(self) -> PartnerAddIn:
        if (self.from_session is None) != (self.user_id is None):
            raise ValueError("a recorded take needs both from_session and user_id")
        return self


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


# --------------------------------------------------------------------------- free JSON

MAX_JSON_DEPTH = 32
"""Deepest nesting of free JSON (an object or array in an object is depth 2)."""
MAX_JSON_BYTES = 1_048_576
"""Longest free JSON, in bytes of compact JSON."""


def check_json(value: Any, where: str = "fields") -> Any:
    """``value`` if it nests at most :data:`MAX_JSON_DEPTH` levels and its JSON has at most
    :data:`MAX_JSON_BYTES` bytes; else ``RoomError`` ``too_deep`` / ``too_large``.

    The shared check of free JSON, on REST and Socket.IO alike (preferences, a
    mutation's ``fields``): deeper JSON could not be stored (orjson writes at most
    254 levels). Iterative, so any depth costs one pass and no recursion.
    """
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise RoomError("too_deep", f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)
    if len(orjson.dumps(value)) > MAX_JSON_BYTES:
        raise RoomError("too_large", f"{where}: at most {MAX_JSON_BYTES} bytes of JSON")
    return value


def _free_json(value: Any) -> Any:
    try:
        return check_json(value)
    except RoomError as exc:
        raise PydanticCustomError(exc.code, exc.message) from None


JsonObject = Annotated[dict[str, Any], AfterValidator(_free_json)]
"""A free JSON object, checked by :func:`check_json` (codes ``too_deep``, ``too_large``)."""

# --------------------------------------------------------------------------- query parameters

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MIN_DAY, MAX_DAY = date(1900, 1, 1), date(9998, 12, 31)
"""The dates a date parameter may name: arithmetic of a few years and any UTC offset
around them stays inside Python's and the database's calendars."""

_INTEGER = re.compile(r"-?[0-9]+")


def _query_int(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if not value.isascii() or not _INTEGER.fullmatch(value):
        raise PydanticCustomError("wrong_type", "must be an integer")
    digits = value.lstrip("-").lstrip("0") or "0"
    if len(digits) > 19:  # beyond any 64-bit integer (and int() refuses 4300 digits)
        raise PydanticCustomError("out_of_range", "must be a 64-bit integer")
    return -int(digits) if value.startswith("-") else int(digits)


def _query_day(value: Any) -> Any:
    if isinstance(value, date):
        return value
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("invalid_date", "must be a date YYYY-MM-DD") from None
    if not MIN_DAY <= day <= MAX_DAY:
        raise PydanticCustomError(
            "out_of_range", f"must be {MIN_DAY.isoformat()}..{MAX_DAY.isoformat()}"
        )
    return day


QueryInt = Annotated[int, BeforeValidator(_query_int)]
"""An integer query parameter: ``-?[0-9]+`` (``wrong_type`` otherwise); give it bounds
with ``Field(ge=, le=)``."""

DAY_SCHEMA = {
    "type": "string",
    "format": "date",
    "formatMinimum": MIN_DAY.isoformat(),
    "formatMaximum": MAX_DAY.isoformat(),
    "description": f"a date YYYY-MM-DD, {MIN_DAY.isoformat()} to {MAX_DAY.isoformat()}",
}
QueryDay = Annotated[date, BeforeValidator(_query_day), WithJsonSchema(DAY_SCHEMA)]
"""A date query parameter ``YYYY-MM-DD``, :data:`MIN_DAY`..:data:`MAX_DAY`
(``invalid_date``, ``out_of_range``)."""


class QueryModel(BaseModel):
    """The query parameters of a route: unknown ones are ignored, values are strings.

    Validate ``request.rel_url.query`` with :func:`parse_query`.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


def parse_query(model: type[M], query: Any) -> M:
    """``model`` of a query string (a multidict): the first value of each name; an empty
    value counts as absent (its default). Raises ``RoomError`` like :func:`parse`."""
    return parse(model, {name: query.get(name) for name in query if query.get(name) != ""})


# --------------------------------------------------------------------------- parsing

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
    "too_deep": "too_deep",
    "too_large": "too_large",
    "invalid_date": "invalid_date",
    "out_of_range": "out_of_range",
    "int_parsing_size": "out_of_range",  # more digits than any integer we take
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
        result = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        kind = first["type"]
        code = _CODES.get(kind, "wrong_type" if kind.endswith("_type") else "invalid_value")
        if kind == "too_short" and first["loc"][:1] == ("events",):
            code = "invalid_value"
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise RoomError(code, f"{where}: {first['msg']}") from None
    for name in type(result).model_fields:  # the models' own bounds may be wider
        value = getattr(result, name)
        if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
            raise RoomError("out_of_range", f"{name}: must be a 64-bit integer")
    return result


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
