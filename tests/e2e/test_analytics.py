"""Analytics against a real server: practice time by day/week/activity in the user's
zone, repertoire, improvement trends, CSV/JSON export, the PDF report (parsed with
pypdf), A/B scoping and bad input."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pypdf
import pytest

from server.services.analytics_export import EXPORT_COLUMNS
from tests.conftest import FAST
from tests.progress_helpers import Guest
from tests.servers import start_server

TZ = "Europe/Berlin"


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), ZoneInfo(TZ))


async def seeded(url: str, name: str = "Clara") -> tuple[Guest, date]:
    """A Berlin user with logs on three local days of last week (one at 00:30, on the
    previous UTC day) and a tempo trend on one piece."""
    user = await Guest.login(url, name)
    await user.ok("PUT", "/api/users/me/time-zone", {"time_zone": TZ})
    today = datetime.now(ZoneInfo(TZ)).date()
    d = today - timedelta(days=3)
    await user.log(at(d - timedelta(days=2), 18), 1800, activity_type="scales")
    await user.log(at(d - timedelta(days=1), 0, 30), 600, activity_type="sight_reading")
    for i, tempo in enumerate((60.0, 70.0, 80.0)):
        await user.log(
            at(d, 9 + i),
            1200,
            activity_type="repertoire",
            work_title="Arabesque No. 1",
            tempo_practiced=tempo,
            instrument="piano",
        )
    return user, d


async def test_practice_time_by_day_week_and_activity(server):
    user, d = await seeded(server.url)
    first = d - timedelta(days=2)
    answer = await user.get(
        "/api/analytics/practice-time", **{"from": first.isoformat(), "to": d.isoformat()}
    )
    assert answer["time_zone"] == TZ
    assert [x["date"] for x in answer["by_day"]] == [
        (first + timedelta(days=i)).isoformat() for i in range(3)
    ]
    assert [x["seconds"] for x in answer["by_day"]] == [1800, 600, 3600]
    assert [x["sessions"] for x in answer["by_day"]] == [1, 1, 3]
    assert answer["total_seconds"] == 6000 and answer["sessions"] == 5
    assert sum(w["seconds"] for w in answer["by_week"]) == 6000
    for w in answer["by_week"]:
        assert date.fromisoformat(w["start"]).weekday() == 0
    by_activity = {a["activity_type"]: a["seconds"] for a in answer["by_activity"]}
    assert by_activity == {"repertoire": 3600, "scales": 1800, "sight_reading": 600}
    # The same logs counted in UTC put the 00:30 log on the day before.
    in_utc = await user.get(
        "/api/analytics/practice-time",
        tz="UTC",
        **{"from": (first - timedelta(days=1)).isoformat(), "to": d.isoformat()},
    )
    assert [x["sessions"] for x in in_utc["by_day"]] == [0, 2, 0, 3]
    # Default: the last 30 days, every day listed.
    default = await user.get("/api/analytics/practice-time")
    assert len(default["by_day"]) == 30 and default["total_seconds"] == 6000


async def test_repertoire_and_improvement(server):
    user, _ = await seeded(server.url, "Debussy fan")
    pieces = (await user.get("/api/analytics/repertoire"))["pieces"]
    arabesque = next(p for p in pieces if p["work_title"] == "Arabesque No. 1")
    assert arabesque["times_practised"] == 3
    assert arabesque["total_seconds"] == 3600
    assert arabesque["best_tempo_bpm"] == 80.0
    assert arabesque["completed"] is False and arabesque["starred"] is False
    trends = (await user.get("/api/analytics/improvement"))["pieces"]
    trend = next(t for t in trends if t["work_title"] == "Arabesque No. 1")
    assert trend["sessions"] == 3
    assert trend["tempo_bpm"] == {"n": 3, "mean": 70.0, "slope_per_session": 10.0}
    assert trend["accuracy"] == {"n": 0, "mean": None, "slope_per_session": None}


async def test_export_csv_and_json(server):
    user, d = await seeded(server.url, "Exporter")
    data = await user.get("/api/analytics/export", format="json")
    assert data["columns"] == list(EXPORT_COLUMNS)
    logs = [dict(zip(data["columns"], row, strict=True)) for row in data["rows"]]
    assert len(logs) == 5
    assert [log["tempo_practiced"] for log in logs if log["tempo_practiced"]] == [
        60.0,
        70.0,
        80.0,
    ]
    status, raw = await user.call("GET", "/api/analytics/export", params={"format": "csv"})
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    assert len(rows) == 5 and list(rows[0]) == list(EXPORT_COLUMNS)
    assert {r["activity_type"] for r in rows} == {"scales", "sight_reading", "repertoire"}
    assert datetime.fromisoformat(rows[0]["start_time"]).tzinfo is not None
    assert {r["complete"] for r in rows} == {"true"} and {r["end_time"] for r in rows} == {""}
    assert {log["complete"] for log in logs} == {True}
    assert [r["id"] for r in rows] == [log["id"] for log in logs]
    last_day = await user.get("/api/analytics/export", format="csv", **{"from": d.isoformat()})
    assert last_day.count(b"Arabesque No. 1") == 3 and b"scales" not in last_day
    other = await Guest.login(server.url, "Nobody")
    status, raw = await other.call("GET", "/api/analytics/export", params={"format": "csv"})
    assert raw.decode().strip().splitlines() == [",".join(EXPORT_COLUMNS)]


async def test_pdf_report(server):
    user, d = await seeded(server.url, "Report Reader")
    status, pdf = await user.call("GET", "/api/analytics/report.pdf")
    assert status == 200 and pdf.startswith(b"%PDF")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 4
    assert reader.metadata.title == "Tutti practice report"
    text = [page.extract_text() for page in reader.pages]
    assert "Tutti practice report" in text[0] and "Report Reader" in text[0]
    assert TZ in text[0] and "1.7 h in 5 sessions" in text[0]
    assert "Arabesque No. 1: 3 sessions" in text[0]
    assert "Practice time per day" in text[1] and "Practice time per week" in text[1]
    assert "Practice time by activity" in text[2] and "sight_reading" in text[2]
    assert "Accuracy per session" in text[3]
    status, pdf = await user.call(
        "GET", "/api/analytics/report.pdf", params={"from": "2020-01-01", "to": "2020-01-31"}
    )
    assert status == 200
    page0 = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "0.0 h in 0 sessions" in page0


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/api/analytics/export", {"format": "xml"}, 400, "invalid_format"),
        ("/api/analytics/practice-time", {"from": "2025-1-1"}, 400, "invalid_date"),
        ("/api/analytics/practice-time", {"to": "yesterday"}, 400, "invalid_date"),
        (
            "/api/analytics/practice-time",
            {"from": "2025-05-02", "to": "2025-05-01"},
            400,
            "invalid_range",
        ),
        (
            "/api/analytics/practice-time",
            {"from": "2000-01-01", "to": "2025-01-01"},
            400,
            "invalid_range",
        ),
        ("/api/analytics/improvement", {"tz": "Europe/Atlantis"}, 400, "invalid_time_zone"),
        ("/api/analytics/improvement", {"piece_id": "x" * 65}, 400, "invalid_value"),
        (
            "/api/analytics/repertoire",
            {"from": "2025-05-02", "to": "2025-05-01"},
            400,
            "invalid_range",
        ),
        ("/api/analytics/report.pdf", {"tz": "UTC+3"}, 400, "invalid_time_zone"),
    ],
)
async def test_bad_analytics_input(server, path, params, status, code):
    user = await Guest.login(server.url, "Bad input")
    got, data = await user.call("GET", path, params=params)
    assert got == status, data
    assert data["error"]["code"] == code


async def test_analytics_need_a_token(server):
    anonymous = Guest(server.url, "", {"id": "-"})
    for path in (
        "/api/analytics/practice-time",
        "/api/analytics/export",
        "/api/analytics/report.pdf",
    ):
        assert (await anonymous.call("GET", path))[0] == 401


async def test_users_see_only_their_own_analytics(server):
    a, d = await seeded(server.url, "A")
    b = await Guest.login(server.url, "B")
    window = {"from": (d - timedelta(days=5)).isoformat(), "to": d.isoformat()}
    assert (await b.get("/api/analytics/practice-time", **window))["total_seconds"] == 0
    assert (await b.get("/api/analytics/improvement"))["pieces"] == []
    assert (await a.get("/api/analytics/practice-time", **window))["total_seconds"] == 6000


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="module")
def pg_server(postgres, tmp_path_factory):
    """A ``tutti serve`` on PostgreSQL: the same SQL (local days, windows, JSON) there."""
    url = postgres.create_database(f"analytics_{uuid.uuid4().hex[:12]}")
    proc = start_server(tmp_path_factory.mktemp("pg-data"), *FAST, "--database-url", url)
    yield proc
    proc.stop()


async def test_progress_and_analytics_on_postgresql(pg_server):
    await test_practice_time_by_day_week_and_activity(pg_server)
    await test_repertoire_and_improvement(pg_server)
    await test_export_csv_and_json(pg_server)
    await test_pdf_report(pg_server)
    user, _ = await seeded(pg_server.url, "Pg")
    overview = await user.get("/api/progress/overview")
    assert overview["sessions"] == 5 and overview["xp"] == 100
    stats = await user.get("/api/progress/statistics")
    assert sum(stats["by_hour_seconds"]) == 6000 and stats["days_practised"] == 3
    assert (await user.get("/api/progress/instrument/Piano"))["sessions"] == 3
    assert (await user.get("/api/progress/streaks"))["longest"] == 3


async def test_csv_export_quotes_text_and_matches_json(server):
    user = await Guest.login(server.url, "Quoter")
    await user.log(
        datetime(2025, 5, 1, 18, 0, tzinfo=ZoneInfo("UTC")),
        1234.5,
        notes='slow, then "faster"\nsecond line',
        focus_areas=["tone", "bow; arm"],
        mood="happy",
        work_title='Étude "Op. 10", No. 3',
        tempo_practiced=72.25,
        self_rating=4,
    )
    status, raw = await user.call("GET", "/api/analytics/export", params={"format": "csv"})
    assert status == 200
    (row,) = list(csv.DictReader(io.StringIO(raw.decode(), newline="")))
    data = await user.get("/api/analytics/export")
    (log,) = [dict(zip(data["columns"], r, strict=True)) for r in data["rows"]]
    assert row["notes"] == log["notes"] == 'slow, then "faster"\nsecond line'
    assert row["work_title"] == log["work_title"] == 'Étude "Op. 10", No. 3'
    assert row["focus_areas"] == "tone;bow; arm" and log["focus_areas"] == ["tone", "bow; arm"]
    assert float(row["duration_seconds"]) == log["duration_seconds"] == 1234.5
    assert float(row["tempo_practiced"]) == 72.25 and row["self_rating"] == "4"
    assert row["start_time"] == log["start_time"]
    assert datetime.fromisoformat(row["start_time"]) == datetime(
        2025, 5, 1, 18, tzinfo=ZoneInfo("UTC")
    )
    assert row["end_time"] == "" and log["end_time"] is None
    assert row["complete"] == "true" and log["complete"] is True
