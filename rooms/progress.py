"""Progress rules, pure: experience points, levels, streaks, achievements, trends.

No database, no clock: callers pass the figures and "today" in.

**Experience points (XP).** Each live practice log earns

* 1 XP per minute practised (``duration_seconds / 60``, fractional minutes
  count; a log counts at most :data:`XP_MINUTES_CAP` = 120 minutes, so a
  timer left running does not farm XP);
* plus, for a log written by a finished room (``source = "room"``), a
  :data:`XP_ROOM_BONUS` = 10 XP bonus and ``accuracy_percentage / 10``
  (0–10 XP) for how well it was played.

The total is the sum over the user's live logs, rounded down. A deleted log
takes its XP away (XP is recomputed from the logbook, never accumulated).

**Levels.** Level ``L`` (1, 2, 3, …) needs ``50 · L · (L − 1)`` XP in total:
level 2 at 100 XP, 3 at 300, 4 at 600, 5 at 1000, 10 at 4500 — each level
takes 100 XP more than the last.

**Streaks.** A day counts when the user logged any practice that *started*
on that calendar day in the user's time zone (IANA, e.g.
``Pacific/Honolulu``). The current streak is the run of consecutive practice
days ending today or yesterday (today not practised *yet* does not break
it); the longest streak is the longest run ever.

**Achievements.** :data:`ACHIEVEMENTS`, each a condition on :class:`Stats`.
Once unlocked an achievement stays unlocked (with the time it was first
seen), even if the logs behind it are deleted later.

**Trends.** :func:`least_squares_slope` — the ordinary least-squares slope of
y on x (here: a measurement against the session number 1, 2, 3, … of a
piece), from sums so a database can aggregate them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

XP_MINUTES_CAP = 120
XP_ROOM_BONUS = 10
XP_PER_LEVEL_STEP = 50


def log_xp(duration_seconds: float, *, room: bool, accuracy_percentage: float | None) -> float:
    """The XP one log earns (unrounded); see the module docstring."""
    minutes = min(max(duration_seconds, 0.0), XP_MINUTES_CAP * 60) / 60
    bonus = 0.0
    if room:
        bonus = XP_ROOM_BONUS + (accuracy_percentage or 0.0) / 10
    return minutes + bonus


def xp_for_level(level: int) -> int:
    """Total XP needed to reach ``level`` (≥ 1): ``50 · L · (L − 1)``."""
    if level < 1:
        raise ValueError("levels start at 1")
    return XP_PER_LEVEL_STEP * level * (level - 1)


def level_for_xp(xp: float) -> int:
    """The level reached with ``xp`` total XP (≥ 0): the largest L with
    ``xp_for_level(L) ≤ xp``."""
    xp = max(0.0, xp)
    level = max(1, int((1 + math.sqrt(1 + 4 * xp / XP_PER_LEVEL_STEP)) / 2))
    # Float rounding at exact boundaries: settle on the integer rule.
    while xp_for_level(level + 1) <= xp:
        level += 1
    while level > 1 and xp_for_level(level) > xp:
        level -= 1
    return level


def level_info(xp: float) -> dict[str, int]:
    """``{"xp", "level", "level_xp" (XP at this level's start), "next_level_xp",
    "xp_into_level", "xp_to_next_level"}``, XP rounded down."""
    total = int(math.floor(max(0.0, xp)))
    level = level_for_xp(total)
    start, nxt = xp_for_level(level), xp_for_level(level + 1)
    return {
        "xp": total,
        "level": level,
        "level_xp": start,
        "next_level_xp": nxt,
        "xp_into_level": total - start,
        "xp_to_next_level": nxt - total,
    }


# --------------------------------------------------------------------------- streaks


@dataclass(frozen=True)
class Streaks:
    """``current``/``longest`` in days; ``last_day`` the latest practice day (or
    ``None``); ``run_at_last`` the run of days ending on ``last_day``."""

    current: int
    longest: int
    last_day: date | None
    run_at_last: int


def runs(days: Iterable[date]) -> tuple[int, int, date | None]:
    """``(longest run, run ending at the latest day, latest day)`` of distinct days."""
    ordered = sorted(set(days))
    longest = run = 0
    previous: date | None = None
    for day in ordered:
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    return longest, run, previous


def current_streak(last_day: date | None, run_at_last: int, today: date) -> int:
    """The current streak: the run ending at ``last_day`` if that is today or
    yesterday (or later: a device clock ahead), else 0."""
    if last_day is None or last_day < today - timedelta(days=1):
        return 0
    return run_at_last


def streaks(days: Iterable[date], today: date) -> Streaks:
    """Streaks of the local practice days ``days`` seen on local date ``today``."""
    longest, run, last = runs(days)
    return Streaks(current_streak(last, run, today), longest, last, run)


# --------------------------------------------------------------------------- skill areas

SKILL_AREAS: dict[str, tuple[str, ...]] = {
    "repertoire": ("repertoire", "performance"),
    "ensemble": ("ensemble_reading",),
    "technique": ("technique", "scales", "etudes", "warm_up"),
    "sight_reading": ("sight_reading",),
    "musicianship": ("ear_training", "theory", "improvisation"),
    "lessons": ("lesson",),
    "other": ("other",),
}
"""Skill area → the logbook ``activity_type`` values that train it."""

AREA_OF_ACTIVITY = {a: area for area, acts in SKILL_AREAS.items() for a in acts}


def skill_area(activity_type: str) -> str:
    """The skill area of an ``activity_type`` (``"other"`` for one not listed)."""
    return AREA_OF_ACTIVITY.get(activity_type, "other")


# --------------------------------------------------------------------------- achievements


@dataclass(frozen=True)
class Stats:
    """What achievements look at: counts over the user's live logs."""

    sessions: int = 0  # live practice logs
    duets: int = 0  # room logs of sessions with two or more players
    total_seconds: float = 0.0
    longest_streak: int = 0  # days
    best_piece_accuracy: float | None = None  # %, best complete room play of a piece
    pieces: int = 0  # distinct pieces practised
    level: int = 1


@dataclass(frozen=True)
class Achievement:
    code: str
    title: str
    description: str
    unlocked: Callable[[Stats], bool]


ACHIEVEMENTS: tuple[Achievement, ...] = (
    Achievement("first_session", "First steps", "Log a first practice", lambda s: s.sessions >= 1),
    Achievement("first_duet", "First duet", "Finish a room with a partner", lambda s: s.duets >= 1),
    Achievement(
        "streak_7", "One week", "Practise 7 days in a row", lambda s: s.longest_streak >= 7
    ),
    Achievement(
        "streak_30", "One month", "Practise 30 days in a row", lambda s: s.longest_streak >= 30
    ),
    Achievement("sessions_100", "Hundred", "Log 100 practices", lambda s: s.sessions >= 100),
    Achievement(
        "hours_10", "Ten hours", "Practise 10 hours in all", lambda s: s.total_seconds >= 36_000
    ),
    Achievement(
        "hours_100",
        "Hundred hours",
        "Practise 100 hours in all",
        lambda s: s.total_seconds >= 360_000,
    ),
    Achievement(
        "accuracy_95",
        "Clean play",
        "Play a piece to the end in a room with 95 % accuracy or more",
        lambda s: s.best_piece_accuracy is not None and s.best_piece_accuracy >= 95,
    ),
    Achievement(
        "pieces_10", "Repertoire", "Practise 10 different pieces", lambda s: s.pieces >= 10
    ),
    Achievement("level_5", "Level 5", "Reach level 5", lambda s: s.level >= 5),
    Achievement("level_10", "Level 10", "Reach level 10", lambda s: s.level >= 10),
)
ACHIEVEMENT_CODES = tuple(a.code for a in ACHIEVEMENTS)


def unlocked(stats: Stats) -> list[str]:
    """Codes of every achievement whose condition ``stats`` meets."""
    return [a.code for a in ACHIEVEMENTS if a.unlocked(stats)]


# --------------------------------------------------------------------------- trends


def slope_from_sums(n: float, sx: float, sy: float, sxy: float, sxx: float) -> float | None:
    """Least-squares slope of y on x from ``n``, Σx, Σy, Σxy, Σx² (``None`` when
    fewer than two points or all x equal)."""
    if n < 2:
        return None
    denominator = n * sxx - sx * sx
    if denominator <= 0:
        return None
    return (n * sxy - sx * sy) / denominator


def least_squares_slope(xs: Iterable[float], ys: Iterable[float]) -> float | None:
    """Ordinary least-squares slope of ``ys`` on ``xs`` (``None``: < 2 points)."""
    pairs = list(zip(xs, ys, strict=True))
    return slope_from_sums(
        len(pairs),
        sum(x for x, _ in pairs),
        sum(y for _, y in pairs),
        sum(x * y for x, y in pairs),
        sum(x * x for x, _ in pairs),
    )
