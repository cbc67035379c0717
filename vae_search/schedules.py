"""KL-weight schedules β(t), with t in epochs (fractional: β moves every step).

- constant: β(t) = target (β-VAE, Higgins et al. 2017).
- linear: β(t) = min(target, β_start + rate * t) (warm-up, Bowman et al. 2016). Capped at the
  target; the seed snippet ``beta_start + min(beta_end, epoch * rate)`` overshoots by β_start.
- sigmoid: β(t) = β_start + (target - β_start) / (1 + exp(-steepness (t - midpoint))).
- cyclical: Fu et al. (2019): the run's T epochs split into M cycles; within a cycle β rises
  linearly from β_start to the target over the first fraction R, then holds at the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vae_search.config import ScheduleConfig


@dataclass(frozen=True)
class BetaSchedule:
    """β as a function of training time; ``total_epochs`` is needed by the cyclical schedule."""

    cfg: ScheduleConfig
    total_epochs: float

    def __call__(self, t: float) -> float:
        c = self.cfg
        if c.kind == "constant":
            return c.beta
        if c.kind == "linear":
            return min(c.beta, c.beta_start + c.rate * t)
        if c.kind == "sigmoid":
            # exp of a large positive argument overflows; the sigmoid is ~0 there anyway
            x = -c.steepness * (t - c.midpoint)
            s = 0.0 if x > 700 else 1.0 / (1.0 + math.exp(x))
            return c.beta_start + (c.beta - c.beta_start) * s
        period = self.total_epochs / c.cycles
        tau = (t % period) / period if t < self.total_epochs else 1.0
        return c.beta_start + (c.beta - c.beta_start) * min(1.0, tau / c.ratio)
