"""The look of the study figures: a small template, a layout that fits optuna-dashboard's box,
and the few ticks plotly's own would get wrong.

optuna-dashboard draws a custom plotly figure in a 450 px high box and clips the rest, so every
figure is :data:`HEIGHT` high with its legend and colour bar on the right, inside that box.

Ticks are plotly's own except where they mislead: on a log axis spanning a decade or two plotly
labels the 2s and 5s with the bare digit ("0.1 2 5 1 2 5"), so β and the annealing rate get
:func:`log_ticks` (0.1, 0.2, 0.5, 1, 2, 5); a colour bar of log10 β would be labelled in log10
β (-0.3, 0, 0.2) rather than β; and a count axis gets ticks at 2.5 (:func:`count_ticks`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

HEIGHT = 450  # px: optuna-dashboard's box for a custom figure
# The look of plotly's default template in a few keys: the full template is ~6 KB of JSON per
# figure, and optuna-dashboard stores a figure as study attributes in 2 KB chunks, one storage
# write each, every time a worker refreshes it.
_AXIS = {"gridcolor": "white", "linecolor": "white", "zerolinecolor": "white", "automargin": True}
TEMPLATE = {
    "layout": {
        "font": {"color": "#2a3f5f"},
        "paper_bgcolor": "white",
        "hovermode": "closest",
        "title": {"x": 0.05},
        "xaxis": _AXIS,
        "yaxis": _AXIS,
    }
}


def fitted_layout(title: str, colorbar_title: str) -> dict[str, Any]:
    """Layout keys of a figure that fits :data:`HEIGHT`: legend top right, colour bar under
    it, both outside the plot area (plotly widens the right margin for them)."""
    return {
        # short, and left: the dashboard's tool bar takes the top right
        "title": {"text": title, "font": {"size": 13}, "x": 0.02, "y": 0.97, "yanchor": "top"},
        "height": HEIGHT,
        "margin": {"t": 64, "l": 56, "r": 10, "b": 56},
        "legend": {
            "x": 1.02,
            "xanchor": "left",
            "y": 1.0,
            "yanchor": "top",
            "font": {"size": 11},
            "tracegroupgap": 0,
        },
        "coloraxis_colorbar": {
            "title": {"text": colorbar_title, "side": "top", "font": {"size": 11}},
            "x": 1.02,
            "xanchor": "left",
            "y": 0.0,
            "yanchor": "bottom",
            "len": 0.45,
            "thickness": 12,
            "tickfont": {"size": 10},
        },
        "plot_bgcolor": "#f4f4f4",
    }


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


def count_ticks(lo: int, hi: int, n: int = 6) -> list[int]:
    """About ``n`` whole-number ticks (steps of 1, 2 or 5 x 10^k) covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = max((hi - lo) / max(n - 1, 1), 1.0)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return list(range(math.ceil(lo / step) * step, hi + 1, step))
