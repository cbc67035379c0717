"""What the figures read of each trial: the β it reached, and the study's metric name."""

from __future__ import annotations

import warnings

import optuna
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from tests.conftest import small_config
from tests.dashboard.conftest import spec_dict
from vae_search.dashboard.study.points import trial_points
from vae_search.dashboard.trial.notes import beta_phrase, trial_note
from vae_search.dashboard.trial.publish import _subtitle
from vae_search.study.objectives import OBJECTIVE_LABELS, OBJECTIVES, objective_label
from vae_search.study.spec import StudySpec
from vae_search.workers.worker import open_study

DIST = {"schedule.beta": FloatDistribution(0.1, 50)}


def warmup_trial(state: TrialState, target: float, betas: list[float], **attrs) -> FrozenTrial:
    """A trial of a linear warm-up that stopped at ``betas[-1]``, short of ``target``."""
    config = {
        "model": {"latent_dim": 8},
        "prior": {"kind": "standard"},
        "schedule": {"kind": "linear", "rate": 0.2, "beta_start": 0.0},
    }
    return create_trial(
        state=state,
        value=50.0 if state == TrialState.COMPLETE else None,
        params={"schedule.beta": target},
        distributions=DIST,
        user_attrs={"config": config, "history": {"beta": betas}, "active_units": [8] * len(betas),
                    **attrs},
    )


def test_a_trial_is_placed_at_the_beta_it_reached(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    study.add_trial(warmup_trial(TrialState.PRUNED, 2.69, [0.15, 0.35], prune_reason="performance"))
    # a complete trial: its final figures say which β it ended with
    study.add_trial(warmup_trial(TrialState.COMPLETE, 4.0, [0.2, 0.4, 0.6], final={"beta": 0.6}))
    pruned, done = trial_points(study)
    # reached: the history's last β (pruned) and final.beta (complete); the target is the param
    assert (pruned.beta, pruned.target_beta) == (0.35, 2.69)
    assert (done.beta, done.target_beta) == (0.6, 4.0)
    # the hover says both
    assert "β reached 0.35 (target 2.69)" in pruned.hover()


def test_beta_is_worded_from_the_schedule():
    linear = small_config(schedule={"kind": "linear", "beta": 2.69, "rate": 0.2})
    # a warm-up cut short: what it reached, of which target, and how fast it rose
    phrase = "β reached 0.35 of target 2.69, linear at 0.2/epoch"
    assert beta_phrase(linear.schedule, 0.35) == phrase
    assert beta_phrase(linear.schedule, 2.69) == "β reached its target 2.69, linear at 0.2/epoch"
    constant = small_config(schedule={"kind": "constant", "beta": 33.1})
    # a constant β has no "from → to"
    assert beta_phrase(constant.schedule, 33.1) == "β = 33.1 (constant)"
    # the note and the pictures' subtitle say the same
    history = {"beta": [0.15, 0.35]}
    info = {"prune_reason": "performance", "pruned_epoch": 2, "pruned_active_units": 4}
    assert phrase in trial_note(3, linear, history, [4, 4], "pruned", info)
    assert phrase in _subtitle(linear, history, "pruned", info)
    assert "β = 33.1 (constant)" in _subtitle(constant, {"beta": [33.1]}, "complete", {})


def test_the_figures_objective_is_named_from_the_final_figures(finished_study):
    study = finished_study.load()
    # a single objective gives Optuna no metric name (its best-trial table stays narrow); the
    # study figures find the label in the trials' final figures
    assert study.metric_names is None
    assert objective_label(study) == OBJECTIVE_LABELS["nll_iwae"]


def test_naming_the_metrics_is_quiet_and_written_once(tmp_path, monkeypatch):
    raw = spec_dict()
    raw["objective"] = ["distortion", "rate"]
    raw["pruner"].pop("performance", None)  # none: the only kind a multi-objective study runs
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = StudySpec.from_file(tmp_path / "spec.yaml")
    url = f"sqlite:///{tmp_path / 's.db'}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study, _ = open_study(spec, url)
    # no "experimental" warning on a worker's start
    assert not [w for w in caught if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]
    assert study.metric_names == ["val D", "val R"]
    assert objective_label(study) == OBJECTIVES["distortion"].label  # the axes' long label
    calls = []
    monkeypatch.setattr(optuna.Study, "set_metric_names", lambda self, names: calls.append(names))
    open_study(spec, url)
    # a worker joining a named study reads the name and writes nothing
    assert calls == []
