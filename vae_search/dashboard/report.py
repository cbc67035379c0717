"""``vae-search report``: one self-contained HTML page about a study.

The page opens with no network: plotly's JavaScript is inlined once, every picture is a base64
``data:`` URI read from the artifact store. It holds the study summary, the collapse map, the
best trials with their pictures, figures and the settings that reproduce them (run config as
YAML and the ``vae-search export`` / ``train`` commands), and a table of every trial.
"""

from __future__ import annotations

import base64
import html
import logging
import re
import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.artifacts._protocol import ArtifactStore
from optuna.trial import FrozenTrial

from vae_search import records
from vae_search.dashboard.artifacts import trial_artifacts
from vae_search.dashboard.results_html import (
    finalists_html,
    pareto_html,
    rate_distortion_html,
    references_html,
)
from vae_search.dashboard.study.points import TrialPoint, trial_points
from vae_search.dashboard.study.study_figures import active_vs_objective, collapse_map
from vae_search.dashboard.trial.notes import mutual_info_text
from vae_search.dashboard.trial.publish import NOT_WRITTEN, PICTURES, not_written_png
from vae_search.results.summary import best_trials, completed, summarize
from vae_search.study.collapse import is_collapsed
from vae_search.study.objectives import objective_label, primary_value

log = logging.getLogger(__name__)

# a masked secret query key, with the separator before it and whether another key follows
_MASKED_QUERY = re.compile(r"([?&])(?:password|passwd|pwd)=\*\*\*(&?)", re.I)

TOP = 5
_CSS = """
body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:24px auto;max-width:1200px;
color:#222;padding:0 16px}h1{margin-bottom:4px}.muted{color:#666}table{border-collapse:collapse;
margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;font-size:14px}
th{background:#f4f4f4}pre{background:#f6f6f6;padding:10px;overflow:auto;font-size:13px;
max-height:360px}.pics{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.pics figure{margin:0}.pics img{max-width:100%;border:1px solid #ddd;image-rendering:pixelated}
.trial{border-top:2px solid #ccc;margin-top:28px;padding-top:8px}.warn{color:#a40}
"""


def _e(v: Any) -> str:
    return html.escape(str(v))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def trial_pictures(
    study: optuna.Study, t: FrozenTrial, store: ArtifactStore | None
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The trial's PNG artifacts as (file name, bytes), report order, and what is missing."""
    metas = trial_artifacts(study._storage, t._trial_id, mimetype_prefix="image/")
    if not metas:
        return [], ["no pictures were published for this trial"]
    if store is None:
        return [], ["no artifact store given (--artifact-dir)"]
    order = {name: i for i, name in enumerate(PICTURES)}
    metas.sort(key=lambda m: (order.get(m.filename, len(order)), m.filename))
    found, missing = [], []
    for m in metas:
        try:
            with store.open_reader(m.artifact_id) as f:
                data = f.read()
        except Exception:  # noqa: BLE001 - a missing file is reported in the page
            data = None
        if data is None or data == not_written_png():  # gone, or its worker stopped before drawing it
            missing.append(f"{m.filename}: {NOT_WRITTEN} (artifact {m.artifact_id})")
        else:
            found.append((m.filename, data))
    return found, missing


def _summary_html(study: optuna.Study) -> str:
    d = summarize(study).to_dict()
    st = d["states"]
    rows = "".join(f"<tr><th>{_e(k.lower())}</th><td>{v}</td></tr>" for k, v in st.items() if v)
    rows += (
        f"<tr><th>pruned for collapse</th><td>{d['pruned']['collapse']}</td></tr>"
        f"<tr><th>pruned for performance</th><td>{d['pruned']['performance']}</td></tr>"
    )
    b = d["best"]
    if b is None:
        best = "<p>No trial has completed yet.</p>"
    else:
        params = ", ".join(f"{_e(k)} = {_e(_fmt(v))}" for k, v in b["params"].items())
        best = (
            f"<p><b>{'First trial of the Pareto front' if d.get('pareto') else 'Best trial'}: "
            f"{b['number']}</b>, value {b['value']:.4f}, active units "
            f"{b['active_units']}/{b['latent_dim']}{' (collapsed)' if b['collapsed'] else ''}"
            f"<br><span class='muted'>{params}</span></p>"
        )
    return f"<h2>Summary</h2><table>{rows}</table>{best}"


def _trial_html(
    study: optuna.Study,
    t: FrozenTrial,
    rank: int,
    store: ArtifactStore | None,
    storage_label: str,
) -> str:
    final = records.trial_final(t)
    figures = {
        "value": primary_value(t),
        **{
            k: final[k]
            for k in (
                "active_units",
                "latent_dim",
                "nll_iwae",
                "iwae_samples",
                "elbo",
                "recon",
                "kl",
                "mutual_info",
            )
            if k in final
        },
    }
    if isinstance(figures.get("mutual_info"), (int, float)):  # noise around 0, or its ceiling
        batch = ((records.trial_config(t) or {}).get("eval") or {}).get("batch_size")
        if isinstance(batch, int):
            figures["mutual_info"] = mutual_info_text(figures["mutual_info"], batch)
    fig_rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in figures.items()
    )
    param_rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in t.params.items()
    )
    found, missing = trial_pictures(study, t, store)
    pics = "".join(
        f"<figure><img alt='{_e(name)}' src='data:image/png;base64,"
        f"{base64.b64encode(data).decode()}'><figcaption class='muted'>{_e(name)}"
        f"</figcaption></figure>"
        for name, data in found
    )
    warn = "".join(f"<p class='warn'>Pictures: {_e(m)}.</p>" for m in missing)
    out = "best.yaml" if rank == 1 else "best/"
    url, has_password = paste_url(storage_label)
    export = ["vae-search", "export", study.study_name, "--storage", url]
    export += (["--top", str(rank)] if rank > 1 else []) + ["-o", out]
    config_file = "best.yaml" if rank == 1 else f"best/rank{rank}-trial{t.number}.yaml"
    note = f"<p class='muted'>{_e(password_note(url))}</p>" if has_password else ""
    cfg = yaml.safe_dump(records.trial_config(t) or {}, sort_keys=False)
    return (
        f"<section class='trial' id='trial-{t.number}'><h3>#{rank}: trial {t.number}</h3>"
        f"<div style='display:flex;gap:24px;flex-wrap:wrap'><table>{fig_rows}</table>"
        f"<table>{param_rows}</table></div><div class='pics'>{pics}</div>{warn}"
        f"<p>Reproduce it:</p><pre>{_e(shlex.join(export))}\n"
        f"{_e(shlex.join(['vae-search', 'train', config_file]))}</pre>{note}"
        f"<details><summary>run config (YAML)</summary><pre>{_e(cfg)}</pre></details></section>"
    )


