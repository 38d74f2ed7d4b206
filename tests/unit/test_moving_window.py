"""server.services.moving_window: exact moving windows, the semantics of ``limits``' own.

The differential test drives ``limits``' ``MovingWindowRateLimiter`` (its in-memory
storage, the library's clock set by hand) and our :class:`MovingWindow` with the
same hits at the same times and expects the same answers. No server needed.
"""

from __future__ import annotations

import random
import time as real_time
import types

import limits.storage.memory as limits_memory
import pytest
from limits import parse, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from server.services.moving_window import SWEEP_EVERY_S, MovingWindow


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_count_per_window_then_room_when_the_oldest_leaves():
    clock = Clock()
    window = MovingWindow(clock)
    item = parse("3/2seconds")
    for dt in (0.0, 0.5, 1.0):
        clock.now = 1000.0 + dt
        assert window.hit(item, "notes", "a") is None
    clock.now = 1001.5
    assert window.hit(item, "notes", "a") == pytest.approx(0.5)  # the 1000.0 hit leaves at 1002
    assert window.hit(item, "notes", "b") is None  # keys are separate
    clock.now = 1002.0  # an entry counts while atime >= now - window: 1000.0 still does
    assert window.hit(item, "notes", "a") == pytest.approx(0.0)
    clock.now = 1002.001
    assert window.hit(item, "notes", "a") is None


def test_a_batch_costs_its_length_and_a_refused_hit_takes_nothing():
    clock = Clock()
    window = MovingWindow(clock)
    item = parse("5/second")
    assert window.hit(item, "notes", "a", cost=4) is None
    assert window.hit(item, "notes", "a", cost=2) is not None  # 4 + 2 > 5: refused, not recorded
    assert window.hit(item, "notes", "a", cost=1) is None  # 5: still room for exactly one
    assert window.hit(item, "notes", "a", cost=1) is not None
    assert window.hit(item, "notes", "b", cost=6) == pytest.approx(1.0)  # over the count


def test_closed_connections_keys_are_swept():
    clock = Clock()
    window = MovingWindow(clock)
    item = parse("10/second")
    for key in ("a", "b", "c"):
        window.hit(item, "notes", key)
    assert len(window) == 3
    clock.now += 1.0 + SWEEP_EVERY_S
    window.hit(item, "notes", "d")
    assert len(window) == 1


def test_same_answers_as_limits_moving_window(monkeypatch):
    clock = Clock(real_time.time())
    fake_time = types.SimpleNamespace(
        **{k: getattr(real_time, k) for k in dir(real_time) if not k.startswith("_")}
    )
    fake_time.time = clock
    monkeypatch.setattr(limits_memory, "time", fake_time)
    storage = MemoryStorage()
    storage._MemoryStorage__schedule_expiry = lambda: None  # no sweeping thread: same answers
    library = MovingWindowRateLimiter(storage)
    ours = MovingWindow(clock)
    items = parse_many("12/2seconds;40/10seconds")
    rng = random.Random(12)
    refused = 0
    for _ in range(3000):
        # Continuous steps: no entry sits exactly on a window's edge, where limits'
        # get_window_stats skips it (a strict comparison) though its hit counts it.
        clock.now += rng.choice((0.0, 0.01, 0.05, 0.1, 0.3, 1.0)) * (1 + rng.random())
        key = rng.choice(("a", "b"))
        cost = rng.choice((1, 1, 1, 2, 5, 13))
        for item in items:  # as RateLimiter.hit: the first refusing limit answers
            lib_ok = library.hit(item, "notes", key, cost=cost)
            wait = ours.hit(item, "notes", key, cost)
            assert lib_ok == (wait is None)
            if not lib_ok and cost <= item.amount:  # (over the count: no window to wait for)
                stats = library.get_window_stats(item, "notes", key)
                assert wait == pytest.approx(stats.reset_time - clock.now, abs=1e-6)
            if not lib_ok:
                refused += 1
                break
    assert refused > 100  # the sequence does reach the limits
