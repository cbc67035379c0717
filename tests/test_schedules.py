"""β schedules at chosen times, including the cap the seed's snippet missed."""

from __future__ import annotations

import math

import pytest

from vae_search.config import ScheduleConfig
from vae_search.schedules import BetaSchedule


def sched(total=10, **kw):
    return BetaSchedule(ScheduleConfig(**kw), total)


def test_constant():
    s = sched(kind="constant", beta=4.0)
    assert [s(t) for t in (0, 3.3, 10)] == [4.0, 4.0, 4.0]


def test_linear_warm_up_is_capped_at_the_target():
    s = sched(kind="linear", beta=1.0, beta_start=0.5, rate=0.25)
    assert [s(t) for t in (0, 1, 1.5, 2, 3, 10)] == [0.5, 0.75, 0.875, 1.0, 1.0, 1.0]
    # the seed's beta_start + min(beta_end, t * rate) would give 1.5 at t = 10
    assert s(10) == 1.0


def test_sigmoid_is_halfway_at_its_midpoint():
    s = sched(kind="sigmoid", beta=2.0, beta_start=0.0, midpoint=5, steepness=2)
    assert s(5) == pytest.approx(1.0)
    assert s(6) == pytest.approx(2.0 / (1 + math.exp(-2)))
    assert s(-1000) == 0.0 and s(1000) == pytest.approx(2.0)


def test_cyclical_rises_over_ratio_then_holds():
    s = sched(total=12, kind="cyclical", beta=1.0, cycles=3, ratio=0.5)  # cycles of 4 epochs
    # rises linearly over the first 2 epochs of each cycle, then holds
    assert [s(t) for t in (0, 1, 2, 3, 4, 5, 8.5, 11.9, 12)] == pytest.approx(
        [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 0.25, 1.0, 1.0]
    )
