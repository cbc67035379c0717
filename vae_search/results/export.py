"""Export the best trials as run configs that ``vae-search train`` runs as they are.

Each file is the trial's resolved run config (for token data with the trial's vocabulary in
``data.vocab``; for a custom model with ``model.factory``, ``model.options`` and
``model.factory_hash``) and a ``provenance`` section (ignored by training):
the study, the trial number, its value and final metrics, its parameters, and the versions of
Python, torch, optuna and vae-search that produced it.
"""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from vae_search import records
from vae_search.config import RunConfig
from vae_search.errors import VaeSearchError
from vae_search.results.pareto import pareto_front
from vae_search.results.summary import best_trials
from vae_search.study.collapse import is_collapsed
from vae_search.study.objectives import is_multi_objective, primary_value


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def versions() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        **{p: _version(p) for p in ("vae-search", "torch", "torchvision", "optuna")},
    }


def trial_config(study: optuna.Study, t: FrozenTrial, rank: int, storage: str) -> RunConfig:
    stored = records.trial_config(t)
    if stored is None:
        raise VaeSearchError(f"trial {t.number} has no stored config; export another trial with --top")
    cfg = RunConfig.from_dict(stored, source=f"trial {t.number}")
    vocab = records.record(t, records.VOCAB)
    if cfg.data.vocab is None and vocab:
        cfg.data.vocab = list(vocab)  # the re-run encodes text as the trial did
    cfg.provenance = {
        "study": study.study_name,
        "storage": storage,
        "trial": t.number,
        "rank": rank,
        "value": primary_value(t),
        **({"values": list(t.values), "objectives": list(study.metric_names or [])}
           if is_multi_objective(study) else {}),
        "params": t.params,
        "collapsed": is_collapsed(t),
        "final": records.record(t, records.FINAL),
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
    }
    return cfg


def export(
    study: optuna.Study,
    out: Path,
    *,
    top: int = 1,
    include_collapsed: bool = False,
    storage: str = "",
) -> list[Path]:
    """Write the ``top`` best trials (ranked as :func:`best_trials`: collapsed ones only with
    ``include_collapsed``, or when every trial collapsed): to ``out`` itself when top is 1, else
    into the directory ``out`` as ``rank<i>-trial<n>.yaml``. Return the files written.

    Raises:
        VaeSearchError: no trial has completed yet, or ``out`` cannot be written.
    """
    trials = best_trials(study, include_collapsed)
    if not trials:
        raise VaeSearchError(
            f"study {study.study_name!r} has no completed trial yet; run workers first "
            f"(vae-search status {study.study_name} shows its trials)"
        )
    chosen = trials[:top]
    if top == 1 and out.is_dir():
        raise VaeSearchError(f"-o {out}: is a directory; name a file (best.yaml), or use --top 2 or more")
    if top > 1 and out.exists() and not out.is_dir():
        raise VaeSearchError(f"-o {out}: is a file; --top {top} writes a directory of files")
    paths = [out] if top == 1 else [out / f"rank{i + 1}-trial{t.number}.yaml" for i, t in enumerate(chosen)]
    try:
        for i, (t, path) in enumerate(zip(chosen, paths)):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(trial_config(study, t, i + 1, storage).to_yaml())
    except OSError as e:
        raise VaeSearchError(f"-o {out}: cannot write {e.filename or out} ({e.strerror})") from e
    return paths


def export_pareto(
    study: optuna.Study, out: Path, *, include_collapsed: bool = False, storage: str = ""
) -> list[Path]:
    """Write every trial of the Pareto front (:func:`vae_search.results.pareto.pareto_front`)
    into the directory ``out`` as ``front<i>-trial<n>.yaml``, by the first objective.

    Raises:
        VaeSearchError: the study is single-objective, has no completed trial, or ``out``
            cannot be written.
    """
    if not is_multi_objective(study):
        raise VaeSearchError(
            f"--pareto: study {study.study_name!r} has one objective; use --top N instead"
        )
    front = pareto_front(study, include_collapsed)
    if not front:
        raise VaeSearchError(
            f"study {study.study_name!r} has no completed trial yet; run workers first "
            f"(vae-search status {study.study_name} shows its trials)"
        )
    if out.exists() and not out.is_dir():
        raise VaeSearchError(f"-o {out}: is a file; --pareto writes a directory of files")
    paths = [out / f"front{i + 1}-trial{t.number}.yaml" for i, t in enumerate(front)]
    try:
        out.mkdir(parents=True, exist_ok=True)
        for i, (t, path) in enumerate(zip(front, paths)):
            path.write_text(trial_config(study, t, i + 1, storage).to_yaml())
    except OSError as e:
        raise VaeSearchError(f"-o {out}: cannot write {e.filename or out} ({e.strerror})") from e
    return paths


def export_finalists(study: optuna.Study, out: Path, *, storage: str = "") -> Path:
    """Write the finalists' winner (lowest mean final NLL over seeds) as a run config, with its
    mean, sd, interval, seeds and the verdict on the search's ranking in ``provenance.finalists``.

    Raises:
        VaeSearchError: ``STUDY.final`` is missing or has no completed run, or ``out`` cannot
            be written.
    """
    from vae_search.results.finalists import load_final_study, summarize_finalists

    final = load_final_study(study)
    table = summarize_finalists(final) if final is not None else None
    if not table or not table["rows"]:
        raise VaeSearchError(
            f"study {study.study_name!r} has no finalists yet; run vae-search finalize {study.study_name}"
        )
    winner = table["rows"][0]
    t = study.trials[winner["trial"]]
    cfg = trial_config(study, t, 1, storage)
    cfg.provenance["finalists"] = {
        "study": table["study"], "split": table["split"], "k": table["k"], "interval": table["interval"],
        **{key: winner[key] for key in ("rank", "search_rank", "n", "mean", "sd", "low", "high",
                                        "seeds", "values", "active_units", "kl", "perplexity")},
        "verdict": (table.get("verdict") or {}).get("text"),
    }
    if out.is_dir():
        raise VaeSearchError(f"-o {out}: is a directory; name a file (winner.yaml)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(cfg.to_yaml())
    except OSError as e:
        raise VaeSearchError(f"-o {out}: cannot write {e.filename or out} ({e.strerror})") from e
    return out
