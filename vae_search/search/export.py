"""Export the best trials as run configs that ``vae-search train`` runs as they are.

Each file is the trial's resolved run config with a ``provenance`` section (ignored by training):
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
from vae_search.search.summary import is_collapsed, ranked


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
    exclude_collapsed: bool = False,
    storage: str = "",
) -> list[Path]:
    """Write the ``top`` best trials: to ``out`` itself when top is 1, else into the directory
    ``out`` as ``rank<i>-trial<n>.yaml``. Return the files written.

    Raises:
        VaeSearchError: no trial has completed (or none that did not collapse).
    """
    trials = ranked(study, exclude_collapsed)
    if not trials:
        which = (
            "no completed trial that kept its active units"
            if exclude_collapsed
            else "no completed trial"
        )
        raise VaeSearchError(
            f"study {study.study_name!r} has {which} yet; run workers first "
            f"(vae-search status {study.study_name} shows its trials)"
        )
    chosen = trials[:top]
    if top == 1:
        paths = [out]
    else:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"rank{i + 1}-trial{t.number}.yaml" for i, t in enumerate(chosen)]
    for i, (t, path) in enumerate(zip(chosen, paths)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(trial_config(study, t, i + 1, storage).to_yaml())
    return paths
