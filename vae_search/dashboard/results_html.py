"""Report sections about what a study found for a paper: the rate–distortion plane and the
Pareto front of a multi-objective study (more sections join here as they are added)."""

from __future__ import annotations

import html
from typing import Any

import optuna

from vae_search.dashboard.study.rate_distortion import rate_distortion_figure, rd_points
from vae_search.results.summary import summarize


def _e(v: Any) -> str:
    return html.escape(str(v))


def _fig_html(fig: Any) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})


def references_html(study: optuna.Study) -> str:
    """The published figures the spec names, beside the study's best, and the history chart."""
    from vae_search.dashboard.study.reference_charts import history_figure
    from vae_search.study.references import read_references, reference_line

    refs = read_references(study)
    if not refs:
        return ""
    items = "".join(f"<li>{_e(reference_line(r))}</li>" for r in refs)
    return (f"<h2>Published figures</h2><ul class='references'>{items}</ul>"
            + _fig_html(history_figure(study, refs)))


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


def _num(v: Any, digits: int = 2) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "–"


def finalists_html(study: optuna.Study) -> str:
    """The finalists' table (``vae-search finalize``) when STUDY.final exists; else empty."""
    from vae_search.results.finalists import load_final_study, summarize_finalists

    final = load_final_study(study)
    if final is None:
        return ""
    table = summarize_finalists(final)
    if not table["rows"]:
        return "<h2>Finalists</h2><p>No finalist run has completed yet.</p>"
    rows = "".join(
        f"<tr><td>{r['rank']}</td><td>{r['trial']}</td><td>{r['search_rank']}</td><td>{r['n']}</td>"
        f"<td>{_num(r['mean'], 3)}</td><td>{_num(r['sd'], 3)}</td>"
        f"<td>{'[' + _num(r['low']) + ', ' + _num(r['high']) + ']' if r['low'] is not None else '–'}</td>"
        f"<td>{_num(r['active_units'], 1)}</td><td>{_num(r['kl'])}</td>"
        + (f"<td>{_num(r['perplexity'], 1)}</td>" if any(x['perplexity'] is not None for x in table['rows']) else "")
        + "</tr>"
        for r in table["rows"]
    )
    ppl = "<th>perplexity</th>" if any(x["perplexity"] is not None for x in table["rows"]) else ""
    verdict = table.get("verdict") or {}
    from vae_search.dashboard.study.reference_charts import finalists_figure
    from vae_search.study.references import read_references

    chart = _fig_html(finalists_figure(table, read_references(study)))
    return (
        f"<h2>Finalists</h2><p class='muted'>{_e(table['split'])} NLL bound, IWAE k = {_e(table['k'])}, "
        f"nats, over seeds; {_e(table['interval'])}. Ranked by the mean.</p>"
        "<table class='finalists'><tr><th>rank</th><th>trial</th><th>search rank</th><th>seeds</th>"
        "<th>mean NLL</th><th>sd</th><th>95% interval</th><th>active units</th><th>KL</th>"
        f"{ppl}</tr>{rows}</table>"
        + (f"<p class='{'warn' if verdict.get('differs') else 'muted'}'>{_e(verdict.get('text', ''))}</p>")
        + chart
    )
