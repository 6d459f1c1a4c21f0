"""The scheduler's load meter: an exponentially weighted busy share, exact whatever the tick rate."""

from __future__ import annotations

import math

import pytest

from firstspike.server.load_meter import LoadMeter


def _run(meter: LoadMeter, busy_share: float, period_s: float, seconds: float, start: float = 0.0) -> float:
    """Ticks of `busy_share * period_s` every `period_s`, for `seconds`; returns the end time."""
    t = start
    while t < start + seconds - 1e-9:
        meter.add_busy(t, t + busy_share * period_s)
        t += period_s
    return t


@pytest.mark.parametrize("period_s", [0.001, 0.01, 0.1])
def test_a_steady_busy_share_reads_as_itself_whatever_the_tick_rate(period_s):
    meter = LoadMeter(time_constant_s=1.0, now=0.0)
    end = _run(meter, 0.6, period_s, seconds=10.0)
    assert meter.value(end) == pytest.approx(0.6, abs=0.05)


def test_busy_throughout_rises_with_the_time_constant_and_idle_decays():
    meter = LoadMeter(time_constant_s=1.0, now=0.0)
    meter.add_busy(0.0, 1.0)
    assert meter.value(1.0) == pytest.approx(1 - math.exp(-1.0))
    assert meter.value(3.0) == pytest.approx((1 - math.exp(-1.0)) * math.exp(-2.0))
    assert meter.value(0.5) == meter.value(1.0)  # the past is not rewritten


def test_overlapping_or_out_of_order_intervals_count_once():
    meter = LoadMeter(time_constant_s=1.0, now=0.0)
    meter.add_busy(0.0, 1.0)
    once = meter.value(1.0)
    meter.add_busy(0.5, 1.0)  # already counted
    assert meter.value(1.0) == once
    meter.add_busy(0.5, 1.5)  # only its last half second is new
    assert meter.value(1.5) == pytest.approx(1 - math.exp(-1.5))


def test_the_value_stays_within_zero_and_one():
    meter = LoadMeter(time_constant_s=0.01, now=0.0)
    meter.add_busy(0.0, 1000.0)
    assert meter.value(1000.0) <= 1.0
    assert meter.value(2000.0) >= 0.0
    with pytest.raises(ValueError):
        LoadMeter(time_constant_s=0)
