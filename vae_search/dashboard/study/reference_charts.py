"""Charts that put the paper's number beside ours: the objective over the trials (history) and
the finalists' means with their intervals, each with one horizontal line per published figure
(``references:`` in the spec; :mod:`vae_search.study.references`).

A reference line is labelled with its name, value and, when its split, k or epochs are not the
study's, "≠ split/k/epochs" so a reader does not take it for a like-for-like comparison.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from vae_search.dashboard.study.plot_style import TEMPLATE, fitted_layout
from vae_search.study.collapse import is_collapsed
from vae_search.study.objectives import objective_label, primary_value
from vae_search.study.references import differences

if TYPE_CHECKING:
    import plotly.graph_objects as go

HISTORY_ID = "objective-history"
REFERENCE_COLOUR = "#d62728"


def reference_label(r: dict[str, Any]) -> str:
    differs = r.get("differs") or []
    note = f" (≠ {', '.join(d.split(' ')[0] for d in differs)})" if differs else ""
    return f"{r['name']}: {r['value']:g}{note}"


def add_reference_lines(fig: go.Figure, refs: list[dict[str, Any]], x: tuple[float, float]) -> None:
    """One dashed horizontal line per reference across ``x`` (data coordinates), in the legend."""
    import plotly.graph_objects as go

    for r in refs:
        fig.add_trace(go.Scatter(
            x=list(x), y=[r["value"], r["value"]], mode="lines", name=reference_label(r),
            line={"dash": "dot", "color": REFERENCE_COLOUR, "width": 1.5},
            hovertext=f"{r['name']} = {r['value']:g} ({r.get('split')}, k = {r.get('k')})"
            + (f" [{r['source']}]" if r.get("source") else ""), hoverinfo="text",
            meta={"reference": r["name"], "value": r["value"]},
        ))


def nll_references(refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The references a likelihood axis can show (metric nll or elbo)."""
    return [r for r in refs if r.get("metric") in ("nll", "elbo")]


def history_figure(study: optuna.Study, refs: list[dict[str, Any]]) -> go.Figure:
    """The objective of every completed trial by number, the best so far, and the references."""
    import plotly.graph_objects as go

    done = sorted((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                   if primary_value(t) is not None and math.isfinite(primary_value(t))),
                  key=lambda t: t.number)
    fig = go.Figure()
    xs = [t.number for t in done]
    fig.add_trace(go.Scatter(x=xs, y=[primary_value(t) for t in done], mode="markers", name="trial",
                             marker={"color": ["#999999" if is_collapsed(t) else "#1f77b4" for t in done]}))
    best, line = math.inf, []
    for t in done:
        if not is_collapsed(t):
            best = min(best, primary_value(t))
        line.append(best if math.isfinite(best) else None)
    fig.add_trace(go.Scatter(x=xs, y=line, mode="lines", name="best so far", line={"shape": "hv"}))
    span = (min(xs, default=0) - 0.5, max(xs, default=1) + 0.5)
    add_reference_lines(fig, nll_references(refs), span)
    fig.update_layout(**fitted_layout("Objective by trial, with published figures", ""),
                      xaxis={"title": "trial"}, yaxis={"title": objective_label(study)}, template=TEMPLATE)
    return fig


def finalists_figure(table: dict[str, Any], refs: list[dict[str, Any]]) -> go.Figure:
    """The finalists' mean final NLL with its 95% interval per configuration, and the references
    (their differences recomputed against the finalists' split and k)."""
    import plotly.graph_objects as go

    rows = table["rows"]
    labels = [f"trial {r['trial']}" for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=labels, y=[r["mean"] for r in rows], mode="markers", name="mean over seeds",
        error_y={"type": "data", "symmetric": False,
                 "array": [(r["high"] - r["mean"]) if r["high"] is not None else 0 for r in rows],
                 "arrayminus": [(r["mean"] - r["low"]) if r["low"] is not None else 0 for r in rows]},
    ))
    ours = {"split": table.get("split"), "k": table.get("k")}
    refs = [{**r, "differs": differences(r, ours)} for r in nll_references(refs)]
    if rows:
        add_reference_lines(fig, refs, (labels[0], labels[-1]))
    fig.update_layout(**fitted_layout(f"Finalists: {table.get('split')} NLL (k = {table.get('k')}), "
                                      "95% t interval", ""),
                      yaxis={"title": "NLL bound, nats"}, template=TEMPLATE)
    return fig
