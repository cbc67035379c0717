"""Tick positions and labels, for the PIL charts and the plotly figures alike.

Linear axes get 1-2-2.5-5 steps labelled in fixed point with the decimals of the step (never
two equal labels); counts get whole steps; log axes get 1-2-5 values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def nice_ticks(lo: float, hi: float, n: int = 5, *, integer: bool = False) -> list[float]:
    """About ``n`` round tick values (1, 2, 2.5, 5 × 10^k steps) covering [lo, hi]; with
    ``integer``, whole-number steps only (counts such as epochs and active units)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    if integer:
        raw, mag = max(raw, 1.0), max(mag, 1.0)
    mantissas = (1, 2, 5, 10) if integer and mag == 1 else (1, 2, 2.5, 5, 10)
    step = next(m * mag for m in mantissas if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def tick_labels(ticks: list[float]) -> list[str]:
    """Fixed-point labels of ``ticks`` with the fewest decimals that tell them apart exactly
    (0.25 steps get two, 0.5 steps one, whole steps none): '647.0', '647.5', never '648' twice
    or '1e+03'."""
    decimals = next(
        (d for d in range(13) if all(abs(t * 10**d - round(t * 10**d)) < 1e-6 for t in ticks)), 12
    )
    return [f"{round(t, decimals) + 0.0:.{decimals}f}" for t in ticks]  # + 0.0: no "-0"


@dataclass
class LogTicks:
    """Ticks of a log axis: values, their labels, and the axis range (log10) that shows them."""

    values: list[float]
    text: list[str]
    range: tuple[float, float]

    def axis(self) -> dict[str, Any]:
        """``update_xaxes`` / ``update_yaxes`` keys: these ticks only, no minor labels."""
        return {
            "type": "log",
            "tickvals": self.values,
            "ticktext": self.text,
            "range": list(self.range),
        }


def log_ticks(values: Iterable[float | None], max_ticks: int = 9) -> LogTicks | None:
    """1-2-5 ticks from the round value at or below the smallest of ``values`` to the one at
    or above the largest (decades only when that makes more than ``max_ticks``); None when no
    value is positive."""
    vals = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if not vals:
        return None
    lo, hi = min(vals), max(vals)
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 2)
    for mantissas in ((1, 2, 5), (1,)):
        grid = [round(m * 10.0**k, 12) for k in decades for m in mantissas]
        first = max(t for t in grid if t <= lo * (1 + 1e-9))
        last = min(t for t in grid if t >= hi * (1 - 1e-9))
        ticks = [t for t in grid if first <= t <= last]
        if len(ticks) <= max_ticks:
            break
    span = math.log10(last) - math.log10(first)
    pad = max(0.05 * span, 0.1)  # room for the markers at the ends
    return LogTicks(
        values=ticks,
        text=[f"{t:g}" for t in ticks],
        range=(math.log10(first) - pad, math.log10(last) + pad),
    )
