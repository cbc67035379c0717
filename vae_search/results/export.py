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

from vae_search.config import RunConfig
from vae_search.errors import VaeSearchError
from vae_search.results.summary import best_trials
from vae_search.study.collapse import is_collapsed


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
    cfg = RunConfig.from_dict(t.user_attrs["config"], source=f"trial {t.number}")
    if cfg.data.vocab is None and t.user_attrs.get("vocab"):
        cfg.data.vocab = list(t.user_attrs["vocab"])  # the re-run encodes text as the trial did
    cfg.provenance = {
        "study": study.study_name,
        "storage": storage,
        "trial": t.number,
        "rank": rank,
        "value": t.value,
        "params": t.params,
        "collapsed": is_collapsed(t),
        "final": t.user_attrs.get("final"),
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
