"""What to practise next: the recommendation rule of the piece library.

The rule, from the user's history (one :class:`Played` per piece they have
practised, from their practice logs):

1. **Level.** The highest difficulty among pieces whose best accuracy is at
   least :data:`LEVEL_ACCURACY` (80 %). With scored history but nothing at
   80 %, one below the easiest piece scored (at least 1). With no scored
   history, :data:`BEGINNER_LEVEL` (2).
2. **Near the level.** Candidates are library pieces whose difficulty is
   within :data:`LEVEL_BAND` (2) of the level.
3. **Not practised lately.** A piece practised in the last
   :data:`RECENT_DAYS` (7) days is left out.
4. **Not mastered.** A piece whose best accuracy is :data:`MASTERED_ACCURACY`
   (95 %) or more is left out.
5. **Order.** Closest to the level first; at the same distance the harder
   piece first (a small stretch); then pieces never practised before pieces
   practised, and among those the longest unpractised first; then by id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

LEVEL_ACCURACY = 80.0
MASTERED_ACCURACY = 95.0
RECENT_DAYS = 7
LEVEL_BAND = 2
BEGINNER_LEVEL = 2


@dataclass(frozen=True, slots=True)
class Played:
    """A piece in the user's history: its difficulty, the best accuracy (0–100 %,
    ``None`` when never scored) and when it was last practised (aware UTC)."""

    piece_id: str
    difficulty: int
    best_accuracy: float | None
    last_practised: datetime


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A recommended piece with why: the user's level, the piece's difficulty,
    its best accuracy and last practice (``None`` when never practised)."""

    piece_id: str
    difficulty: int
    level: int
    best_accuracy: float | None
    last_practised: datetime | None


def user_level(history: Iterable[Played]) -> int:
    """Step 1 of the rule: the user's level 1–10."""
    scored = [p for p in history if p.best_accuracy is not None]
    good = [p.difficulty for p in scored if p.best_accuracy >= LEVEL_ACCURACY]
    if good:
        return max(good)
    if scored:
        return max(1, min(p.difficulty for p in scored) - 1)
    return BEGINNER_LEVEL


def recommend(
    pieces: Iterable[tuple[str, int]],
    history: Iterable[Played],
    *,
    now: datetime,
    limit: int = 5,
) -> list[Recommendation]:
    """Apply the rule to the library ``pieces`` (``(piece_id, difficulty)`` pairs)."""
    played = {p.piece_id: p for p in history}
    level = user_level(played.values())
    recent = now - timedelta(days=RECENT_DAYS)
    chosen = []
    for piece_id, difficulty in pieces:
        if abs(difficulty - level) > LEVEL_BAND:
            continue
        past = played.get(piece_id)
        if past is not None:
            if past.last_practised >= recent:
                continue
            if past.best_accuracy is not None and past.best_accuracy >= MASTERED_ACCURACY:
                continue
        chosen.append(
            Recommendation(
                piece_id,
                difficulty,
                level,
                past.best_accuracy if past else None,
                past.last_practised if past else None,
            )
        )

    def order(r: Recommendation):
        last = r.last_practised.timestamp() if r.last_practised else float("-inf")
        return (abs(r.difficulty - level), -r.difficulty, last, r.piece_id)

    return sorted(chosen, key=order)[:limit]
