"""The Pareto front helper against a brute-force front, and collapsed trials kept off it."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from vae_search.results.pareto import non_dominated, pareto_front


def brute_front(points: list[tuple[float, ...]]) -> set[int]:
    """Indices no other point dominates: a plain double loop (<= everywhere, < somewhere)."""
    keep = set()
    for i, p in enumerate(points):
        if not any(
            all(a <= b for a, b in zip(q, p)) and any(a < b for a, b in zip(q, p))
            for j, q in enumerate(points) if j != i
        ):
            keep.add(i)
    return keep


@pytest.mark.parametrize("seed", range(5))
def test_non_dominated_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    # rounded values: ties and duplicates happen, and must not dominate each other
    values = np.round(rng.normal(size=(40, 2 + seed % 2)), 1)
    mask = non_dominated(values)
    assert set(np.flatnonzero(mask)) == brute_front([tuple(v) for v in values])


def _study(points, collapsed=()):
    study = optuna.create_study(directions=["minimize", "maximize"])
    for i, (a, b) in enumerate(points):
        t = create_trial(
            values=[a, b], params={"x": float(i)}, distributions={"x": FloatDistribution(0, 100)},
            user_attrs={"final": {"active_units": 0 if i in collapsed else 3}},
        )
        study.add_trial(t)
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={"prune_reason": "collapse"}))
    return study


def test_front_respects_directions_and_matches_optuna():
    pts = [(1.0, 1.0), (2.0, 3.0), (3.0, 2.0), (0.5, 0.2), (2.0, 2.0)]
    study = _study(pts)
    # maximising the second value: (2, 3) beats (2, 2) and (3, 2); (1, 1) and (0.5, 0.2) stay
    front = [t.number for t in pareto_front(study)]
    assert front == [3, 0, 1]
    assert sorted(front) == sorted(t.number for t in study.best_trials)


def test_collapsed_trials_are_off_the_front_unless_all_collapsed():
    study = _study([(1.0, 5.0), (2.0, 3.0)], collapsed={0})
    # trial 0 dominates trial 1 but it collapsed: the front is trial 1 alone
    assert [t.number for t in pareto_front(study)] == [1]
    assert [t.number for t in pareto_front(study, include_collapsed=True)] == [0]
    every = _study([(1.0, 5.0), (2.0, 3.0)], collapsed={0, 1})
    assert [t.number for t in pareto_front(every)] == [0]


def test_empty_study_has_an_empty_front():
    assert pareto_front(optuna.create_study(directions=["minimize", "minimize"])) == []
