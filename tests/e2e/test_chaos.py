"""The chaos run (``python -m loadtests.bench.chaos``) at a small size: two processes, Redis
and one SQLite database, with SIGKILL, SIGTERM, a Redis restart, the database held and
client drops injected on a seeded schedule while duets play; every invariant holds."""

from __future__ import annotations

import pytest

from loadtests.bench import chaos

pytestmark = pytest.mark.realtime


@pytest.mark.timeout(600)
def test_chaos_keeps_every_session_and_every_count(capsys):
    figures = chaos.main(
        ["--rooms", "4", "--seconds", "45", "--seed", "7", "--db-pause", "3,8", "--gap", "2,5"]
    )
    print(capsys.readouterr().out)
    assert sum(figures["faults"].values()) >= 4
    assert figures["started"] == figures["rooms"]
    assert figures["problems"] == []
    assert figures["saved"] == figures["started"]
    assert figures["lost"] == 0
    assert figures["duplicated"] == 0
    assert figures["mismatched"] == 0
    assert figures["status_5xx"] == 0
    assert figures["status_500"] == 0
    assert figures["unacked"] == 0
    assert figures["ghosts"] == 0
    assert figures["spooled"] == 0
