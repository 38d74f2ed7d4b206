"""The synced logbook's entities: name → table, field schemas, row ↔ JSON.

Five entities travel through the sync protocol (:mod:`server.services.sync`) and the
REST API (:mod:`server.rest.logbook`):

=====================  ======================  ==========================================
entity                 table                   required to create
=====================  ======================  ==========================================
``logbook_entry``      ``practice_logs``       ``activity_type``, ``start_time``,
                                               ``duration_seconds``
``goal``               ``goals``               ``title``
``repertoire_item``    ``repertoire_items``    ``work_title``
``practice_template``  ``practice_templates``  ``name``, ``activity_type``
``preferences``        ``user_preferences``    — (one object per user, id ``"me"``)
=====================  ======================  ==========================================

A put carries only the fields the device changed (a per-field patch). Every
field is validated by a strict pydantic model (types, ranges, enums, string
lengths); a refused field raises :class:`rooms.errors.RoomError` with the
codes of :mod:`server.services.schemas` (``wrong_type``, ``unknown_field``,
``out_of_range``, ``invalid_value``, ``missing_field``) plus
``unknown_piece`` (a ``piece_id`` not in the library) and
``read_only_field`` (a room log's measured fields). Limits: ``self_rating``
1–5, ``progress`` 0–100, ``duration_seconds`` 0–7 days, tempi 20–400 BPM,
``activity_type`` one of :data:`ACTIVITY_TYPES`, statuses from their enums,
titles ≤ 200/300 characters, texts ≤ 10 000, ≤ 20 focus areas and pieces.

Times (``start_time``, ``end_time``) are ISO 8601 strings with an offset
(``"2025-05-01T18:00:00+02:00"``); they are stored and sent back in UTC. They
are data only: nothing orders by them. ``target_date`` is ``YYYY-MM-DD``.
``created_at``/``updated_at`` are set from the server clock and are read-only.

Logs written by finished rooms (``source: "room"``) are logbook entries too;
their measured fields (``result``, ``accuracy_percentage``, …) are read-only,
only the annotations ``self_rating``, ``focus_areas``, ``notes`` and ``mood``
may be changed (and the entry may be deleted from the logbook).

Preferences are one JSON object per user, merged key by key: a put sets the
keys it names, a key set to ``null`` is removed; a delete clears the object.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rooms.errors import RoomError
from server.db.models import (
    REPERTOIRE_STATUSES,
    Goal,
    PracticeLog,
    PracticeTemplate,
    RepertoireItem,
    UserPreferences,
)
from server.services.schemas import parse

ACTIVITY_TYPES = (
    "repertoire",
    "ensemble_reading",
    "technique",
    "scales",
    "etudes",
    "sight_reading",
    "improvisation",
    "ear_training",
    "theory",
    "warm_up",
    "performance",
    "lesson",
    "other",
)
"""Allowed ``activity_type`` values (the first two are what finished rooms write)."""

LOG_SOURCES = ("manual", "quick_log", "timer")
"""``source`` values a device may write; ``"room"`` is reserved for finished rooms."""

GOAL_STATUSES = ("active", "completed", "abandoned")
ROOM_LOG_WRITABLE = frozenset({"self_rating", "focus_areas", "notes", "mood"})
MAX_DURATION_S = 7 * 24 * 3600
MAX_TEXT = 10_000
MAX_PREFERENCE_KEYS = 100
MAX_PREFERENCES_BYTES = 16_384


# --------------------------------------------------------------------------- field types


def _iso_datetime(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must carry a UTC offset (e.g. 2025-05-01T18:00:00Z)")
    if not 1970 <= parsed.year <= 9998:
        raise ValueError("year out of range")
    return parsed.astimezone(UTC)


def _iso_date(value: str) -> str:
    try:
        if len(value) != 10:
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date YYYY-MM-DD") from None
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


# The formats are for the OpenAPI document (server/rest/openapi.py); validation is the validators'.
DateTime = Annotated[
    str, Field(max_length=40, json_schema_extra={"format": "date-time"}),
    AfterValidator(_iso_datetime),
]  # fmt: skip
IsoDate = Annotated[str, Field(json_schema_extra={"format": "date"}), AfterValidator(_iso_date)]
Id = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
WorkTitle = Annotated[str, Field(min_length=1, max_length=300)]
ShortText = Annotated[str, Field(max_length=100)]
LongText = Annotated[str, Field(max_length=MAX_TEXT)]
Duration = Annotated[float, Field(ge=0, le=MAX_DURATION_S), AfterValidator(_finite)]
Tempo = Annotated[float, Field(ge=20, le=400), AfterValidator(_finite)]
Percent = Annotated[float, Field(ge=0, le=100), AfterValidator(_finite)]
FocusAreas = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=50)]], Field(max_length=20)
]
ActivityType = Literal[ACTIVITY_TYPES]  # type: ignore[valid-type]


class _Fields(BaseModel):
    """A per-field patch: every field optional, unknown fields refused, strict types.

    A field left out is not changed; ``null`` is only accepted where the
    column is nullable.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    def values(self) -> dict[str, Any]:
        """The fields the payload named, as column values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class PieceRef(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    piece_id: Id | None = None
    work_title: Annotated[str, Field(max_length=300)] | None = None


class LogbookEntryFields(_Fields):
    source: Literal[LOG_SOURCES] = None  # type: ignore[valid-type,assignment]
    activity_type: ActivityType = None  # type: ignore[assignment]
    instrument: ShortText | None = None
    start_time: DateTime = None  # type: ignore[assignment]
    end_time: DateTime | None = None
    duration_seconds: Duration = None  # type: ignore[assignment]
    piece_id: Id | None = None
    work_title: Annotated[str, Field(max_length=300)] | None = None
    pieces: Annotated[list[PieceRef], Field(max_length=20)] | None = None
    tempo_practiced: Tempo | None = None
    tempo_target: Tempo | None = None
    self_rating: Annotated[int, Field(ge=1, le=5)] | None = None
    focus_areas: FocusAreas | None = None
    notes: LongText | None = None
    mood: Annotated[str, Field(max_length=32)] | None = None

    def values(self) -> dict[str, Any]:
        out = super().values()
        if "pieces" in out and out["pieces"] is not None:
            out["pieces"] = [p.model_dump() for p in out["pieces"]]
        return out


class GoalFields(_Fields):
    title: Name = None  # type: ignore[assignment]
    target_date: IsoDate | None = None
    status: Literal[GOAL_STATUSES] = None  # type: ignore[valid-type,assignment]
    progress: Percent = None  # type: ignore[assignment]
    notes: LongText | None = None


class RepertoireItemFields(_Fields):
    work_title: WorkTitle = None  # type: ignore[assignment]
    composer: Annotated[str, Field(max_length=300)] | None = None
    piece_id: Id | None = None
    status: Literal[REPERTOIRE_STATUSES] = None  # type: ignore[valid-type,assignment]
    notes: LongText | None = None


class PracticeTemplateFields(_Fields):
    name: Name = None  # type: ignore[assignment]
    activity_type: ActivityType = None  # type: ignore[assignment]
    instrument: ShortText | None = None
    duration_seconds: Duration | None = None
    focus_areas: FocusAreas | None = None
    notes: LongText | None = None


# --------------------------------------------------------------------------- registry


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _columns(*names: str) -> Callable[[Any], dict[str, Any]]:
    def to_fields(row: Any) -> dict[str, Any]:
        out = {}
        for name in names:
            value = getattr(row, name)
            out[name] = _iso(value) if isinstance(value, datetime) else value
        return out

    return to_fields


@dataclass(frozen=True)
class Entity:
    """One synced entity: its table, field schema and JSON conversion."""

    name: str
    model: type
    fields: type[_Fields] | None  # None: preferences (a free JSON object)
    required: tuple[str, ...]
    defaults: dict[str, Any]
    to_fields: Callable[[Any], dict[str, Any]]
    piece_fk: bool = False  # has a piece_id column (checked against the library)

    def parse(self, data: Any) -> dict[str, Any]:
        """Validate a put's ``fields``; the named fields as column values."""
        if self.fields is None:
            return parse_preferences(data)
        try:
            return parse(self.fields, data).values()
        except RoomError as exc:
            raise RoomError(exc.code, f"fields.{exc.message}") from None


