"""What a study is: its spec file, its search space, the collapse rule and its pruners.

- :mod:`~vae_search.study.spec`: the study spec (YAML), every problem reported at once; the
  sampler and the pruner every worker builds from it; a trial turned into a run config;
- :mod:`~vae_search.study.space`: the search space over dotted run-config paths;
- :mod:`~vae_search.study.checks`: specs that cannot do what they say, refused or warned about;
- :mod:`~vae_search.study.collapse`: when a trial is collapsed, the collapse pruner, the
  collapse constraint;
- :mod:`~vae_search.study.pruning`: the spec's ``pruner:`` section and the pruner it builds;
- :mod:`~vae_search.study.objectives`: the objectives a study minimises, and their names.

It knows the run config and Optuna, and nothing of storage, training or the dashboard.
"""

from __future__ import annotations

from vae_search.study.collapse import (
    COLLAPSE_CONSTRAINT,
    CollapseHyperbandPruner,
    CollapsePruner,
    collapse_constraint,
    collapse_threshold,
    constraints_func,
    is_collapsed,
    prune_reason,
    record_collapse_constraint,
)
from vae_search.study.spec import StudySpec, build_pruner, build_sampler, sample_run

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
    "is_collapsed",
    "prune_reason",
    "record_collapse_constraint",
    "sample_run",
]
