"""Unique part names: repeats get ``" (2)"``, ``" (3)"``…, in linear time."""

from __future__ import annotations

from collections.abc import Iterable


def unique_names(names: Iterable[str]) -> list[str]:
    """``names`` in order, each repeat renamed ``"name (2)"``, ``"name (3)"``…

    A name gets the lowest suffix not taken by an earlier result (so
    ``["A (2)", "A", "A"]`` gives ``["A (2)", "A", "A (3)"]``). Linear in the
    number of names: each name remembers the last suffix it was given, and a
    suffix found taken is never tried again for that name.
    """
    taken: set[str] = set()
    last: dict[str, int] = {}  # name → the suffix it last got (1: the bare name)
    result: list[str] = []
    for name in names:
        n = last.get(name, 1)
        candidate = name if n == 1 else f"{name} ({n})"
        while candidate in taken:
            n += 1
            candidate = f"{name} ({n})"
        last[name] = n
        taken.add(candidate)
        result.append(candidate)
    return result
