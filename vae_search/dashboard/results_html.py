"""Report sections about what a study found for a paper: the rate–distortion plane and the
Pareto front of a multi-objective study (more sections join here as they are added)."""

from __future__ import annotations

import html
from typing import Any

import optuna

from vae_search.dashboard.rate_distortion import rate_distortion_figure, rd_points
from vae_search.results.summary import summarize


def _e(v: Any) -> str:
    return html.escape(str(v))


def rate_distortion_html(study: optuna.Study) -> str:
    """The rate–distortion plane as an embedded plotly figure (no plotly.js: the page has it)."""
    points = rd_points(study)
    if not points:
        return ""
    fig = rate_distortion_figure(points)
    return ("<h2>Rate–distortion plane</h2>"
            + fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}))


def pareto_html(study: optuna.Study) -> str:
    """A table of the Pareto front (multi-objective studies only; empty otherwise)."""
    d = summarize(study).to_dict()
    if d.get("pareto") is None:
        return ""
    names = d.get("objectives") or []
    if not d["pareto"]:
        return "<h2>Pareto front</h2><p>No completed trial yet.</p>"
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    rows = "".join(
        f"<tr><td>{t['number']}</td>" + "".join(f"<td>{v:.4g}</td>" for v in t["values"])
        + f"<td>{t['active_units']}/{t['latent_dim']}{' (collapsed)' if t['collapsed'] else ''}</td></tr>"
        for t in d["pareto"]
    )
    return (
        "<h2>Pareto front</h2><p class='muted'>Non-dominated completed trials (Optuna's "
        "study.best_trials), collapsed trials left out unless every trial collapsed.</p>"
        f"<table><tr><th>trial</th>{head}<th>active units</th></tr>{rows}</table>"
    )
