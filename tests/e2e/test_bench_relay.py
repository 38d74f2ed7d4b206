"""The relay benchmark at a tiny size, so it does not rot (no timed assertions)."""

from __future__ import annotations

import pytest

from loadtests.bench import relay as bench_relay
from loadtests.bench import servers as bench_servers


@pytest.mark.timeout(600)
def test_relay_benchmark_tiny_runs_without_errors_or_lost_notes(capsys):
    servers = "tutti,bare-python,raw-aiohttp" + ("" if bench_servers.node_missing() else ",node")
    results = bench_relay.main(
        [
            "--servers", servers,
            "--rooms", "3",
            "--rate", "10",
            "--seconds", "2",
            "--drain", "5",
            "--saturation-rooms", "2",
            "--saturation-steps", "2",
            "--saturation-seconds", "2",
            "--fanout-spectators", "6",
            "--cluster-rooms", "2",
            "--idle-connections", "10",
            "--settle", "0.5",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "| case | server |" in out
    seen = {(case.split()[0], row["server"]) for case, row in results}
    for server in servers.split(","):
        for case in ("duet", "saturation", "fan-out", "idle"):
            assert (case, server) in seen
    assert ("2", "tutti×2") in seen  # the cross-process case
    for case, row in results:
        assert row["lost"] == 0, (case, row)
        assert row["refused"] == 0, (case, row["error_codes"])
        if not case.startswith("idle"):
            assert row["delivered_per_s"] > 0, (case, row)
            assert row.get("unacked", 0) == 0, (case, row)
        assert row["connections"] > 0
