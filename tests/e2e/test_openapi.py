"""The OpenAPI document: complete, valid, and true of a real ``tutti serve`` (schemathesis).

* Every route under ``/api`` of the application is documented (a new route
  without an :class:`server.rest.openapi.Op` fails here), and every documented
  operation exists.
* The served document is a valid OpenAPI 3.1 document (openapi-spec-validator).
* schemathesis generates requests from the document against a real server,
  authenticated with a guest's token, and checks that no answer is a server
  error, that every answer's status, content type and body are the
  documented ones, and that operations needing a token refuse requests
  without one. Bounded: :data:`MAX_EXAMPLES` per operation (about a
  minute on two cores).
"""

from __future__ import annotations

import json
import os
import urllib.request

import hypothesis
import pytest
import schemathesis
from openapi_spec_validator import validate
from schemathesis.checks import ignored_auth, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.app import create_app
from server.config import Settings
from server.rest import openapi
from server.rest.openapi import OPERATIONS
from tests.conftest import FAST
from tests.servers import start_server

# More for a deeper hunt: SCHEMATHESIS_MAX_EXAMPLES=200 python -m pytest tests/e2e/test_openapi.py
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
# MIDI uploads are raw bytes, as schemathesis sends application/octet-stream.
schemathesis.serializer.alias("audio/midi", "application/octet-stream")
schemathesis.serializer.alias("audio/wav", "application/octet-stream")  # audio uploads too
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,  # an operation that needs a token refuses a request without one
]


def fetch(url: str, data: bytes | None = None, headers: dict | None = None) -> dict:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def guest_token(proc) -> str:
    guest = fetch(
        proc.url + "/api/auth/guest",
        json.dumps({"display_name": "schemathesis"}).encode(),
        {"Content-Type": "application/json"},
    )
    return guest["access_token"]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """A real server of this module's own, and a guest's bearer token on it."""
    proc = start_server(tmp_path_factory.mktemp("openapi"), *FAST)
    yield proc, guest_token(proc)
    proc.stop()


def test_every_api_route_is_documented(tmp_path):
    app = create_app(Settings(data_dir=str(tmp_path), dev=True))
    routed = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if route.method != "HEAD" and path is not None:
            routed.add((route.method, path))
    documented = {(op.method, op.path) for op in OPERATIONS}
    missing = sorted(r for r in routed if r[1].startswith("/api") and r not in documented)
    assert not missing, f"add these to server/rest/openapi.py OPERATIONS: {missing}"
    unrouted = sorted(documented - routed)
    assert not unrouted, f"documented but not routed: {unrouted}"


def test_served_document_is_valid_openapi_3_1(api):
    proc, _ = api
    doc = fetch(proc.url + "/api/openapi.json")
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises OpenAPIValidationError
    assert len(doc["paths"]) >= 30
    me = doc["paths"]["/api/auth/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}] and "401" in me["responses"]


# The same document the server serves (test_served_document_is_valid_openapi_3_1 checks
# that), loaded at collection: schemathesis' from_fixture loader reaches into a pytest
# private (Node._nodeid) that pytest 9.2 removed. Each case is sent to the real server.
schema = schemathesis.openapi.from_dict(json.loads(openapi.document()))


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
    # Generated cases only (valid and invalid, then shrunk): schemathesis' coverage
    # phase (the explicit phase) sends some 3000 boundary cases, minutes on 2 cores.
    phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink],
)
def test_api_conforms_to_its_document(case, api):
    proc, token = api
    if (case.method, case.path) == ("DELETE", "/api/users/me"):
        token = guest_token(proc)  # deactivating the shared guest would 401 the rest
    case.call_and_validate(
        base_url=proc.url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
    )


async def test_documented_answers_match_a_real_piece_and_session(api):
    """Answers schemathesis rarely reaches with random ids, checked on real data."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    from tests.music import chorale_midi
    from tests.play import connected, upload_piece

    proc, _ = api
    doc = fetch(proc.url + "/api/openapi.json")
    registry = Registry().with_resource(
        "urn:tutti", Resource.from_contents(doc, default_specification=DRAFT202012)
    )

    def check(body, operation: str, path: str, status: str = "200") -> None:
        answer = doc["paths"][path][operation]["responses"][status]
        schema = answer["content"]["application/json"]["schema"]
        # References inside the document, made absolute for the registry.
        schema = json.loads(json.dumps(schema).replace('"#/components/', '"urn:tutti#/components/'))
        Draft202012Validator(schema, registry=registry).validate(body)

    host = await connected(proc.url, "host")
    partner = await connected(proc.url, "partner")
    piece = await upload_piece(host, chorale_midi("bach/bwv66.6"), title="BWV 66.6")
    check(piece, "post", "/api/pieces", "201")
    check(await host.fetch_json("/api/pieces"), "get", "/api/pieces")
    check(await host.fetch_json(f"/api/pieces/{piece['id']}"), "get", "/api/pieces/{piece_id}")
    room_id = (await host.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"][
        "room_id"
    ]
    for client in (host, partner):
        await client.call("room:join", {"room_id": room_id, "role": "player"})
    await host.call("room:start", {"room_id": room_id})
    for i in range(8):
        note = {"type": "on", "pitch": 60 + i, "velocity": 80, "t": host.server_now()}
        await host.call("note", {"room_id": room_id, **note})
    session_id = (await host.call("room:end", {"room_id": room_id}))["session_id"]
    session = await host.fetch_json(f"/api/sessions/{session_id}")
    check(session, "get", "/api/sessions/{session_id}")
    check(await host.fetch_json("/api/practice/sessions"), "get", "/api/practice/sessions")
    check(await host.fetch_json("/api/sync/pull"), "get", "/api/sync/pull")
    for client in (host, partner):
        await client.disconnect()
