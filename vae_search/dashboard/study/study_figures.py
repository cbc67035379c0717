"""Study-wide plotly figures: where in the space trials collapse, and what collapse costs.

* the **collapse map**: the β each trial reached (a warm-up cut short stops below the target)
  against the latent size and against the annealing rate, each trial coloured by the fraction
  of its latent units still active (black: all collapsed), its marker by the prior, its
  outline by how it ended;
* **active units against the objective** for the completed trials.

:func:`refresh_study_figures` stores both in the study for optuna-dashboard; the report embeds
the same figures. What each marker stands for is :class:`~vae_search.dashboard.study.points.TrialPoint`.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from vae_search.dashboard.study.plot_style import TEMPLATE, count_ticks, fitted_layout, log_ticks
from vae_search.dashboard.study.points import TrialPoint, trial_points
from vae_search.study.objectives import objective_label

if TYPE_CHECKING:
    import plotly.graph_objects as go

log = logging.getLogger(__name__)

COLLAPSE_MAP_ID = "collapse-map"
REFRESHED_ATTR = "vae_search:figures"  # study system attr: when, and with how many finished trials
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
ACTIVE_VS_OBJECTIVE_ID = "active-units-vs-objective"
SYMBOLS = {"standard": "circle", "mog": "square", "vamp": "diamond"}  # marker by prior
# inferno, as in the KL heatmaps: 0 (no active unit) is black
COLORSCALE = "Inferno"
# outline by how a trial ended (see TrialPoint.ending); a completed one has a thin dark line
OUTLINE = {"collapse": "#d62728", "performance": "#7f7f7f", "failed": "#1f77b4"}
ENDINGS = {"collapse": "pruned: collapse", "performance": "pruned: performance", "failed": "failed"}
PLAIN_LINE = ("#333333", 0.8)


def _outline(p: TrialPoint) -> tuple[str, float]:
    return (OUTLINE[p.ending], 2.5) if p.ending in OUTLINE else PLAIN_LINE


def _marker(points: list[TrialPoint], prior: str) -> dict[str, Any]:
    return {
        "symbol": SYMBOLS.get(prior, "x"),
        "size": 11,
        "color": [p.active_fraction for p in points],
        "coloraxis": "coloraxis",
        "line": {
            "width": [_outline(p)[1] for p in points],
            "color": [_outline(p)[0] for p in points],
        },
    }


def _legend_keys(fig: go.Figure, priors: list[str], endings: set[str]) -> None:
    """Legend-only entries in neutral colours: marker = prior, outline = how a trial ended
    (only the endings on the map)."""
    import plotly.graph_objects as go

    keys = [(f"prior: {p}", SYMBOLS.get(p, "x"), *PLAIN_LINE) for p in priors]
    keys += [(name, "circle", OUTLINE[k], 2.5) for k, name in ENDINGS.items() if k in endings]
    for name, symbol, line, width in keys:
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=name,
                marker={
                    "symbol": symbol,
                    "size": 11,
                    "color": "#bbbbbb",
                    "line": {"color": line, "width": width},
                },
            ),
            row=1,
            col=1,
        )


def _plotted(points: list[TrialPoint]) -> list[TrialPoint]:
    """The trials the collapse map can place: a β reached (> 0, a log axis) and active units."""
    return [p for p in points if p.beta and p.beta > 0 and p.active_fraction is not None]


def _count(n: int, what: str = "trial") -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def unplotted_message(points: list[TrialPoint]) -> str:
    """Why the collapse map is empty, worded from every finished trial."""
    if not points:
        return "no finished trial yet"
    early = [p for p in points if p.state == "FAIL" and p.active_units is None]
    parts = [f"{_count(len(early))} failed before their first epoch"] if early else []
    rest = len(points) - len(early)
    if rest:
        parts.append(f"{_count(rest, 'finished trial')} with no β or active units recorded")
    return "; ".join(parts)


def _state_counts(points: list[TrialPoint]) -> str:
    counts = {s: sum(p.state == s for p in points) for s in ("PRUNED", "FAIL")}
    words = {"PRUNED": "pruned", "FAIL": "failed"}
    return ", ".join(f"{n} {words[s]}" for s, n in counts.items() if n)


def collapse_map(points: list[TrialPoint], title: str = "") -> go.Figure:
    """β reached against latent size (left) and annealing rate (right, linear schedules only)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.14,
        subplot_titles=("β reached vs latent size", "β reached vs rate (linear schedules)"),
    )
    fig.update_annotations(font_size=12)  # the subplot titles; before any message is added
    usable = _plotted(points)
    for prior in sorted({p.prior for p in usable}):
        group = [p for p in usable if p.prior == prior]
        linear = [p for p in group if p.schedule in (None, "linear") and p.rate is not None]
        for col, pts, xs in (
            (1, group, [p.latent_dim for p in group]),
            (2, linear, [p.rate for p in linear]),
        ):
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[p.beta for p in pts],
                    mode="markers",
                    name=f"prior: {prior}",
                    legendgroup=prior,
                    showlegend=False,
                    marker=_marker(pts, prior),
                    text=[p.hover() for p in pts],
                    hoverinfo="text",
                ),
                row=1,
                col=col,
            )
    _legend_keys(fig, sorted({p.prior for p in usable}), {p.ending for p in usable if p.ending})
    fig.update_layout(
        fitted_layout(
            title or "Collapse map (colour: active fraction at the end)",
            "active<br>fraction",
        ),
        coloraxis={"colorscale": COLORSCALE, "cmin": 0, "cmax": 1},
    )
    _collapse_map_axes(fig, usable)
    fig.layout.template = TEMPLATE  # assigned, not updated: an update merges into the default
    if not usable:
        _message(fig, unplotted_message(points))
    return fig


