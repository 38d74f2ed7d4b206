"""Progress: the pure rules, and a real server whose progress follows finished rooms,
synced and REST logs — streaks in the user's own time zone (UTC−10, UTC+13, DST),
achievements unlocked once, per-piece and per-instrument progress, A/B scoping
and bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from rooms import progress as rules
from server.clients.bot import Style
from tests.music import chorale_midi
from tests.play import play_session
from tests.progress_helpers import Guest, iso

# --------------------------------------------------------------------------- pure rules


def test_levels_follow_the_documented_formula():
    assert [rules.xp_for_level(n) for n in (1, 2, 3, 4, 5, 10)] == [0, 100, 300, 600, 1000, 4500]
    assert rules.level_for_xp(0) == 1
    assert rules.level_for_xp(99.9) == 1
    assert rules.level_for_xp(100) == 2
    assert rules.level_for_xp(4499) == 9
    assert rules.level_for_xp(4500) == 10
    for xp in range(0, 20000, 7):
        level = rules.level_for_xp(xp)
        assert rules.xp_for_level(level) <= xp < rules.xp_for_level(level + 1)
    info = rules.level_info(350.7)
    assert info == {
        "xp": 350,
        "level": 3,
        "level_xp": 300,
        "next_level_xp": 600,
        "xp_into_level": 50,
        "xp_to_next_level": 250,
    }


def test_log_xp():
    assert rules.log_xp(600, room=False, accuracy_percentage=None) == 10
    assert rules.log_xp(10 * 3600, room=False, accuracy_percentage=None) == 120  # capped
    assert rules.log_xp(120, room=True, accuracy_percentage=90) == 2 + 10 + 9


def test_streak_runs():
    d = date(2025, 5, 10)
    days = [d - timedelta(days=i) for i in (0, 1, 2, 5, 6, 7, 8)]
    s = rules.streaks(days, today=d)
    assert (s.current, s.longest, s.last_day, s.run_at_last) == (3, 4, d, 3)
    # Today not practised yet: the streak ending yesterday still counts.
    assert rules.streaks(days, today=d + timedelta(days=1)).current == 3
    assert rules.streaks(days, today=d + timedelta(days=2)).current == 0
    assert rules.streaks([], today=d).current == 0


def test_achievement_conditions():
    assert rules.unlocked(rules.Stats()) == []
    stats = rules.Stats(
        sessions=100,
        duets=1,
        total_seconds=36_000,
        longest_streak=7,
        best_piece_accuracy=95.0,
        pieces=10,
        level=5,
    )
    assert set(rules.unlocked(stats)) == {
        "first_session",
        "first_duet",
        "streak_7",
        "sessions_100",
        "hours_10",
        "accuracy_95",
        "pieces_10",
        "level_5",
    }
    assert "accuracy_95" not in rules.unlocked(rules.Stats(best_piece_accuracy=94.9))


def test_least_squares_slope():
    assert rules.least_squares_slope([1, 2, 3], [60, 70, 80]) == pytest.approx(10)
    assert rules.least_squares_slope([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert rules.least_squares_slope([1], [5]) is None


# --------------------------------------------------------------------------- time zones


def local(tz: str, day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), ZoneInfo(tz))


async def test_streak_in_utc_minus_10(server):
    """Honolulu (UTC−10): evening practice falls on the next UTC day."""
    tz = "Pacific/Honolulu"
    user = await Guest.login(server.url, "Kai")
    await user.ok("PUT", "/api/users/me/time-zone", {"time_zone": tz})
    today = datetime.now(ZoneInfo(tz)).date()
    # Local D−2 08:00 (18:00 UTC, D−2) and D−1 20:00 (06:00 UTC on D): consecutive
    # local days, but UTC days D−2 and D — no streak in UTC.
    await user.log(local(tz, today - timedelta(days=2), 8))
    await user.log(local(tz, today - timedelta(days=1), 20))
    streaks = await user.get("/api/progress/streaks")
    assert streaks["time_zone"] == tz
    assert streaks["today"] == today.isoformat()
    assert (streaks["current"], streaks["longest"]) == (2, 2)
    assert streaks["last_practice_day"] == (today - timedelta(days=1)).isoformat()
    in_utc = await user.get("/api/progress/streaks", tz="UTC")
    assert in_utc["longest"] == 1  # what a UTC count would wrongly say
    overview = await user.get("/api/progress/overview")
    assert overview["streak"]["current"] == 2 and overview["streak"]["longest"] == 2


async def test_streak_in_utc_plus_13(server):
    """Tonga (UTC+13): a local day spans two UTC days."""
    tz = "Pacific/Tongatapu"
    user = await Guest.login(server.url, "Sione")
    await user.ok("PUT", "/api/users/me/time-zone", {"time_zone": tz})
    today = datetime.now(ZoneInfo(tz)).date()
    d1, d2 = today - timedelta(days=1), today - timedelta(days=2)
    # Local D−2 12:00 (UTC D−3 23:00), D−1 00:30 (UTC D−2 11:30), D−1 23:30 (UTC D−1 10:30):
    # two local days, three UTC days.
    for start in (local(tz, d2, 12), local(tz, d1, 0, 30), local(tz, d1, 23, 30)):
        await user.log(start)
    streaks = await user.get("/api/progress/streaks")
    assert (streaks["current"], streaks["longest"]) == (2, 2)
    assert streaks["recent_days"] == [d2.isoformat(), d1.isoformat()]
    assert (await user.get("/api/progress/streaks", tz="UTC"))["longest"] == 3
    # Practice time per local day agrees.
    per_day = await user.get("/api/analytics/practice-time", **{"from": d2.isoformat()})
    sessions = {d["date"]: d["sessions"] for d in per_day["by_day"]}
    assert sessions[d2.isoformat()] == 1 and sessions[d1.isoformat()] == 2


async def test_streak_across_daylight_saving_time(server):
    """New York, spring forward on 2025-03-09: 00:30 EDT on 03-10 is 04:30 UTC — still
    the 9th at a fixed UTC−5."""
    tz = "America/New_York"
    user = await Guest.login(server.url, "Nina")
    await user.ok("PUT", "/api/users/me/time-zone", {"time_zone": tz})
    for start in (
        local(tz, date(2025, 3, 8), 12),
        local(tz, date(2025, 3, 9), 12),
        local(tz, date(2025, 3, 10), 0, 30),
    ):
        await user.log(start)
    assert (await user.get("/api/progress/streaks"))["longest"] == 3
    assert (await user.get("/api/progress/streaks", tz="Etc/GMT+5"))["longest"] == 2
    per_day = await user.get(
        "/api/analytics/practice-time", **{"from": "2025-03-08", "to": "2025-03-10"}
    )
    assert [d["sessions"] for d in per_day["by_day"]] == [1, 1, 1]
    assert per_day["by_week"][0]["week"] == "2025-W10"
    # Changing the zone recomputes the stored streak.
    await user.ok("PUT", "/api/users/me/time-zone", {"time_zone": "Etc/GMT+5"})
    assert (await user.get("/api/progress/overview"))["streak"]["longest"] == 2


# --------------------------------------------------------------------------- logs


async def test_rest_and_sync_logs_update_progress_and_achievements(server):
    user = await Guest.login(server.url, "Ada")
    empty = await user.get("/api/progress/overview")
    assert (empty["xp"], empty["level"], empty["sessions"]) == (0, 1, 0)
    assert (await user.get("/api/progress/achievements"))["unlocked"] == 0

    now = datetime.now(UTC)
    await user.log(now - timedelta(days=1), 30 * 60, instrument="Piano", activity_type="scales")
    overview = await user.get("/api/progress/overview")
    assert (overview["xp"], overview["sessions"]) == (30, 1)
    achievements = await user.get("/api/progress/achievements")
    first = {a["code"]: a for a in achievements["achievements"]}["first_session"]
    assert first["unlocked"] and first["unlocked_at"]

    # Seven days in a row, pushed through sync by a device: 7-day streak, level 2+.
    logs = [
        {
            "activity_type": "repertoire",
            "start_time": iso(now - timedelta(days=i)),
            "duration_seconds": 20 * 60,
            "instrument": "piano",
            "work_title": "Minuet in G",
            "tempo_practiced": 80.0 + i,
        }
        for i in range(7)
    ]
    await user.push(logs)
    overview = await user.get("/api/progress/overview")
    assert overview["sessions"] == 8
    assert overview["xp"] == 30 + 7 * 20
    assert overview["level"] == 2
    assert overview["streak"]["longest"] >= 7
    got = {a["code"]: a for a in (await user.get("/api/progress/achievements"))["achievements"]}
    assert got["streak_7"]["unlocked"]
    assert got["first_session"]["unlocked_at"] == first["unlocked_at"]  # written once
    assert not got["first_duet"]["unlocked"]

    # Per instrument (case-insensitive) and skill area.
    piano = await user.get("/api/progress/instrument/PIANO")
    assert piano["instrument"] == "piano" and piano["sessions"] == 8
    areas = {a["skill_area"]: a for a in piano["by_skill_area"]}
    assert areas["technique"]["sessions"] == 1 and areas["repertoire"]["sessions"] == 7
    assert areas["repertoire"]["xp"] == 140
    minuet = next(p for p in piano["pieces"] if p["work_title"] == "Minuet in G")
    assert minuet["times_practised"] == 7 and minuet["best_tempo_bpm"] == 86.0
    stats = await user.get("/api/progress/statistics")
    assert stats["sessions"] == 8 and stats["total_seconds"] == pytest.approx(170 * 60)
    assert sum(stats["by_weekday_seconds"]) == pytest.approx(170 * 60)
    assert sum(stats["by_hour_seconds"]) == pytest.approx(170 * 60)

    # A deleted log takes its XP away; the achievement stays.
    logs_list = await user.get("/api/practice/logs", activity_type="scales")
    await user.ok("DELETE", f"/api/practice/logs/{logs_list['logs'][0]['id']}", status=204)
    overview = await user.get("/api/progress/overview")
    assert (overview["xp"], overview["sessions"]) == (140, 7)
    assert (await user.get("/api/progress/achievements"))["unlocked"] == got_unlocked(got)


def got_unlocked(got: dict) -> int:
    return sum(1 for a in got.values() if a["unlocked"])


async def test_users_see_only_their_own_progress(server):
    a = await Guest.login(server.url, "A")
    b = await Guest.login(server.url, "B")
    await a.log(datetime.now(UTC), 3600, instrument="cello", work_title="Suite 1")
    assert (await a.get("/api/progress/overview"))["sessions"] == 1
    overview = await b.get("/api/progress/overview")
    assert (overview["sessions"], overview["xp"], overview["recent_pieces"]) == (0, 0, [])
    assert (await b.get("/api/progress/streaks"))["days_practised"] == 0
    assert (await b.get("/api/progress/statistics"))["by_instrument"] == []
    assert (await b.get("/api/progress/pieces"))["pieces"] == []
    status, body = await b.call("GET", "/api/progress/instrument/cello")
    assert status == 404 and body["error"]["code"] == "unknown_instrument"
    assert (await b.get("/api/analytics/export"))["rows"] == []
    assert (await b.get("/api/analytics/repertoire"))["pieces"] == []


async def test_bad_input_is_refused(server):
    user = await Guest.login(server.url, "Bad")
    cases = [
        ("PUT", "/api/users/me/time-zone", {"time_zone": "Mars/Olympus"}, 400, "invalid_time_zone"),
        (
            "PUT",
            "/api/users/me/time-zone",
            {"time_zone": "../etc/passwd"},
            400,
            "invalid_time_zone",
        ),
        ("PUT", "/api/users/me/time-zone", {"time_zone": 5}, 400, "wrong_type"),
        ("PUT", "/api/users/me/time-zone", {"zone": "UTC"}, 400, "missing_field"),
        ("GET", "/api/progress/streaks?tz=Not/AZone", None, 400, "invalid_time_zone"),
        ("GET", "/api/progress/overview?tz=", None, 200, None),
        ("GET", "/api/progress/instrument/theremin", None, 404, "unknown_instrument"),
        ("GET", "/api/progress/instrument/" + "x" * 101, None, 400, "invalid_value"),
        ("GET", "/api/progress/statistics?from=2025-02-30", None, 400, "invalid_date"),
        (
            "GET",
            "/api/progress/statistics?from=2025-05-02&to=2025-05-01",
            None,
            400,
            "invalid_range",
        ),
        ("PUT", "/api/progress/pieces/nope", {"starred": True}, 404, "unknown_piece"),
        ("PUT", "/api/progress/pieces/nope", {"starred": "yes"}, 400, "wrong_type"),
    ]
    for method, path, body, status, code in cases:
        got, data = await user.call(method, path, body)
        assert got == status, (path, got, data)
        if code:
            assert data["error"]["code"] == code, (path, data)
    assert (await user.get("/api/users/me/time-zone"))["time_zone"] == "UTC"  # unchanged
    anonymous = Guest(server.url, "", {"id": "-"})
    for path in ("/api/progress/overview", "/api/progress/achievements"):
        assert (await anonymous.call("GET", path))[0] == 401


# --------------------------------------------------------------------------- a real duet


async def test_a_finished_duet_updates_both_players_progress(server):
    midi = chorale_midi("bach/bwv66.6")
    styles = {
        "Soprano": Style(jitter_ms=8, seed=31),
        "Bass": Style(jitter_ms=8, wrong=2, seed=32),
    }
    finished, players, _, host, _piece = await play_session(
        server.url, midi, mode="duet", styles=styles, tempo_bpm=300.0, title="Progress duet"
    )
    try:
        for part, client in players.items():
            me = Guest(server.url, client.token, client.user)
            result = finished["results"][me.id]
            overview = await me.get("/api/progress/overview")
            assert overview["sessions"] == 1 and overview["duets"] == 1
            expected_xp = rules.log_xp(
                overview["total_seconds"], room=True, accuracy_percentage=result["accuracy"] * 100
            )
            assert overview["xp"] == int(expected_xp)
            got = {
                a["code"]: a for a in (await me.get("/api/progress/achievements"))["achievements"]
            }
            assert got["first_duet"]["unlocked"] and got["first_session"]["unlocked"]
            assert got["accuracy_95"]["unlocked"] == (result["accuracy"] >= 0.95), part
            piece = (await me.get("/api/progress/pieces"))["pieces"][0]
            assert piece["work_title"] == "Progress duet"
            assert piece["times_practised"] == 1 and piece["completed"] is True
            assert piece["best_accuracy"] == pytest.approx(result["accuracy"] * 100, abs=0.01)
            starred = await me.ok(
                "PUT", f"/api/progress/pieces/{piece['piece_id']}", {"starred": True}
            )
            assert starred["starred"] is True and starred["times_practised"] == 1
            areas = {a["skill_area"]: a for a in overview["skill_areas"]}
            assert areas["ensemble"]["sessions"] == 1
            trend = (await me.get("/api/analytics/improvement"))["pieces"][0]
            assert trend["accuracy"]["n"] == 1
            assert trend["timing_deviation_ms"]["mean"] == pytest.approx(
                result["onset_std_ms"], abs=0.01
            )
        # The host only listened: no progress.
        spectator = Guest(server.url, host.token, host.user)
        assert (await spectator.get("/api/progress/overview"))["sessions"] == 0
    finally:
        for client in [host, *players.values()]:
            await client.disconnect()
