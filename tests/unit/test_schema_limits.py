"""The shared validators of free JSON and query parameters (server/services/schemas.py)."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import MultiDict
from pydantic import Field

from rooms.errors import RoomError
from server.services.schemas import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    QueryDay,
    QueryInt,
    QueryModel,
    _Strict,
    check_json,
    parse,
    parse_query,
)


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def code_of(call) -> str:
    with pytest.raises(RoomError) as raised:
        call()
    return raised.value.code


def test_free_json_may_nest_max_depth_levels_and_no_more():
    assert check_json(nested(MAX_JSON_DEPTH)) == nested(MAX_JSON_DEPTH)
    assert code_of(lambda: check_json(nested(MAX_JSON_DEPTH + 1))) == "too_deep"
    # Far past any recursion limit: one pass, no RecursionError.
    assert code_of(lambda: check_json(nested(100_000))) == "too_deep"


def test_free_json_has_a_size_cap():
    assert code_of(lambda: check_json({"k": "x" * MAX_JSON_BYTES})) == "too_large"


class Page(QueryModel):
    limit: QueryInt = Field(default=5, ge=1, le=10)
    day: QueryDay | None = Field(default=None, alias="from")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"limit": "x"}, "wrong_type"),
        ({"limit": "1.5"}, "wrong_type"),
        ({"limit": "11"}, "out_of_range"),
        ({"limit": "9" * 5000}, "out_of_range"),
        ({"from": "2025-1-1"}, "invalid_date"),
        ({"from": "0001-01-01"}, "out_of_range"),
        ({"from": "9999-12-31"}, "out_of_range"),
    ],
)
def test_query_parameters_get_specific_codes(query, code):
    assert code_of(lambda: parse_query(Page, MultiDict(query))) == code


def test_query_parameters_first_value_empty_absent_unknown_ignored():
    page = parse_query(Page, MultiDict([("limit", "3"), ("limit", "4"), ("x", "y"), ("from", "")]))
    assert page.limit == 3 and page.day is None
    assert parse_query(Page, MultiDict({"limit": "0" * 30 + "7"})).limit == 7


class Wide(_Strict):
    n: int = Field(ge=0)


def test_every_model_integer_fits_64_bits():
    assert parse(Wide, {"n": 2**63 - 1}).n == 2**63 - 1
    assert code_of(lambda: parse(Wide, {"n": 2**63})) == "out_of_range"