_TIMES = ("created_at", "updated_at")

LOGBOOK_ENTRY = Entity(
    name="logbook_entry",
    model=PracticeLog,
    fields=LogbookEntryFields,
    required=("activity_type", "start_time", "duration_seconds"),
    defaults={"source": "manual", "complete": True},
    to_fields=_columns(
        "source",
        "session_id",
        "piece_id",
        "work_title",
        "part",
        "activity_type",
        "instrument",
        "start_time",
        "end_time",
        "duration_seconds",
        "tempo_practiced",
        "tempo_target",
        "notes_played",
        "notes_correct",
        "accuracy_percentage",
        "complete",
        "result",
        "self_rating",
        "focus_areas",
        "notes",
        "mood",
        "pieces",
        *_TIMES,
    ),
    piece_fk=True,
)

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        LOGBOOK_ENTRY,
        Entity(
            name="goal",
            model=Goal,
            fields=GoalFields,
            required=("title",),
            defaults={"status": "active", "progress": 0.0},
            to_fields=_columns("title", "target_date", "status", "progress", "notes", *_TIMES),
        ),
        Entity(
            name="repertoire_item",
            model=RepertoireItem,
            fields=RepertoireItemFields,
            required=("work_title",),
            defaults={"status": "planned"},
            to_fields=_columns("piece_id", "work_title", "composer", "status", "notes", *_TIMES),
            piece_fk=True,
        ),
        Entity(
            name="practice_template",
            model=PracticeTemplate,
            fields=PracticeTemplateFields,
            required=("name", "activity_type"),
            defaults={},
            to_fields=_columns(
                "name",
                "activity_type",
                "instrument",
                "duration_seconds",
                "focus_areas",
                "notes",
                *_TIMES,
            ),
        ),
        Entity(
            name="preferences",
            model=UserPreferences,
            fields=None,
            required=(),
            defaults={},
            to_fields=lambda row: dict(row.data or {}),
        ),
    )
}
"""Every synced entity by its protocol name."""

