"""Study-wide plotly figures: where in the space trials collapse, and what collapse costs.

* the **collapse map**: β against the latent size and against the annealing rate, each trial
  coloured by the fraction of its latent units still active (black: all collapsed), its marker
  by the prior;
* **active units against the objective** for the completed trials.

:func:`refresh_study_figures` stores both in the study for optuna-dashboard; the report embeds
the same figures. A parameter the study did not search is read from the trial's ``config``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    import plotly.graph_objects as go

log = logging.getLogger(__name__)

COLLAPSE_MAP_ID = "collapse-map"
REFRESHED_ATTR = "vae_search:figures"  # study system attr: when, and with how many finished trials
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
ACTIVE_VS_OBJECTIVE_ID = "active-units-vs-objective"
SYMBOLS = {"standard": "circle", "mog": "square", "vamp": "diamond"}
# inferno, as in the KL heatmaps: 0 (no active unit) is black
COLORSCALE = "Inferno"
OUTLINE = {"collapse": "#d62728", "performance": "#7f7f7f"}
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


@dataclass
class TrialPoint:
    """What the figures show of one finished trial."""

    number: int
    state: str
    value: float | None
    beta: float | None
    rate: float | None
    schedule: str | None
    latent_dim: int | None
    prior: str
    active_units: int | None
    prune_reason: str | None

    @property
    def active_fraction(self) -> float | None:
        if self.active_units is None or not self.latent_dim:
            return None
        return self.active_units / self.latent_dim

    def hover(self) -> str:
        au = f"{self.active_units}/{self.latent_dim}" if self.active_units is not None else "?"
        end = self.state.lower() + (f" ({self.prune_reason})" if self.prune_reason else "")
        value = f"{self.value:.3f}" if self.value is not None else "none"
        return (
            f"trial {self.number}: {end}<br>active units {au}<br>β {_g(self.beta)}, "
            f"rate {_g(self.rate)}, prior {self.prior}<br>objective {value}"
        )


def _g(v: float | None) -> str:
    return f"{v:.3g}" if v is not None else "?"


def setting(t: FrozenTrial, dotted: str) -> Any:
    """The trial's value of a dotted run-config key: its parameter, else its ``config``."""
    if dotted in t.params:
        return t.params[dotted]
    node: Any = t.user_attrs.get("config") or {}
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def final_active_units(t: FrozenTrial) -> int | None:
    """Active units at the end: the final figure, else the pruned epoch's, else the last."""
    final = t.user_attrs.get("final") or {}
    if "active_units" in final:
        return int(final["active_units"])
    if t.user_attrs.get("pruned_active_units") is not None:
        return int(t.user_attrs["pruned_active_units"])
    au = t.user_attrs.get("active_units") or []
    return int(au[-1]) if au else None


def trial_points(study: optuna.Study) -> list[TrialPoint]:
    """Every finished trial with a config (running and waiting ones are left out)."""
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    points = []
    for t in study.get_trials(deepcopy=False, states=done):
        if "config" not in t.user_attrs and not t.params:
            continue
        value = t.value if t.state == TrialState.COMPLETE and t.value is not None else None
        latent = setting(t, "model.latent_dim") or t.user_attrs.get("latent_dim")
        points.append(
            TrialPoint(
                number=t.number,
                state=t.state.name,
                value=value if value is not None and math.isfinite(value) else None,
                beta=_float(setting(t, "schedule.beta")),
                rate=_float(setting(t, "schedule.rate")),
                schedule=setting(t, "schedule.kind"),
                latent_dim=int(latent) if latent is not None else None,
                prior=str(setting(t, "prior.kind") or "?"),
                active_units=final_active_units(t),
                prune_reason=t.user_attrs.get("prune_reason")
                if t.state == TrialState.PRUNED
                else None,
            )
        )
    return points


def _float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _marker(points: list[TrialPoint], prior: str) -> dict[str, Any]:
    return {
        "symbol": SYMBOLS.get(prior, "x"),
        "size": 12,
        "color": [p.active_fraction for p in points],
        "coloraxis": "coloraxis",
        "line": {
            "width": [2.5 if p.prune_reason else 0.8 for p in points],
            "color": [OUTLINE.get(p.prune_reason or "", "#333333") for p in points],
        },
    }


