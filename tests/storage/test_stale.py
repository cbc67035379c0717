"""The stale-trial sweep: every trial failed by the heartbeat gets exactly one retry, even when
the worker that failed it died before enqueuing it; no other failure is retried."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from vae_search.storage.stale import STALE_ATTR, fail_stale_trials

pytestmark = [
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
    # ask/tell stands in for the workers here; they run trials with study.optimize
    pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize"),
]


@pytest.fixture
def study(tmp_path) -> optuna.Study:
    storage = RDBStorage(
        f"sqlite:///{tmp_path / 's.db'}",
        heartbeat_interval=1,
        grace_period=2,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
    )
    return optuna.create_study(study_name="s", storage=storage)


def start(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    study._storage.record_heartbeat(trial._trial_id)
    return trial


def retries_of(study: optuna.Study, number: int) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if number in t.system_attrs.get("retry_history", ())]


def test_a_stale_trial_fails_and_is_retried_once(study):
    trial = start(study)
    assert fail_stale_trials(study) == []  # still beating
    time.sleep(3.5)  # past the grace period (2 s, whole seconds)
    assert fail_stale_trials(study) == [trial.number]
    frozen = study._storage.get_trial(trial._trial_id)
    assert frozen.state == TrialState.FAIL and frozen.system_attrs[STALE_ATTR] == trial.number
    (retry,) = retries_of(study, trial.number)
    assert retry.state == TrialState.WAITING and retry.params == frozen.params
    assert fail_stale_trials(study) == [] and len(retries_of(study, trial.number)) == 1


def test_a_trial_failed_but_never_re_queued_is_re_queued_by_the_next_sweep(study):
    trial = start(study)
    # the first step of a sweep whose worker then died: marked and failed, no retry
    study._storage.set_trial_system_attr(trial._trial_id, STALE_ATTR, trial.number)
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    assert retries_of(study, trial.number) == []
    assert fail_stale_trials(study) == [trial.number]
    assert len(retries_of(study, trial.number)) == 1
    assert fail_stale_trials(study) == []


def test_other_failures_are_not_retried(study):
    plain = start(study)
    study.tell(plain, state=TrialState.FAIL)  # a failure of the run itself (NaN, OOM)
    stale = start(study)
    time.sleep(3.5)  # past the grace period (2 s, whole seconds)
    fail_stale_trials(study)
    (retry,) = retries_of(study, stale.number)
    # the retry inherits the original's system attrs, its mark included; run, it fails for a
    # reason of its own: that is not a stale trial, and it is not retried
    assert retry.system_attrs[STALE_ATTR] == stale.number
    again = study.ask()
    assert again.number == retry.number  # the queued retry runs next
    study.tell(again, state=TrialState.FAIL)
    assert fail_stale_trials(study) == []
    assert retries_of(study, plain.number) == [] and retries_of(study, retry.number) == []


def test_max_retry_is_kept(study):
    number = start(study).number
    for _ in range(3):  # the original and its two retries all go stale
        time.sleep(3.5)  # past the grace period (2 s, whole seconds)
        fail_stale_trials(study)
        waiting = study.get_trials(states=(TrialState.WAITING,))
        if not waiting:
            break
        t = study.ask()
        study._storage.record_heartbeat(t._trial_id)
    history = [t for t in study.get_trials() if t.system_attrs.get("failed_trial") == number]
    assert len(history) == 2  # max_retry=2: two retries, then the trial stays failed
    assert all(t.state == TrialState.FAIL for t in study.get_trials())
    assert fail_stale_trials(study) == []
