"""The rate–distortion plane (Alemi et al. 2018, "Fixing a Broken ELBO"): rate R = KL(q(z|x) ‖
p(z)) on x, distortion D = E_q[−log p(x|z)] on y, both on the validation split in nats.

Every finished trial is one point: its final figures (a completed trial) or its last epoch's
(a pruned or failed one), coloured by the β it reached (log scale), its marker by how it
ended. The front is the non-dominated set in (R, D) among completed trials that kept their
active units (all completed ones when every one collapsed; in a ``[distortion, rate]`` study it
is that study's Pareto front). Dashed lines are of equal β = 1 ELBO: R + D = const, slope −1;
the −ELBO of a point is where its line meets either axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import TrialState

from vae_search import records
from vae_search.dashboard.study.plot_style import TEMPLATE, fitted_layout
from vae_search.dashboard.trial.notes import beta_reached
from vae_search.results.pareto import non_dominated
from vae_search.study.collapse import is_collapsed

if TYPE_CHECKING:
    import plotly.graph_objects as go

RATE_DISTORTION_ID = "rate-distortion"
# marker by how a trial ended
ENDING_SYMBOLS = {"complete": "circle", "collapse": "x", "performance": "triangle-down", "failed": "square-open"}
ENDING_NAMES = {"complete": "complete", "collapse": "pruned: collapse",
                "performance": "pruned: performance", "failed": "failed"}
N_ELBO_LINES = 5


@dataclass
class RDPoint:
    number: int
    ending: str  # complete | collapse | performance | failed
    rate: float
    distortion: float
    beta: float | None
    collapsed: bool

    @property
    def elbo(self) -> float:
        """−ELBO at β = 1: R + D."""
        return self.rate + self.distortion


def _last(history: dict[str, Any], key: str) -> float | None:
    values = history.get(key) or []
    v = values[-1] if values else None
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def rd_points(study: optuna.Study) -> list[RDPoint]:
    """Every finished trial with a rate and a distortion recorded."""
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    out = []
    for t in study.get_trials(deepcopy=False, states=done):
        final = records.trial_final(t)
        history = records.trial_history(t)
        history = history if isinstance(history, dict) else {}
        if t.state == TrialState.COMPLETE and "kl" in final and "recon" in final:
            rate, dist = float(final["kl"]), float(final["recon"])
        else:
            rate, dist = _last(history, "kl"), _last(history, "recon")
        if rate is None or dist is None or not (math.isfinite(rate) and math.isfinite(dist)):
            continue
        if t.state == TrialState.COMPLETE:
            ending = "complete"
        elif t.state == TrialState.FAIL:
            ending = "failed"
        else:
            ending = records.prune_reason(t) or "performance"
        out.append(RDPoint(t.number, ending, rate, dist, beta_reached(history, final), is_collapsed(t)))
    return out


def rd_front(points: list[RDPoint]) -> list[RDPoint]:
    """Non-dominated completed points in (R, D), kept-active ones unless all collapsed; by rate."""
    done = [p for p in points if p.ending == "complete"]
    done = [p for p in done if not p.collapsed] or done
    if not done:
        return []
    mask = non_dominated(np.array([[p.rate, p.distortion] for p in done]))
    return sorted((p for p, keep in zip(done, mask) if keep), key=lambda p: (p.rate, p.number))


def elbo_levels(points: list[RDPoint], n: int = N_ELBO_LINES) -> list[float]:
    """Values c of the equal-ELBO lines R + D = c: evenly over the points' range of R + D."""
    if not points:
        return []
    lo, hi = min(p.elbo for p in points), max(p.elbo for p in points)
    if hi - lo < 1e-9:
        return [lo]
    return [float(c) for c in np.linspace(lo, hi, n)]


def rate_distortion_figure(points: list[RDPoint], title: str = "") -> go.Figure:
    """The plane: trials by ending and β, the front, lines of equal β = 1 ELBO."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if points:
        r_hi = max(p.rate for p in points) * 1.05 + 1e-6
        d_lo = min(p.distortion for p in points)
        for c in elbo_levels(points):
            # R + D = c, clipped to R >= 0 and to the plotted distortion range
            r0, r1 = 0.0, min(r_hi, max(c - d_lo * 0.95, 0.0))
            fig.add_trace(go.Scatter(
                x=[r0, r1], y=[c - r0, c - r1], mode="lines", showlegend=False,
                line={"dash": "dash", "width": 1, "color": "#999999"},
                hovertext=f"−ELBO = R + D = {c:.2f} nats", hoverinfo="text",
                name=f"R + D = {c:.1f}",
            ))
        front = rd_front(points)
        if front:
            fig.add_trace(go.Scatter(
                x=[p.rate for p in front], y=[p.distortion for p in front], mode="lines",
                name="front", line={"color": "#2ca02c", "width": 2, "shape": "hv"},
            ))
        betas = [math.log10(p.beta) if p.beta and p.beta > 0 else None for p in points]
        finite = [b for b in betas if b is not None]
        for ending, symbol in ENDING_SYMBOLS.items():
            idx = [i for i, p in enumerate(points) if p.ending == ending]
            if not idx:
                continue
            pts = [points[i] for i in idx]
            fig.add_trace(go.Scatter(
                x=[p.rate for p in pts], y=[p.distortion for p in pts], mode="markers",
                name=ENDING_NAMES[ending],
                marker={"symbol": symbol, "size": 10, "color": [betas[i] for i in idx],
                        "coloraxis": "coloraxis", "line": {"width": 1, "color": "#333333"}},
                hovertext=[f"trial {p.number}: {ENDING_NAMES[p.ending]}<br>R {p.rate:.2f}, "
                           f"D {p.distortion:.2f}, R + D {p.elbo:.2f} nats<br>β reached "
                           f"{p.beta:.3g}" if p.beta is not None else f"trial {p.number}"
                           for p in pts],
                hoverinfo="text",
            ))
        fig.update_layout(coloraxis={
            "colorscale": "Viridis",
            **({"cmin": min(finite), "cmax": max(finite)} if finite else {}),
        })
    fig.update_layout(
        **fitted_layout(title or "Rate–distortion (validation); dashed: equal β = 1 ELBO",
                        "log10 β reached"),
        xaxis={"title": "rate R = KL, nats", "rangemode": "tozero"},
        yaxis={"title": "distortion D, nats"},
        template=TEMPLATE,
    )
    return fig
