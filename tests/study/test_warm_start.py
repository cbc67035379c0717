"""Warm start: an earlier study's finished trials reach the new study's sampler where the
spaces agree; parameters outside the new space are reported and skipped."""

from __future__ import annotations

import logging
import warnings

import optuna
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from tests.workers.test_records import assert_narrow
from vae_search import records
from vae_search.study.spec import StudySpec
from vae_search.study.warm_start import is_warm_copy
from vae_search.workers import budget
from vae_search.workers.worker import WorkerOptions, run_worker


def _source(url: str) -> optuna.Study:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = optuna.create_study(study_name="src", storage=url)
    dists = {"model.latent_dim": IntDistribution(2, 64), "schedule.rate": FloatDistribution(0.01, 2.0)}
    for latent, rate, nll in [(2, 0.5, 91.0), (3, 0.2, 90.0), (40, 0.3, 85.0)]:
        src.add_trial(create_trial(
            value=nll, params={"model.latent_dim": latent, "schedule.rate": rate}, distributions=dists,
            user_attrs={"final": {"nll_iwae": nll, "elbo": nll + 2, "active_units": 2}},
        ))
    return src


def test_agreeing_parameters_reach_the_sampler_and_outside_ones_are_reported(spec_dict, tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    _source(url)
    raw = spec_dict(
        study="new", n_trials=1, sampler={"kind": "bruteforce", "seed": 0},
        pruner={"performance": {"kind": "none"}},
        space={"model.latent_dim": {"type": "int", "low": 2, "high": 4}},
        warm_start={"study": "src", "top": 10},
    )
    raw["run"].update({"epochs": 1, "device": "cpu", "threads": 1})
    raw["run"]["eval"] = {"iwae_samples": 2, "iwae_max_examples": 20}
    spec = StudySpec.from_dict(raw)
    with caplog.at_level(logging.INFO, logger="vae_search.study.warm_start"):
        run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp_path / "art"), threads=1))
    study = optuna.load_study(study_name="new", storage=url)
    copies = [t for t in study.trials if is_warm_copy(t)]
    # latent sizes 2 and 3 agree with the new space and keep their values; 40 lies outside it
    assert sorted((t.params["model.latent_dim"], t.value) for t in copies) == [(2, 91.0), (3, 90.0)]
    # schedule.rate is not in the new space: dropped from the copies ...
    assert all(set(t.params) == {"model.latent_dim"} for t in copies)
    # ... and reported, as is the trial outside the range
    report = study.user_attrs["warm_start"]
    assert report["outside_params"] == {"schedule.rate": [0, 1]}  # trial 2 was skipped whole
    assert report["skipped_trials"] == [{"trial": 2, "why": "model.latent_dim = 40 is outside the new space"}]
    assert "parameter schedule.rate is not in this study's space; skipped" in caplog.text
    # the sampler saw them: brute force, which never repeats a tried point, ran latent size 4
    own = [t for t in study.trials if not is_warm_copy(t)]
    assert [t.params["model.latent_dim"] for t in own] == [4] and own[0].state == TrialState.COMPLETE
    # the copies do not use the budget (1 trial, run) and are not this study's best
    assert budget.remaining(study, 1)[0] == 0
    from vae_search.results.summary import best_trials

    assert [t.number for t in best_trials(study)] == [own[0].number]
    # a copy says where it came from in its record, not in a user attribute: plain Optuna
    # prints the copies (every trial's row, and the best) as narrow as any other trial
    assert sorted(records.record(t, records.WARM_START)["trial"] for t in copies) == [0, 1]
    assert all(t.user_attrs == {} for t in copies)
    assert_narrow("new", url, commands=("trials", "best-trial"))


def test_an_older_studys_copy_marked_in_its_user_attributes_is_still_a_copy():
    old = create_trial(value=1.0, user_attrs={"warm_start": {"study": "src", "trial": 3}})
    assert is_warm_copy(old) and not is_warm_copy(create_trial(value=1.0))
