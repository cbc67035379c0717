"""The progress line and the study summary on a hand-made study."""

from __future__ import annotations

import io

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from vae_search.results.summary import summarize
from vae_search.study.collapse import is_collapsed
from vae_search.workers.progress import StudyProgress


def make_study() -> optuna.Study:
    study = optuna.create_study()
    dist = {"schedule.beta": FloatDistribution(0.1, 10)}
    attrs = {"config": {"epochs": 5}, "latent_dim": 4}
    study.add_trial(create_trial(value=30.0, params={"schedule.beta": 1.0}, distributions=dist,
                                 user_attrs={**attrs, "active_units": [4, 4], "final": {"active_units": 4}}))
    study.add_trial(create_trial(value=20.0, params={"schedule.beta": 9.0}, distributions=dist,
                                 user_attrs={**attrs, "active_units": [0, 0], "final": {"active_units": 0}}))
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"schedule.beta": 5.0}, distributions=dist,
                                 user_attrs={**attrs, "active_units": [0, 0], "prune_reason": "collapse"}))
    # running, at epoch 3: its reports are per epoch, its attributes written at epoch 1 so far
    study.add_trial(create_trial(state=TrialState.RUNNING, params={"schedule.beta": 2.0}, distributions=dist,
                                 intermediate_values={1: 90.0, 2: 80.0, 3: 75.0},
                                 user_attrs={**attrs, "active_units": [3]}))
    return study


def test_summary_splits_pruned_and_skips_collapsed_best():
    d = summarize(make_study()).to_dict()
    assert d["states"]["COMPLETE"] == 2 and d["states"]["PRUNED"] == 1 and d["states"]["RUNNING"] == 1
    assert d["pruned"] == {"collapse": 1, "performance": 0,
                           # the collapsed trial trained 2 of its 5 epochs (its active units)
                           "collapse_epochs_saved": 5 - 2, "collapse_epochs_planned": 5}
    # trial 1 has the lower value but no active unit left: the best is trial 0
    assert d["best"]["number"] == 0 and d["best"]["active_units"] == 4
    assert d["running"] == [{"number": 3, "epoch": 3, "epochs": 5, "params": {"schedule.beta": 2.0}}]


def test_is_collapsed_reads_reason_constraint_or_final_units():
    trials = make_study().trials
    assert [is_collapsed(t) for t in trials[:3]] == [False, True, True]


def test_progress_line_counts_and_running_epochs():
    stream = io.StringIO()
    line = StudyProgress(make_study(), n_trials=6, stream=stream).line()
    assert "trials 3/6 (pruned 1)" in line
    assert "best 30.000" in line  # trial 1 (20.0) collapsed
    assert "#3 ep 3/5" in line


def test_a_running_trial_without_its_config_yet_shows_the_specs_epochs():
    study = optuna.create_study()
    dist = {"schedule.beta": FloatDistribution(0.1, 10)}
    # just started: no user attribute written, one epoch reported
    study.add_trial(create_trial(state=TrialState.RUNNING, params={"schedule.beta": 2.0}, distributions=dist,
                                 intermediate_values={1: 90.0}))
    assert "#0 ep 1/8" in StudyProgress(study, n_trials=4, stream=io.StringIO(), epochs=8).line()
    assert "#0 ep 1/?" in StudyProgress(study, n_trials=4, stream=io.StringIO()).line()
