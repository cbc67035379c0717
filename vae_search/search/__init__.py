"""The search layer: study specs, the collapse-aware pruner and the study storage.

It turns an Optuna trial into a :class:`~vae_search.config.RunConfig` (:func:`sample_run`) and
knows nothing of training; the objective reports active units and metrics back through the
trial (see :mod:`vae_search.search.pruner` for that contract).
"""

from __future__ import annotations

from vae_search.search.pruner import (
    COLLAPSE_CONSTRAINT,
    CollapseHyperbandPruner,
    CollapsePruner,
    build_pruner,
    collapse_constraint,
    collapse_threshold,
    constraints_func,
    prune_reason,
    record_collapse_constraint,
)
from vae_search.search.spec import StudySpec, build_sampler, sample_run
from vae_search.search.storage import create_or_load_study, open_storage, redact, resolve_url

__all__ = [
    "COLLAPSE_CONSTRAINT",
    "CollapseHyperbandPruner",
    "CollapsePruner",
    "StudySpec",
    "build_pruner",
    "build_sampler",
    "collapse_constraint",
    "collapse_threshold",
    "constraints_func",
    "create_or_load_study",
    "open_storage",
    "prune_reason",
    "record_collapse_constraint",
    "redact",
    "resolve_url",
    "sample_run",
]
