"""The Pareto front of a multi-objective study, as ``status``, ``export --pareto``, the summary
and the report list it.

Optuna's ``study.best_trials`` is the set of non-dominated COMPLETE trials (feasible ones when
constraints are recorded). vae-search keeps collapsed trials off the front, as ``export`` keeps
them off the single-objective ranking, unless every trial collapsed: so the front is computed
here over the same candidates :func:`front_candidates` picks. It equals ``study.best_trials``
whenever the collapse constraint is recorded (``pruner.constraint: true``) and some trial kept
its active units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from vae_search.study.collapse import is_collapsed
from vae_search.study.warm_start import is_warm_copy


def finished_with_values(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials whose every value is finite."""
    return [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values and all(v is not None and math.isfinite(v) for v in t.values)
        and not is_warm_copy(t)  # another study's result, given to the sampler only
    ]


def front_candidates(study: optuna.Study, include_collapsed: bool = False) -> list[FrozenTrial]:
    """Completed trials that kept their active units (all completed ones when every one
    collapsed, or with ``include_collapsed``)."""
    trials = finished_with_values(study)
    if include_collapsed:
        return trials
    return [t for t in trials if not is_collapsed(t)] or trials


def non_dominated(values: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``values`` (minimised, one column per objective) that no other row
    dominates (<= in every column and < in one). Equal rows do not dominate each other."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    le = (values[:, None, :] <= values[None, :, :]).all(axis=2)  # le[i, j]: i <= j everywhere
    lt = (values[:, None, :] < values[None, :, :]).any(axis=2)
    dominated = (le & lt).any(axis=0)  # some i dominates j
    return ~dominated


def pareto_front(study: optuna.Study, include_collapsed: bool = False) -> list[FrozenTrial]:
    """The study's Pareto front over :func:`front_candidates`, ordered by the first objective
    (then the trial number). For a single-objective study: the best trial(s)."""
    trials = front_candidates(study, include_collapsed)
    return front_of(trials, study.directions)


def front_of(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> list[FrozenTrial]:
    """The non-dominated trials among ``trials`` under ``directions``, by the first objective."""
    if not trials:
        return []
    sign = np.array([1.0 if d == StudyDirection.MINIMIZE else -1.0 for d in directions])
    values = np.array([t.values for t in trials], dtype=float) * sign
    on_front = non_dominated(values)
    front = [t for t, keep in zip(trials, on_front) if keep]
    return sorted(front, key=lambda t: (t.values[0] * sign[0], t.number))