def _all_trials_html(study: optuna.Study) -> str:
    head = (
        "<tr><th>trial</th><th>state</th><th>pruned for</th><th>β reached (target)</th>"
        "<th>rate</th><th>latent</th><th>prior</th><th>active</th><th>value</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{p.number}</td><td>{_e(p.state.lower())}</td>"
        f"<td>{_e(p.prune_reason or '')}</td><td>{_e(_beta_cell(p))}</td>"
        f"<td>{_e(_fmt(p.rate) if p.schedule in (None, 'linear') else '')}</td>"
        f"<td>{_e(p.latent_dim)}</td><td>{_e(p.prior)}</td><td>{_e(p.active_units)}</td>"
        f"<td>{_e(_fmt(p.value) if p.value is not None else '')}</td></tr>"
        for p in sorted(trial_points(study), key=lambda p: p.number)
    )
    return f"<details><summary>all finished trials</summary><table>{head}{rows}</table></details>"


def _beta_cell(p: TrialPoint) -> str:
    """'0.35 (target 2.69)'; a constant schedule's one β, '33.1 (constant)'."""
    if p.schedule == "constant":
        return f"{_fmt(p.target_beta)} (constant)"
    return f"{_fmt(p.beta) if p.beta is not None else '?'} (target {_fmt(p.target_beta)})"


def paste_url(label: str) -> tuple[str, bool]:
    """The redacted storage ``label`` as a URL that can be pasted: its ``:***`` password
    (and any ``password=***`` query key) left out, not masked; and whether one was there."""
    url = label.replace(":***@", "@")
    url = _MASKED_QUERY.sub(lambda m: m.group(1) if m.group(2) else "", url).rstrip("?&")
    return url, url != label


def password_note(url: str) -> str:
    """Where the password of a pasted command comes from."""
    if url.startswith("postgres"):
        return (
            "The password is not in this report: libpq reads it from ~/.pgpass or PGPASSWORD "
            "(or set VAE_SEARCH_STORAGE to the full URL and leave out --storage)."
        )
    return (
        "The password is not in this report: set VAE_SEARCH_STORAGE to the full URL and "
        "leave out --storage."
    )


def render_report(
    study: optuna.Study, store: ArtifactStore | None, *, storage_label: str, top: int = TOP
) -> str:
    """The report page as a string (see the module docstring)."""
    points = trial_points(study)
    figs = [collapse_map(points), active_vs_objective(points, objective_label(study))]
    plots = "".join(
        f.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        for i, f in enumerate(figs)
    )
    best = best_trials(study)  # the order `export` writes them in
    exclude = any(not is_collapsed(t) for t in best)
    left_out = len(completed(study)) - len(best)
    rule = (
        "Ranked by the objective among completed trials that kept active units"
        + (f" ({left_out} collapsed trial(s) left out)." if left_out else ".")
        if exclude
        else "Ranked by the objective among completed trials."
    )
    trials = (
        "".join(
            _trial_html(study, t, i + 1, store, storage_label)
            for i, t in enumerate(best[:top])
        )
        or "<p>No completed trial yet.</p>"
    )
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>vae-search report: {_e(study.study_name)}</title><style>{_CSS}</style></head>"
        f"<body><h1>Study {_e(study.study_name)}</h1><p class='muted'>storage {_e(storage_label)}"
        f" · written {when}</p>{_summary_html(study)}{pareto_html(study)}<h2>Collapse map</h2>{plots}"
        # after the first figure, which carries plotly.js
        f"{rate_distortion_html(study)}{references_html(study)}{finalists_html(study)}"
        f"{_all_trials_html(study)}<h2>Best trials</h2><p class='muted'>{_e(rule)}</p>{trials}"
        "</body></html>"
    )


def write_report(
    study: optuna.Study,
    store: ArtifactStore | None,
    out: Path,
    *,
    storage_label: str,
    top: int = TOP,
) -> Path:
    """Write :func:`render_report` to ``out`` (parents created) and return it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        render_report(study, store, storage_label=storage_label, top=top), encoding="utf-8"
    )
    log.info("report of study %s written to %s", study.study_name, out)
    return out
