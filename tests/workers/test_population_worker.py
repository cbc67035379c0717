"""Population workers end to end: real `vae-search worker --population P` processes on SQLite
and PostgreSQL keep the budget exact, train trials of one shape together with the figures of
their single runs, and a SIGKILLed population worker's trials are all retried and resume."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

from tests.workers.test_worker import load, start_worker, write_spec
from vae_search import records
from vae_search.config import RunConfig
from vae_search.train import train

pytestmark = pytest.mark.slow


def population_spec(path: Path, name: str, *, n_trials: int, collapse: bool = True, **kw) -> Path:
    """The worker tests' spec with a space that stacks: one network shape (latent size and
    prior fixed), trials differing in β, warm-up rate, learning rate and seed."""
    write_spec(path, name, n_trials=n_trials, **kw)
    spec = yaml.safe_load(path.read_text())
    spec["run"]["model"] = {"hidden": [32], "latent_dim": 4}
    spec["pruner"]["collapse"]["enabled"] = collapse
    spec["space"] = {
        "schedule.beta": {"type": "float", "low": 0.2, "high": 2.0, "log": True},
        "schedule.rate": {"type": "float", "low": 0.2, "high": 2.0, "log": True},
        "optim.lr": {"type": "float", "low": 5e-4, "high": 3e-3, "log": True},
        "seed": {"type": "int", "low": 0, "high": 1000},
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_population_workers_finish_exactly_the_budget(storage_url, study_name, tmp_path):
    spec = population_spec(tmp_path / "s.yaml", study_name, n_trials=7)
    procs = [start_worker(spec, storage_url, i, tmp_path / "artifacts", "--population", "4") for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trials = load(storage_url, study_name).get_trials(deepcopy=False)
    # exactly the budget finished, nothing left running or waiting, no extra trial started
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 7
    assert len(trials) == 7
    # every trial ran in exactly one worker
    ran = [eval(re.search(r"finished: trials (\[.*\])", out).group(1)) for out in outputs]  # noqa: S307
    assert sorted(n for r in ran for n in r) == sorted(t.number for t in trials)
    # the trials really trained as stacked populations
    assert any(re.search(r"population of [2-4] members", out) for out in outputs), outputs
    for t in trials:
        assert len(records.record(t, 'active_units')) == len(t.intermediate_values)
        assert records.record(t, 'history')["elbo"] == [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
    # a completed trial's value is that of its config trained alone, the single-run trainer
    done = next(t for t in trials if t.state == TrialState.COMPLETE)
    alone = train(RunConfig.from_dict(records.record(done, 'config')))
    assert alone.final["nll_iwae"] == pytest.approx(done.value, abs=1e-4, rel=1e-5)


def test_a_killed_population_workers_trials_are_all_retried_and_resume(storage_url, study_name, tmp_path):
    spec = population_spec(tmp_path / "s.yaml", study_name, n_trials=3, collapse=False, epochs=8, size=6000,
                           heartbeat=1, grace=3)
    artifacts = tmp_path / "artifacts"
    victim = start_worker(spec, storage_url, 0, artifacts, "--population", "3")
    deadline = time.monotonic() + 180
    running = []
    while time.monotonic() < deadline:
        try:
            running = load(storage_url, study_name).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        except KeyError:
            running = []
        if len(running) == 3 and all(len(t.intermediate_values) >= 2 and records.has_record(t, 'checkpoint')
                                     for t in running):
            break
        time.sleep(0.2)
    else:
        victim.kill()
        pytest.fail("the population never reached epoch 2: " + victim.communicate()[0])
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    originals = {t.number: t for t in running}
    # all three were held (and beating) by the one killed worker
    assert all(t.state == TrialState.RUNNING for t in load(storage_url, study_name).trials)

    rescuer = start_worker(spec, storage_url, 1, artifacts, "--population", "3")
    out = rescuer.communicate(timeout=300)[0]
    assert rescuer.returncode == 0, out
    trials = load(storage_url, study_name).trials
    # every original failed once stale, and each has exactly one retry, which completed with
    # the same parameters, resuming from its own checkpoint: the budget of three, met exactly
    assert len(trials) == 6
    for number, original in originals.items():
        assert trials[number].state == TrialState.FAIL
        [retry] = [t for t in trials if records.record(t, 'retry_of') == number]
        assert retry.state == TrialState.COMPLETE and retry.params == original.params
        assert records.record(retry, 'resumed_from_epoch') >= 2
        assert len(records.record(retry, 'active_units')) == 8
    # the retries trained together again
    assert "population of 3 members" in out
