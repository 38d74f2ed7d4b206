"""Catalogue metadata of a piece: instrument, style period, grade.

* ``instrument``: the General MIDI instrument family (GM 1 sound set, 16
  families of 8 programs) of the first part that sets a program; a part
  without a ``program_change`` counts as GM program 0, Acoustic Grand Piano,
  as MIDI players assume. Channel 10 (drums) is not an instrument here.
* ``style_period``: the usual periods of Western art music, from a small table
  of composers (surname match, case-insensitive); ``None`` when unknown.
* ``grade``: an exam-style grade 1–8 from the 1–10 difficulty,
  ``ceil(0.8 × difficulty)`` (1→1, 2→2, 3→3, 4–5→4, 6→5, 7→6, 8→7, 9–10→8).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

GM_FAMILIES = (
    "piano",
    "chromatic percussion",
    "organ",
    "guitar",
    "bass",
    "strings",
    "ensemble",
    "brass",
    "reed",
    "pipe",
    "synth lead",
    "synth pad",
    "synth effects",
    "ethnic",
    "percussive",
    "sound effects",
)

STYLE_PERIODS = (
    "medieval",
    "renaissance",
    "baroque",
    "classical",
    "romantic",
    "modern",
    "contemporary",
)

COMPOSER_PERIODS = {
    "machaut": "medieval",
    "hildegard": "medieval",
    "dufay": "renaissance",
    "josquin": "renaissance",
    "palestrina": "renaissance",
    "byrd": "renaissance",
    "monteverdi": "baroque",
    "purcell": "baroque",
    "corelli": "baroque",
    "vivaldi": "baroque",
    "telemann": "baroque",
    "bach": "baroque",
    "handel": "baroque",
    "scarlatti": "baroque",
    "petzold": "baroque",
    "haydn": "classical",
    "mozart": "classical",
    "clementi": "classical",
    "beethoven": "classical",
    "schubert": "romantic",
    "mendelssohn": "romantic",
    "chopin": "romantic",
    "schumann": "romantic",
    "liszt": "romantic",
    "brahms": "romantic",
    "tchaikovsky": "romantic",
    "dvorak": "romantic",
    "grieg": "romantic",
    "joplin": "romantic",
    "debussy": "modern",
    "ravel": "modern",
    "satie": "modern",
    "bartok": "modern",
    "stravinsky": "modern",
    "prokofiev": "modern",
    "glass": "contemporary",
    "pärt": "contemporary",
    "reich": "contemporary",
}


def instrument_family(program: int | None) -> str:
    """The GM family of ``program`` 0–127 (``None`` → ``"piano"``)."""
    if program is None:
        return GM_FAMILIES[0]
    if not 0 <= program <= 127:
        raise ValueError(f"a General MIDI program is 0-127, got {program}")
    return GM_FAMILIES[program // 8]


def instrument_of(parts: Iterable) -> str:
    """The instrument of a piece: the family of its first part with a program."""
    for part in parts:
        if getattr(part, "channel", None) == 9:
            continue
        if part.program is not None:
            return instrument_family(part.program)
    return GM_FAMILIES[0]


def style_period_of(composer: str | None) -> str | None:
    """The period of a known ``composer`` (``"J. S. Bach"`` → ``"baroque"``), else ``None``."""
    if not composer:
        return None
    for word in re.findall(r"[a-zà-ÿ]+", composer.lower().replace("ř", "r").replace("á", "a")):
        if word in COMPOSER_PERIODS:
            return COMPOSER_PERIODS[word]
    return None


def grade_of(difficulty: int) -> int:
    """Grade 1–8 for a difficulty 1–10: ``ceil(0.8 × difficulty)``."""
    return max(1, min(8, math.ceil(0.8 * difficulty)))