def _collapse_map_axes(fig: go.Figure, usable: list[TrialPoint]) -> None:
    """Log axes labelled at powers of two (latent size) and 1-2-5 steps (β, rate)."""
    if not usable:  # empty log axes would show plotly's labels of a made-up range
        _blank(fig)
        return
    dims = [p.latent_dim for p in usable if p.latent_dim]
    ticks = [2**k for k in range(0, 16) if dims and min(dims) / 2 <= 2**k <= max(dims) * 2]
    fig.update_xaxes(
        title_text="latent size",
        type="log",
        row=1,
        col=1,
        tickvals=ticks or None,
        ticktext=[str(t) for t in ticks] or None,
    )
    rates = log_ticks(p.rate for p in usable if p.schedule in (None, "linear"))
    fig.update_xaxes(
        title_text="annealing rate (β per epoch)",
        row=1,
        col=2,
        **(rates.axis() if rates else {"type": "log"}),
    )
    betas = log_ticks(p.beta for p in usable)
    for col in (1, 2):
        fig.update_yaxes(
            title_text="β reached",
            row=1,
            col=col,
            title_standoff=4,
            **(betas.axis() if betas else {"type": "log"}),
        )


def _message(fig: go.Figure, text: str) -> None:
    """``text`` in the middle of an empty figure."""
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")


def _blank(fig: go.Figure) -> None:
    """No axes and no plot background: room for the message of an empty figure."""
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(plot_bgcolor="white")