ENTITY_NAMES = tuple(ENTITIES)
PREFERENCES_ID = "me"


def parse_preferences(data: Any) -> dict[str, Any]:
    """A preferences patch: a JSON object of at most 100 keys (1–64 characters)."""
    if not isinstance(data, dict):
        raise RoomError("wrong_type", "fields: preferences are a JSON object")
    if len(data) > MAX_PREFERENCE_KEYS:
        raise RoomError("invalid_value", f"fields: at most {MAX_PREFERENCE_KEYS} keys")
    for key in data:
        if not 1 <= len(key) <= 64:
            raise RoomError("invalid_value", "fields: keys are 1-64 characters")
    if len(orjson.dumps(data)) > MAX_PREFERENCES_BYTES:
        raise RoomError("invalid_value", f"fields: at most {MAX_PREFERENCES_BYTES} bytes of JSON")
    return dict(data)


def merge_preferences(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``current`` with ``patch`` applied key by key (``None`` removes a key)."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_PREFERENCE_KEYS or len(orjson.dumps(merged)) > MAX_PREFERENCES_BYTES:
        raise RoomError(
            "invalid_value",
            f"fields: preferences hold at most {MAX_PREFERENCE_KEYS} keys and "
            f"{MAX_PREFERENCES_BYTES} bytes of JSON",
        )
    return merged


def check_row(entity: Entity, values: Mapping[str, Any]) -> None:
    """Cross-field rules on a row's values as they would be after a write."""
    if entity is LOGBOOK_ENTRY:
        start, end = values.get("start_time"), values.get("end_time")
        if start is not None and end is not None and _aware(end) < _aware(start):
            raise RoomError("invalid_value", "fields.end_time: must not be before start_time")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def read_only_fields(entity: Entity, row: Any, values: dict[str, Any]) -> list[str]:
    """Fields of ``values`` that may not be changed on ``row`` (a room log's measurements)."""
    if entity is LOGBOOK_ENTRY and row.source in ("room", "audio"):
        return sorted(set(values) - ROOM_LOG_WRITABLE)
    return []


def row_to_json(entity: Entity, row: Any) -> dict[str, Any]:
    """A live row as the REST API shows it: ``{"id", "version", **fields}``."""
    row_id = PREFERENCES_ID if entity.fields is None else row.id
    return {"id": row_id, "version": row.version, **entity.to_fields(row)}
