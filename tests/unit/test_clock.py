"""rooms.clock: NTP offset/round-trip formulas (RFC 5905, section 8) and the median filter."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.clock import ClockEstimator, ClockSample


def exchange(
    offset_ms: float, client_send_ms: float, up_ms: float, server_ms: float, down_ms: float
) -> ClockSample:
    """Stamps of one exchange with a server clock ``offset_ms`` ahead of the client's.

    The request takes ``up_ms`` to reach the server, the server needs
    ``server_ms`` to answer, the answer takes ``down_ms`` back.
    """
    t0 = client_send_ms
    t1 = t0 + up_ms + offset_ms
    t2 = t1 + server_ms
    t3 = t2 - offset_ms + down_ms
    return ClockSample(t0, t1, t2, t3)


def test_offset_and_rtt_hand_computed() -> None:
    # RFC 5905 §8: offset = ((T2 - T1) + (T3 - T4)) / 2, delay = (T4 - T1) - (T3 - T2),
    # with T1..T4 = t0..t3 here. Server 1000 ms ahead; 20 ms up, 5 ms in the server,
    # 40 ms down.
    sample = ClockSample(t0=10_000.0, t1=11_020.0, t2=11_025.0, t3=10_065.0)
    assert sample.rtt_ms == 60.0  # (10065 - 10000) - (11025 - 11020)
    # ((11020 - 10000) + (11025 - 10065)) / 2 = (1020 + 960) / 2: asymmetry shows as an
    # error of (up - down) / 2 = -10 ms.
    assert sample.offset_ms == 990.0
    assert exchange(1000.0, 10_000.0, 20.0, 5.0, 40.0) == sample


def test_symmetric_delays_give_the_exact_offset() -> None:
    for offset in (-123_456.0, -0.5, 0.0, 42.0, 3_600_000.0):
        sample = exchange(offset, 1_700_000_000_000.0, 25.0, 3.0, 25.0)
        assert sample.offset_ms == pytest.approx(offset, abs=1e-6)
        assert sample.rtt_ms == pytest.approx(50.0, abs=1e-6)


def test_server_behind_the_client() -> None:
    sample = ClockSample(t0=5000.0, t1=4010.0, t2=4012.0, t3=5022.0)
    assert sample.offset_ms == -1000.0  # ((4010 - 5000) + (4012 - 5022)) / 2
    assert sample.rtt_ms == 20.0


def test_zero_rtt_is_allowed() -> None:
    sample = ClockSample(1.0, 1.0, 1.0, 1.0)
    assert (sample.offset_ms, sample.rtt_ms) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("stamps", "message"),
    [
        ((100.0, 200.0, 210.0, 99.0), "t3"),  # answer received before the request was sent
        ((100.0, 210.0, 200.0, 150.0), "t2"),  # server answered before receiving
    ],
)
def test_invalid_stamp_order(stamps, message) -> None:
    with pytest.raises(ValueError, match=message):
        ClockSample(*stamps)


def test_estimator_before_any_sample() -> None:
    estimator = ClockEstimator()
    assert len(estimator) == 0
    assert estimator.offset_ms == 0.0
    assert estimator.rtt_ms is None
    assert estimator.to_server(123.0) == 123.0
    assert estimator.to_client(123.0) == 123.0


@pytest.mark.parametrize("window", [0, -3])
def test_invalid_window(window) -> None:
    with pytest.raises(ValueError, match="window"):
        ClockEstimator(window)


def test_median_ignores_an_outlier() -> None:
    estimator = ClockEstimator(window=5)
    offsets = [100.0, 102.0, 98.0, 101.0]
    for k, offset in enumerate(offsets):
        estimator.add(exchange(offset, 1000.0 * k, 10.0, 1.0, 10.0))
    # One badly delayed answer: 900 ms down instead of 10 skews that sample by -445 ms.
    outlier = exchange(100.0, 5000.0, 10.0, 1.0, 900.0)
    assert outlier.offset_ms == pytest.approx(100.0 - 445.0)
    assert outlier.rtt_ms == pytest.approx(910.0)
    estimator.add(outlier)
    assert len(estimator) == 5
    # Median of 100, 102, 98, 101, -345 is 100; the mean would be -8.8.
    assert estimator.offset_ms == pytest.approx(100.0)
    assert estimator.rtt_ms == pytest.approx(20.0)  # median of 20, 20, 20, 20, 910


def test_median_of_an_even_number_of_samples() -> None:
    estimator = ClockEstimator(window=4)
    for offset in (10.0, 20.0, 40.0, 1000.0):
        estimator.add(exchange(offset, 0.0, 5.0, 0.0, 5.0))
    assert estimator.offset_ms == pytest.approx(30.0)  # (20 + 40) / 2


def test_window_keeps_the_latest_samples() -> None:
    estimator = ClockEstimator(window=3)
    for offset in (500.0, 500.0, 500.0, 7.0, 8.0, 9.0):
        estimator.add(exchange(offset, 0.0, 5.0, 0.0, 5.0))
    assert len(estimator) == 3
    assert estimator.offset_ms == pytest.approx(8.0)  # the three 500s are forgotten


@given(
    offset=st.floats(-1e9, 1e9, allow_nan=False),
    client_ms=st.floats(0, 2e12, allow_nan=False),
)
def test_to_server_and_to_client_round_trip(offset, client_ms) -> None:
    estimator = ClockEstimator()
    estimator.add(exchange(offset, 1_700_000_000_000.0, 12.0, 1.0, 12.0))
    server_ms = estimator.to_server(client_ms)
    assert server_ms == pytest.approx(client_ms + estimator.offset_ms)
    assert estimator.to_client(server_ms) == pytest.approx(client_ms, abs=1e-3)


@settings(max_examples=50, deadline=None)
@given(
    true_offset=st.floats(-5e6, 5e6, allow_nan=False),
    seed=st.integers(0, 2**32 - 1),
)
def test_estimator_converges_with_asymmetric_random_delays(true_offset, seed) -> None:
    """Delays drawn independently each way (so each sample is off by (up - down) / 2),
    and every fourth exchange stalls for 0.2-2 s one way or the other (at most three
    stalled samples in any nine): the median lands near the truth."""
    rng = random.Random(seed)
    estimator = ClockEstimator(window=9)
    t = 1_700_000_000_000.0
    stalled = []
    for k in range(40):
        up = rng.uniform(5.0, 25.0)
        down = rng.uniform(5.0, 25.0)
        if k % 4 == 1:
            if rng.random() < 0.7:
                down += rng.uniform(200.0, 2000.0)
            else:
                up += rng.uniform(200.0, 2000.0)
        sample = exchange(true_offset, t, up, rng.uniform(0.0, 3.0), down)
        estimator.add(sample)
        if k % 4 == 1:
            stalled.append(abs(sample.offset_ms - true_offset))
        t += 250.0
    assert min(stalled) >= 90.0
    # Each clean sample is within 10 ms of the truth; the median of the last nine is too,
    # even though single stalled samples are off by 100 ms to 1 s.
    assert abs(estimator.offset_ms - true_offset) <= 10.0 + 1e-6
    assert estimator.rtt_ms is not None and 10.0 <= estimator.rtt_ms <= 50.0 + 1e-6
    client_now = 1_700_000_123_456.0
    assert abs(estimator.to_server(client_now) - (client_now + true_offset)) <= 10.0 + 1e-6


def test_estimator_converges_seeded() -> None:
    rng = random.Random(2024)
    true_offset = -37_512.25
    estimator = ClockEstimator()
    single_errors = []
    for k in range(200):
        up, down = rng.expovariate(1 / 15), rng.expovariate(1 / 40)  # slower way back
        sample = exchange(true_offset, 1000.0 * k, up, 1.0, down)
        single_errors.append(abs(sample.offset_ms - true_offset))
        estimator.add(sample)
    error = abs(estimator.offset_ms - true_offset)
    # Systematic asymmetry biases NTP by (mean up - mean down) / 2 ≈ -12.5 ms; the
    # median filter stays within that bias and beats the average single sample.
    assert error < 20.0
    assert error < sum(single_errors) / len(single_errors)