def active_vs_objective(points: list[TrialPoint], objective: str = "objective value") -> go.Figure:
    """Completed trials: active units (x) against the objective (y), marker by prior, colour
    by the β reached (log scale, the colour bar labelled in β)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    done = [p for p in points if p.value is not None and p.active_units is not None]
    for prior in sorted({p.prior for p in done}):
        pts = [p for p in done if p.prior == prior]
        fig.add_trace(
            go.Scatter(
                x=[p.active_units for p in pts],
                y=[p.value for p in pts],
                mode="markers",
                name=f"prior: {prior}",
                text=[p.hover() for p in pts],
                hoverinfo="text",
                marker={
                    "symbol": SYMBOLS.get(prior, "x"),
                    "size": 11,
                    "coloraxis": "coloraxis",
                    "color": [math.log10(p.beta) if p.beta else math.nan for p in pts],
                    "line": {"width": 0.8, "color": "#333333"},
                },
            )
        )
    fig.update_layout(
        fitted_layout(
            "Active units vs objective (completed trials)",
            "β reached",
        ),
        xaxis_title="active units at the end",
        yaxis_title=objective,
        xaxis=_count_axis([p.active_units for p in done if p.active_units is not None]),
        coloraxis={"colorscale": "Viridis", **_beta_colour_scale(done)},
        showlegend=True,
    )
    fig.layout.template = TEMPLATE  # assigned, not updated: an update merges into the default
    if not done:
        _blank(fig)
        left = _state_counts(points)
        _message(fig, "no completed trial yet" + (f" ({left})" if left else ""))
    return fig


def _count_axis(counts: list[int]) -> dict[str, Any]:
    """Whole-number ticks for a count (plotly would put some at 2.5)."""
    if not counts:
        return {}
    ticks = count_ticks(min(counts), max(counts))
    return {"tickvals": ticks, "ticktext": [str(t) for t in ticks]}


def _beta_colour_scale(points: list[TrialPoint]) -> dict[str, Any]:
    """Colour by log10 β, the colour bar ticked at 1-2-5 values of β itself."""
    ticks = log_ticks(p.beta for p in points)
    if ticks is None:
        return {}
    lo, hi = ticks.range
    return {
        "cmin": lo,
        "cmax": hi,
        "colorbar": {"tickvals": [math.log10(v) for v in ticks.values], "ticktext": ticks.text},
    }


def study_figures(study: optuna.Study) -> dict[str, go.Figure]:
    """The study's figures by graph-object id."""
    from vae_search.dashboard.study.rate_distortion import (
        RATE_DISTORTION_ID,
        rate_distortion_figure,
        rd_points,
    )

    points = trial_points(study)
    figures = {
        COLLAPSE_MAP_ID: collapse_map(points),
        ACTIVE_VS_OBJECTIVE_ID: active_vs_objective(points, objective_label(study)),
    }
    rd = rd_points(study)
    if rd:  # the rate–distortion plane (Alemi et al. 2018) once a trial has R and D
        figures[RATE_DISTORTION_ID] = rate_distortion_figure(rd)
    from vae_search.dashboard.study.reference_charts import HISTORY_ID, history_figure
    from vae_search.study.references import read_references

    refs = read_references(study)
    if refs:  # the objective by trial beside the published figures the spec names
        figures[HISTORY_ID] = history_figure(study, refs)
    return figures


def refresh_study_figures(study: optuna.Study, every: float | None = None) -> bool:
    """Recompute the study's figures and store them for optuna-dashboard; return whether it did.

    With ``every`` (seconds), skip the refresh when the stored figures already show every
    finished trial, or when any worker stored them less than ``every`` seconds ago: with many
    workers the study's figures are then rewritten about once per ``every`` seconds, not once
    per worker. Call it under the study lock. Never raises.
    """
    try:
        storage, study_id = study._storage, study._study_id
        finished = len(study.get_trials(deepcopy=False, states=FINISHED))
        attrs = storage.get_study_system_attrs(study_id)  # every note too: read it once
        last = attrs.get(REFRESHED_ATTR) or {}
        if every is not None and (
            last.get("finished") == finished or time.time() - last.get("at", 0.0) < every
        ):
            return False
        for graph_id, fig in study_figures(study).items():
            _save_figure(study, attrs, graph_id, fig)
        storage.set_study_system_attr(study_id, REFRESHED_ATTR, {"at": time.time(), "finished": finished})
        return True
    except Exception:  # noqa: BLE001 - a figure must never stop a worker
        log.warning(
            "study %s: could not refresh its figures",
            getattr(study, "study_name", study),
            exc_info=True,
        )
        return False


def _save_figure(study: optuna.Study, attrs: dict[str, Any], graph_id: str, fig: go.Figure) -> None:
    """``optuna_dashboard.save_plotly_graph_object``, with the study's system attributes
    already read (it reads them all again to find the chunks to clear)."""
    try:
        from optuna_dashboard._custom_plot_data import SYSTEM_ATTR_PLOT_DATA, split_plot_data
    except ImportError:  # the dashboard's layout moved: its public call still works
        from optuna_dashboard import save_plotly_graph_object

        save_plotly_graph_object(study, fig, graph_object_id=graph_id)
        return
    prefix = SYSTEM_ATTR_PLOT_DATA + graph_id + ":"
    chunks = split_plot_data(fig.to_json(), prefix)
    for k, v in chunks.items():
        study._storage.set_study_system_attr(study._study_id, k, v)
    for i in range(len(chunks), sum(k.startswith(prefix) for k in attrs)):
        study._storage.set_study_system_attr(study._study_id, f"{prefix}{i}", "")
