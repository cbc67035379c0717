"""The finalists' statistics against SciPy, and the flag on the search's ranking."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import create_trial
from scipy import stats

from vae_search.errors import ConfigError
from vae_search.results.finalists import finalist_rows, t_interval, verdict
from vae_search.study.spec import StudySpec


def _final(groups):
    """A finalists' study: {search trial: (search rank, [value per seed])}."""
    study = optuna.create_study()
    for trial, (rank, values) in groups.items():
        for j, v in enumerate(values):
            study.add_trial(create_trial(value=v, user_attrs={
                "finalist": {"trial": trial, "rank": rank, "seed": j + 1, "split": "test"},
                "final": {"test": {"nll_iwae": v, "active_units": 3 + j, "kl": 2.0}}}))
    return study


def test_t_interval_matches_scipy():
    x = np.array([91.2, 90.4, 92.9, 90.1, 91.7])
    mean, sd, low, high = t_interval(list(x))
    assert (low, high) == pytest.approx(stats.t.interval(0.95, df=4, loc=x.mean(), scale=stats.sem(x)))
    assert sd == pytest.approx(x.std(ddof=1))
    assert t_interval([90.0]) == (90.0, None, None, None)  # one seed: no interval


def test_the_search_best_is_flagged_only_beyond_noise():
    # search rank 1 (trial 4) is clearly worse than trial 7 over seeds
    rows = finalist_rows(_final({4: (1, [95.0, 95.2, 94.9]), 7: (2, [90.0, 90.1, 89.8])}))
    assert [r.trial for r in rows] == [7, 4] and rows[0].active_units == pytest.approx(4.0)
    v = verdict(rows)
    p = stats.ttest_ind([90.0, 90.1, 89.8], [95.0, 95.2, 94.9], equal_var=False).pvalue
    assert v["differs"] and v["p_value"] == pytest.approx(p) and "NOT the finalists' best" in v["text"]
    # overlapping seeds: a lower mean, but within noise
    noisy = verdict(finalist_rows(_final({4: (1, [95.0, 85.0, 92.0]), 7: (2, [90.0, 93.0, 88.0])})))
    assert noisy["finalists_best"] == 7 and not noisy["differs"] and "within noise" in noisy["text"]


def test_a_search_spec_never_reads_the_test_split(spec_dict):
    raw = spec_dict()
    raw["run"]["eval"] = {"test": True}
    with pytest.raises(ConfigError, match="a search never reads the test split"):
        StudySpec.from_dict(raw)
