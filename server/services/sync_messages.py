"""What devices send to sync: push and pull bodies and mutations, validated (pydantic),
with their limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from rooms.errors import RoomError
from server.services.logbook import (
    ENTITY_NAMES,
    PREFERENCES_ID,
)
from server.services.schemas import JsonObject, _Strict, parse

if TYPE_CHECKING:
    pass


MAX_MUTATIONS = 100


PULL_LIMIT = 500


PULL_LIMIT_MAX = 1000


MAX_MUTATION_ID = 2**53  # exact in every JSON client


class PushIn(_Strict):
    """The push envelope. Mutations are checked one by one when applied."""

    client_id: str = Field(min_length=1, max_length=64)
    mutations: list[Any] = Field(max_length=MAX_MUTATIONS)


class MutationIn(_Strict):
    mutation_id: int = Field(ge=1, le=MAX_MUTATION_ID)
    entity: Literal[ENTITY_NAMES]  # type: ignore[valid-type]
    op: Literal["put", "delete"]
    id: str | None = Field(default=None, min_length=1, max_length=64)
    fields: JsonObject = Field(default_factory=dict)  # too_deep/too_large: refused, consumed


class PullIn(_Strict):
    cursor: int = Field(default=0, ge=0, le=MAX_MUTATION_ID)
    limit: int = Field(default=PULL_LIMIT, ge=1, le=PULL_LIMIT_MAX)


def parse_push(data: Any) -> PushIn:
    """Validate a push envelope (raises ``RoomError``; nothing is applied then).

    Beyond the envelope only each mutation's ``mutation_id`` is checked here:
    a mutation with a bad shape is refused (and consumed) when its turn comes.
    """
    mutations = data.get("mutations") if isinstance(data, dict) else None
    if isinstance(mutations, list) and len(mutations) > MAX_MUTATIONS:
        # Checked before validation so a huge push costs nothing to refuse.
        raise RoomError(
            "too_many_mutations",
            f"a push holds at most {MAX_MUTATIONS} mutations, got {len(mutations)}",
        )
    push = parse(PushIn, data)
    for i, mutation in enumerate(push.mutations):
        where = f"mutations.{i}"
        if not isinstance(mutation, dict):
            raise RoomError("wrong_type", f"{where}: a mutation is a JSON object")
        if "mutation_id" not in mutation:
            raise RoomError("missing_field", f"{where}.mutation_id: required")
        mid = mutation["mutation_id"]
        if not isinstance(mid, int) or isinstance(mid, bool):
            raise RoomError("wrong_type", f"{where}.mutation_id: must be an integer")
        if not 1 <= mid <= MAX_MUTATION_ID:
            raise RoomError("out_of_range", f"{where}.mutation_id: must be ≥ 1")
    return push


def parse_mutation(data: dict[str, Any]) -> MutationIn:
    """Validate one mutation; raises ``RoomError`` with a ``mutations``-relative place."""
    try:
        m = parse(MutationIn, data)
    except RoomError as exc:
        raise RoomError(exc.code, f"mutation {data.get('mutation_id')}: {exc.message}") from None
    if m.entity == "preferences":
        if m.id not in (None, PREFERENCES_ID):
            raise RoomError("invalid_value", 'id: the preferences id is "me"')
    elif m.id is None:
        raise RoomError("missing_field", f"mutation {m.mutation_id}: id is required")
    if m.op == "delete" and m.fields:
        raise RoomError("invalid_value", f"mutation {m.mutation_id}: a delete carries no fields")
    return m
