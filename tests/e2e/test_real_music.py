"""Real music through a real server: Bach chorale BWV 66.6 as an ensemble and a duet.

Every player plays with ±15 ms uniform onset jitter; on top, known deviations
are injected (notes dropped, wrong pitches, a player 8 % slower than the room)
and the results must count them exactly. The saved practice logs must equal
the results sent in ``room:finished``.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from rooms.piece import load_midi
from server.clients.bot import Style
from tests.music import chorale_midi
from tests.play import play_session

pytestmark = pytest.mark.realtime

TEMPO = 180.0  # BPM: real time, but short enough for a test


def saved_results(database, session_id: str) -> dict[str, dict]:
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT user_id, result, notes_played, notes_correct, accuracy_percentage, complete "
            "FROM practice_logs WHERE session_id = ?",
            (session_id,),
        ).fetchall()
    out = {}
    for user_id, result, played, correct, accuracy, complete in rows:
        result = json.loads(result)
        assert played == result["notes_played"]
        assert correct == result["notes_matched"]
        assert accuracy == pytest.approx(result["accuracy"] * 100)
        assert bool(complete) == result["complete"]
        out[user_id] = result
    return out


def check_player(result: dict, *, dropped: int = 0, wrong: int = 0) -> None:
    expected = result["notes_expected"]
    assert result["missed"] == dropped + wrong
    assert result["wrong_pitch"] == wrong
    assert result["extra"] == 0
    assert result["notes_matched"] == expected - dropped - wrong
    assert result["notes_played"] == expected - dropped
    assert result["judgements"]["miss"] == dropped + wrong
    assert result["complete"] is True
    assert result["accuracy"] == pytest.approx(result["notes_matched"] / expected, abs=1e-6)


async def test_four_player_ensemble_plays_bwv66_6(server):
    midi = chorale_midi("bach/bwv66.6")
    styles = {
        "Soprano": Style(jitter_ms=15, dropped=3, seed=11),
        "Alto": Style(jitter_ms=15, wrong=2, seed=12),
        "Tenor": Style(jitter_ms=15, tempo_ratio=0.92, seed=13),  # 8 % slower than the room
        "Bass": Style(jitter_ms=15, seed=14),
    }
    finished, players, mistakes, host, piece = await play_session(
        server.url, midi, mode="ensemble", styles=styles, tempo_bpm=TEMPO, title="BWV 66.6 ensemble"
    )
    results = finished["results"]
    by_part = {results[c.user["id"]]["part"]: results[c.user["id"]] for c in players.values()}
    assert set(by_part) == set(styles)
    for part, result in by_part.items():
        assert result["notes_expected"] == len(piece.part(part).notes)

    check_player(by_part["Soprano"], dropped=3)
    check_player(by_part["Alto"], wrong=2)
    check_player(by_part["Tenor"])  # slower all along, yet every note matched
    check_player(by_part["Bass"])

    # On-time players: jitter ±15 ms is within "perfect" (≤ 25 ms) and mir_eval's 50 ms.
    for part in ("Soprano", "Bass"):
        result = by_part[part]
        assert result["judgements"]["perfect"] == result["notes_matched"]
        assert abs(result["onset_mean_ms"]) < 10
        assert result["onset_std_ms"] < 15
        assert result["f1"] > 0.95
        assert result["tempo_bpm_played"] == pytest.approx(TEMPO, rel=0.01)
    # The slow player drifts away from the grid: late on average, tempo ~8 % lower.
    tenor = by_part["Tenor"]
    assert tenor["tempo_bpm_played"] == pytest.approx(TEMPO * 0.92, rel=0.02)
    assert tenor["onset_mean_ms"] > 100
    assert tenor["recall"] < by_part["Bass"]["recall"]
    # Per-note details: wrong pitches are recorded at the notes they replaced.
    alto_wrong = {n["played_pitch"] for n in by_part["Alto"]["notes"] if "played_pitch" in n}
    assert alto_wrong == {pitch for _, pitch in mistakes["Alto"].wrong}

    assert finished["asynchrony_ms"] is not None and finished["asynchrony_ms"] > 0
    assert by_part["Tenor"]["asynchrony_ms"] > by_part["Bass"]["asynchrony_ms"]

    # Live scores reached the room while playing.
    updated = {u["user_id"] for u in host.received["score:update"]}
    assert updated == {c.user["id"] for c in players.values()}
    # Their marks (what the page colours): the Bass's last mark per note is its judgement.
    bass_id = players["Bass"].user["id"]
    marks = {}
    for update in host.received["score:update"]:
        if update["user_id"] == bass_id:
            marks.update((i, mark) for i, mark in update["marks"])
    bass_notes = by_part["Bass"]["notes"]
    assert marks and all(bass_notes[i]["judgement"] == mark for i, mark in marks.items())
    # Partners heard each other's notes, numbered in one per-room sequence.
    heard = players["Bass"].received
    bass_heard = list(heard["note"]) + [
        {**e, "part": m["part"]} for m in heard["notes"] for e in m["events"]
    ]
    assert {e["part"] for e in bass_heard} == {"Soprano", "Alto", "Tenor"}
    assert len(bass_heard) == sum(2 * r["notes_played"] for p, r in by_part.items() if p != "Bass")
    seqs = sorted(e["seq"] for e in bass_heard)
    assert len(seqs) == len(set(seqs))

    # Saved: the SQLite logs hold exactly what room:finished sent, and the REST API agrees.
    assert saved_results(server.database, finished["session_id"]) == results
    session = await host.fetch_json(f"/api/sessions/{finished['session_id']}")
    assert session["results"] == results
    assert session["mode"] == "ensemble"
    recording = load_midi(
        await host.fetch_bytes(f"/api/sessions/{finished['session_id']}/recording.mid")
    )
    assert sorted(len(p.notes) for p in recording.parts) == sorted(
        r["notes_played"] for r in results.values()
    )
    for client in [host, *players.values()]:
        await client.disconnect()


async def test_soprano_bass_duet_with_a_slow_partner(server):
    midi = chorale_midi("bach/bwv66.6")
    styles = {
        "Soprano": Style(jitter_ms=15, tempo_ratio=0.92, dropped=3, seed=21),
        "Bass": Style(jitter_ms=15, wrong=2, seed=22),
    }
    finished, players, _, host, piece = await play_session(
        server.url, midi, mode="duet", styles=styles, tempo_bpm=TEMPO, title="BWV 66.6 duet"
    )
    results = finished["results"]
    soprano = results[players["Soprano"].user["id"]]
    bass = results[players["Bass"].user["id"]]
    check_player(soprano, dropped=3)
    check_player(bass, wrong=2)
    assert soprano["tempo_bpm_played"] == pytest.approx(TEMPO * 0.92, rel=0.02)
    assert finished["asynchrony_ms"] > 50  # an 8 % slower partner drifts apart
    assert saved_results(server.database, finished["session_id"]) == results
    for client in [host, *players.values()]:
        await client.disconnect()


def test_chorale_loads_with_four_parts():
    piece = load_midi(chorale_midi("bach/bwv66.6"))
    assert piece.part_names == ["Soprano", "Alto", "Tenor", "Bass"]