def _legend_keys(fig: go.Figure, priors: list[str]) -> None:
    """Legend-only entries in neutral colours: marker = prior, outline = why it was pruned."""
    import plotly.graph_objects as go

    keys = [(f"prior: {p}", SYMBOLS.get(p, "x"), "#333333", 0.8) for p in priors]
    keys += [
        ("pruned: collapse", "circle", OUTLINE["collapse"], 2.5),
        ("pruned: performance", "circle", OUTLINE["performance"], 2.5),
    ]
    for name, symbol, line, width in keys:
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=name,
                marker={
                    "symbol": symbol,
                    "size": 12,
                    "color": "#bbbbbb",
                    "line": {"color": line, "width": width},
                },
            ),
            row=1,
            col=1,
        )


def collapse_map(points: list[TrialPoint], title: str = "") -> go.Figure:
    """β against latent size (left) and annealing rate (right, linear schedules only)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.1,
        subplot_titles=("β vs latent size", "β vs annealing rate (linear schedules)"),
    )
    usable = [p for p in points if p.beta is not None and p.active_fraction is not None]
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
    _legend_keys(fig, sorted({p.prior for p in usable}))
    dims = [p.latent_dim for p in usable if p.latent_dim]
    ticks = [2**k for k in range(0, 12) if dims and min(dims) / 2 <= 2**k <= max(dims) * 2]
    fig.update_xaxes(title_text="latent size", type="log", row=1, col=1, tickvals=ticks or None)
    fig.update_xaxes(title_text="annealing rate (β per epoch)", type="log", row=1, col=2)
    fig.update_yaxes(title_text="target β", type="log", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(
        title=title or "Collapse map: colour = fraction of latent units active at the end",
        coloraxis={
            "colorscale": COLORSCALE,
            "cmin": 0,
            "cmax": 1,
            "colorbar": {"title": {"text": "active<br>fraction"}},
        },
        legend={"orientation": "h", "y": -0.2, "x": 0},
        height=540,
        margin={"t": 80, "l": 60, "r": 20, "b": 110},
        plot_bgcolor="#f4f4f4",
    )
    fig.layout.template = TEMPLATE  # assigned, not updated: an update merges into the default
    if not usable:
        fig.add_annotation(
            text="no finished trial yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper"
        )
    return fig


def active_vs_objective(points: list[TrialPoint], objective: str = "objective value") -> go.Figure:
    """Completed trials: active units (x) against the objective (y), marker by prior, colour
    by the target β (log scale)."""
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
                    "size": 12,
                    "coloraxis": "coloraxis",
                    "color": [math.log10(p.beta) if p.beta else None for p in pts],
                    "line": {"width": 0.8, "color": "#333333"},
                },
            )
        )
    fig.update_layout(
        title="Active units against the objective (completed trials; colour: target β)",
        xaxis_title="active units at the end",
        yaxis_title=objective,
        height=420,
        coloraxis={"colorscale": "Viridis", "colorbar": {"title": {"text": "log10 β"}}},
        legend={"orientation": "h", "y": -0.25},
        showlegend=True,
        plot_bgcolor="#f4f4f4",
    )
    fig.layout.template = TEMPLATE  # assigned, not updated: an update merges into the default
    if not done:
        fig.add_annotation(
            text="no completed trial yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper"
        )
    return fig


def objective_label(study: optuna.Study) -> str:
    """Name of the objective, guessed from the best trial's ``final`` figures."""
    names = {"nll_iwae": "validation IWAE NLL bound, nats", "elbo": "validation −ELBO, nats"}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        final = t.user_attrs.get("final") or {}
        for key, label in names.items():
            if (
                t.value is not None
                and isinstance(final.get(key), (int, float))
                and math.isclose(final[key], t.value, rel_tol=1e-9)
            ):
                return label
    return "objective value"


def study_figures(study: optuna.Study) -> dict[str, go.Figure]:
    """The study's figures by graph-object id."""
    points = trial_points(study)
    return {
        COLLAPSE_MAP_ID: collapse_map(points),
        ACTIVE_VS_OBJECTIVE_ID: active_vs_objective(points, objective_label(study)),
    }


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
