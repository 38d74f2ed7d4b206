"""A property test over the OpenAPI document: extreme parameters never get a 5xx.

For every ``GET`` operation of the served document, hypothesis draws values
at and past the ends of each query and path parameter — integers past 64
bits, negative, with 5000 digits; the first and last days of the calendar
(``0001-01-01``, ``9999-12-31``) and date-times at ±14:00; reversed
``from``/``to`` ranges; empty and very long strings — and sends them to a
real ``tutti serve`` with a guest's token. Every answer must be below 500,
and an error answer must be Tutti's JSON error body. Schemathesis
(``tests/e2e/test_openapi.py``) draws from the schemas; this draws from the
edges they leave out.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import hypothesis
import pytest
from hypothesis import strategies as st

from server.rest import openapi
from tests.conftest import FAST
from tests.servers import start_server

EXAMPLES = 50  # per operation: some 2000 requests in all

DOC = json.loads(openapi.document())
GETS = sorted(
    (path, op) for path, item in DOC["paths"].items() for method, op in item.items()
    if method == "get"
)  # fmt: skip

INTEGERS = [str(2**63), str(-(2**63) - 1), str(2**64), "-1", "0", "9" * 5000, "-" + "9" * 30]
DAYS = ["0001-01-01", "9999-12-31", "9999-12-30", "0000-00-00", "1899-12-31", "9998-12-31"]
MOMENTS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59Z"]
STRINGS = ["", "x" * 3000, "0", "-1", str(2**64), "9999-12-31", "%", "\u00e9\u0000"]
REVERSED = [
    ("9998-12-31", "1900-01-01"),
    ("2025-01-02", "2025-01-01"),
    ("9999-12-31", "0001-01-01"),
]


def _types(schema: dict) -> tuple[set[str], set[str]]:
    branches = schema.get("anyOf", [schema])
    return {b.get("type", "string") for b in branches}, {b.get("format", "") for b in branches}


def extreme(schema: dict) -> st.SearchStrategy[str]:
    """Values past the edges of a parameter of ``schema``, and some plainly bad ones."""
    types, formats = _types(schema)
    edges = []
    if "integer" in types or "number" in types:
        edges += INTEGERS
    if "date" in formats or "date-time" in formats:
        edges += DAYS + MOMENTS
    edges += [str(v) for v in schema.get("enum", [])]
    if not edges:
        return st.sampled_from(STRINGS)
    return st.one_of(st.sampled_from(edges), st.sampled_from(STRINGS))


def requests_for(path: str, op: dict) -> st.SearchStrategy[tuple[str, dict[str, str]]]:
    params = op.get("parameters", [])
    path_parts = {p["name"]: extreme(p["schema"]) for p in params if p["in"] == "path"}
    query = {p["name"]: extreme(p["schema"]) for p in params if p["in"] == "query"}
    names = set(query)

    @st.composite
    def draw(draw_one) -> tuple[str, dict[str, str]]:
        url = path
        for name, values in path_parts.items():
            url = url.replace("{" + name + "}", urllib.parse.quote(draw_one(values), safe=""))
        # Mostly one or two parameters at a time: a bad one must not hide another.
        picked = draw_one(st.lists(st.sampled_from(sorted(names)), max_size=2)) if names else []
        chosen = {n: draw_one(query[n]) for n in picked}
        if {"from", "to"} <= names and draw_one(st.booleans()):
            chosen["from"], chosen["to"] = draw_one(st.sampled_from(REVERSED))
        return url, chosen

    return draw()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    proc = start_server(tmp_path_factory.mktemp("extremes"), *FAST)
    body = json.dumps({"display_name": "extremes"}).encode()
    req = urllib.request.Request(
        proc.url + "/api/auth/guest", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        token = json.loads(resp.read())["access_token"]
    yield proc, token
    proc.stop()


def send(url: str, token: str) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers.get_content_type(), b""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read()


@pytest.mark.parametrize(("path", "op"), GETS, ids=[p for p, _ in GETS])
def test_extreme_parameters_never_get_a_server_error(api, path, op):
    proc, token = api

    @hypothesis.given(request=requests_for(path, op))
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
        database=None,
    )
    def check(request: tuple[str, dict[str, str]]) -> None:
        url, query = request
        full = proc.url + url + ("?" + urllib.parse.urlencode(query) if query else "")
        status, content_type, body = send(full, token)
        assert status < 500, (full[:300], status, body[:300])
        if status >= 400 and content_type == "application/json":
            error = json.loads(body)["error"]
            assert isinstance(error["code"], str) and isinstance(error["message"], str)

    check()
