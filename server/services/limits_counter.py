"""Counts of refused requests and events (rate limits, caps), per kind, in this process.

:func:`record_rejection` is called wherever a limit refuses something, with a
``kind`` label (``rest_user``, ``rest_ip``, ``events``, ``notes``,
``connections``, ``payload``, ``room_full``, ``invite``); :func:`snapshot`
feeds ``GET /api/health`` (``"rejections"``). A metrics exporter attaches with
:func:`on_rejection`, e.g. a Prometheus counter::

    limits_counter.on_rejection(lambda kind: REJECTIONS.labels(kind=kind).inc())
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

_counts: Counter[str] = Counter()
_hooks: list[Callable[[str], None]] = []


def record_rejection(kind: str) -> None:
    """Count one refusal of ``kind`` and tell the attached hooks."""
    _counts[kind] += 1
    for hook in _hooks:
        hook(kind)


def on_rejection(hook: Callable[[str], None]) -> None:
    """Call ``hook(kind)`` on every refusal from now on."""
    _hooks.append(hook)


def off_rejection(hook: Callable[[str], None]) -> None:
    """Stop calling ``hook`` (an application shutting down detaches its exporter)."""
    if hook in _hooks:
        _hooks.remove(hook)


def snapshot() -> dict[str, int]:
    """Refusals so far by kind, since the process started."""
    return dict(_counts)
