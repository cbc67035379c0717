"""Stopping a worker: the first SIGTERM finishes the trial, the second re-queues it."""

from __future__ import annotations

import signal
import time
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from tests.workers.test_worker import start_worker, write_spec
from vae_search import records

pytestmark = pytest.mark.slow


def wait_for_epoch(url: str, name: str, epoch: int, proc, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                study = optuna.load_study(study_name=name, storage=url)
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        except KeyError:
            running = []
        if running and len(running[0].intermediate_values) >= epoch:
            return running[0]
        if proc.poll() is not None:
            pytest.fail("worker exited early: " + proc.communicate()[0])
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"no trial reached epoch {epoch}: {proc.communicate()[0]}")


def test_first_sigterm_finishes_the_trial_then_exits(tmp_path):
    url = f"sqlite:///{tmp_path / 'st.db'}"
    spec = write_spec(tmp_path / "s.yaml", "term1", n_trials=5, epochs=6, size=4000)
    proc = start_worker(spec, url, 0, tmp_path / "a")
    trial = wait_for_epoch(url, "term1", 1, proc)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    assert "finishing the current trial" in out
    trials = optuna.load_study(study_name="term1", storage=url).trials
    # the trial in progress was finished, and no other was started
    assert trials[trial.number].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert len(trials) == trial.number + 1


def test_second_sigterm_stops_now_and_requeues_with_the_checkpoint(tmp_path):
    url = f"sqlite:///{tmp_path / 'st.db'}"
    # 24 epochs: on a loaded machine the trial must still be training when the signals come
    spec = write_spec(tmp_path / "s.yaml", "term2", n_trials=1, epochs=24, size=6000)
    proc = start_worker(spec, url, 0, tmp_path / "a")
    trial = wait_for_epoch(url, "term2", 2, proc)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "worker stopped; its trial was re-queued" in out
    trials = optuna.load_study(study_name="term2", storage=url).trials
    assert trials[trial.number].state == TrialState.FAIL
    queued = [t for t in trials if t.state == TrialState.WAITING]
    assert len(queued) == 1 and records.record(queued[0], "requeued_from") == trial.number
    # nothing lost: the next worker picks the queued trial up and resumes from the checkpoint
    proc = start_worker(spec, url, 1, tmp_path / "a")
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    trials = optuna.load_study(study_name="term2", storage=url).trials
    resumed = trials[queued[0].number]
    assert resumed.state == TrialState.COMPLETE
    assert resumed.params == trial.params
    assert records.record(resumed, "resumed_from_epoch") >= 2


def test_a_second_signal_while_a_finished_trial_is_stored_stops_after_it_is(tmp_path):
    """The second signal lands while the trial's results are written (here from the
    trial-ended hook, where the pictures are drawn): no KeyboardInterrupt in the middle of the
    writes, the trial is COMPLETE with its figures, nothing is re-queued, and the worker stops."""
    import os

    from vae_search.study.spec import StudySpec
    from vae_search.workers.hooks import WorkerHooks
    from vae_search.workers.worker import GracefulStop, WorkerOptions, run_worker

    url = f"sqlite:///{tmp_path / 'st.db'}"
    spec = StudySpec.from_file(write_spec(tmp_path / "s.yaml", "held", n_trials=3, epochs=2))
    seen = []

    def two_signals(end):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handlers run here, in the middle of the hook
        seen.append(end.trial.number)

    with GracefulStop() as stop:
        with pytest.raises(KeyboardInterrupt):
            run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp_path / "a"), threads=1),
                       stop, hooks=WorkerHooks(trial_ended=[two_signals]))
    assert stop.now and seen == [0]  # the hook ran to its end
    assert stop.stopped_message() == "worker stopped; its finished trial is stored"
    trials = optuna.load_study(study_name="held", storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE]
    assert records.record(trials[0], "final") is not None
    # outside a hold, the second signal still stops at once
    with GracefulStop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_second_signal_while_a_population_member_is_stored_requeues_only_the_untrained(tmp_path):
    """Population worker, two trials that cannot share a stack (other latent sizes): the second
    signal lands while the first one's results are stored. That member is told COMPLETE; the
    one not yet trained is re-queued, and the worker stops before training it."""
    import os

    from vae_search.study.spec import StudySpec
    from vae_search.workers.hooks import WorkerHooks
    from vae_search.workers.worker import GracefulStop, WorkerOptions, open_study, run_worker

    url = f"sqlite:///{tmp_path / 'st.db'}"
    spec = StudySpec.from_file(write_spec(tmp_path / "s.yaml", "popheld", n_trials=2, epochs=2))
    study, _ = open_study(spec, url)
    for latent in (3, 6):
        study.enqueue_trial({"schedule.beta": 0.5, "schedule.rate": 1.0, "model.latent_dim": latent,
                             "prior.kind": "standard"})
    seen = []

    def two_signals(end):
        if not seen:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        seen.append(end.trial.number)

    with GracefulStop() as stop:
        with pytest.raises(KeyboardInterrupt):
            run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp_path / "a"), threads=1,
                                           population=2),
                       stop, hooks=WorkerHooks(trial_ended=[two_signals]))
    assert stop.now
    trials = optuna.load_study(study_name="popheld", storage=url).trials
    first = seen[0]
    other = 1 - first
    assert trials[first].state == TrialState.COMPLETE and records.record(trials[first], "final") is not None
    assert trials[other].state == TrialState.FAIL  # never trained: re-queued
    queued = [t for t in trials if t.state == TrialState.WAITING]
    assert len(queued) == 1 and records.record(queued[0], "requeued_from") == other
