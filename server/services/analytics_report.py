"""The PDF practice report, drawn with matplotlib's PDF backend (``PdfPages``).

Four A4 pages: (1) summary — who, the range and time zone, total time,
sessions, days practised, streaks, XP and level; (2) practice minutes per
day and per ISO week (bar charts); (3) minutes by activity (horizontal
bars); (4) accuracy per session of the five most practised pieces (lines),
with their least-squares trends.

Pure and synchronous: the REST handler runs :func:`render` in a worker
thread. Uses matplotlib's object API only (no ``pyplot`` global state), so
two reports may render at once.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

A4 = (8.27, 11.69)  # inches
TITLE = "Tutti practice report"


@dataclass(frozen=True)
class ReportData:
    display_name: str
    time_zone: str
    start: date
    end: date
    practice: dict[str, Any]  # the practice-time answer
    pieces: list[dict[str, Any]]  # improvement entries of the most practised pieces
    accuracy_series: dict[str, list[float]]  # piece_key → accuracy per session, %
    streak: dict[str, Any]
    xp: int
    level: int


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _summary(data: ReportData) -> Figure:
    fig = Figure(figsize=A4)
    p = data.practice
    lines = [
        (TITLE, 20, "bold"),
        (f"{data.display_name} — {data.start.isoformat()} to {data.end.isoformat()}", 12, None),
        (f"Time zone: {data.time_zone}", 10, None),
        ("", 10, None),
        (f"Practice time: {_hours(p['total_seconds'])} in {p['sessions']} sessions", 12, None),
        (f"Days practised: {sum(1 for d in p['by_day'] if d['sessions'])}", 12, None),
        (
            f"Current streak: {data.streak['current']} days — "
            f"longest: {data.streak['longest']} days",
            12,
            None,
        ),
        (f"Level {data.level} ({data.xp} XP)", 12, None),
        ("", 10, None),
        ("Most practised pieces", 14, "bold"),
    ]
    for piece in data.pieces:
        acc = piece["accuracy"]
        trend = acc["slope_per_session"]
        lines.append(
            (
                f"{piece['work_title'] or piece['piece_key']}: {piece['sessions']} sessions"
                + (f", mean accuracy {acc['mean']:.1f} %" if acc["mean"] is not None else "")
                + (f", trend {trend:+.2f} %/session" if trend is not None else ""),
                10,
                None,
            )
        )
    y = 0.95
    for text, size, weight in lines:
        fig.text(0.08, y, text, fontsize=size, fontweight=weight or "normal", va="top")
        y -= 0.035 if size < 14 else 0.05
    return fig


def _time_charts(data: ReportData) -> Figure:
    fig = Figure(figsize=A4)
    days = data.practice["by_day"]
    weeks = data.practice["by_week"]
    ax1, ax2 = fig.subplots(2, 1)
    # One filled step patch per chart, not one rectangle per bar: years of days stay cheap.
    ax1.stairs([d["seconds"] / 60 for d in days], range(len(days) + 1), fill=True, color="#4c72b0")
    ax1.set_title("Practice time per day")
    ax1.set_ylabel("minutes")
    ax1.set_xlim(0, max(1, len(days)))
    step = max(1, len(days) // 6)
    ax1.set_xticks([i + 0.5 for i in range(0, len(days), step)])
    ax1.set_xticklabels([days[i]["date"] for i in range(0, len(days), step)], fontsize=7)
    ax2.stairs(
        [w["seconds"] / 60 for w in weeks], range(len(weeks) + 1), fill=True, color="#55a868"
    )
    ax2.set_title("Practice time per week")
    ax2.set_ylabel("minutes")
    ax2.set_xlim(0, max(1, len(weeks)))
    wstep = max(1, len(weeks) // 6)
    ax2.set_xticks([i + 0.5 for i in range(0, len(weeks), wstep)])
    ax2.set_xticklabels([weeks[i]["week"] for i in range(0, len(weeks), wstep)], fontsize=7)
    fig.subplots_adjust(left=0.12, right=0.95, top=0.95, bottom=0.06, hspace=0.3)
    return fig


def _activity_chart(data: ReportData) -> Figure:
    fig = Figure(figsize=A4)
    ax = fig.subplots()
    acts = data.practice["by_activity"][::-1]
    ax.barh([a["activity_type"] for a in acts], [a["seconds"] / 60 for a in acts], color="#c44e52")
    ax.set_title("Practice time by activity")
    ax.set_xlabel("minutes")
    fig.subplots_adjust(left=0.18, right=0.95, top=0.93, bottom=0.1, hspace=0.4)
    return fig


def _accuracy_chart(data: ReportData) -> Figure:
    fig = Figure(figsize=A4)
    ax = fig.subplots()
    drawn = False
    for piece in data.pieces:
        series = data.accuracy_series.get(piece["piece_key"], [])
        if not series:
            continue
        drawn = True
        ax.plot(range(1, len(series) + 1), series, label=piece["work_title"] or "?")
    ax.set_title("Accuracy per session")
    ax.set_xlabel("session")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "No scored sessions in this period", ha="center", transform=ax.transAxes)
    fig.subplots_adjust(left=0.18, right=0.95, top=0.93, bottom=0.1, hspace=0.4)
    return fig


def render(data: ReportData) -> bytes:
    """The report as PDF bytes (four pages)."""
    out = io.BytesIO()
    with PdfPages(out, metadata={"Title": TITLE, "Author": "Tutti"}) as pdf:
        for page in (_summary, _time_charts, _activity_chart, _accuracy_chart):
            pdf.savefig(page(data))
    return out.getvalue()
