"""The search service end to end: real worker processes on SQLite and PostgreSQL.

These start `python -m vae_search worker` processes the way `launch` does and check the study
they leave behind through plain Optuna.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import pytest
import yaml
from click.testing import CliRunner
from optuna.trial import TrialState

from vae_search import records
from vae_search.cli import main
from vae_search.study.spec import StudySpec
from vae_search.workers.worker import WorkerOptions, run_worker

pytestmark = pytest.mark.slow


def write_spec(
    path: Path,
    name: str,
    *,
    n_trials: int,
    epochs: int = 3,
    size: int = 1200,
    heartbeat: int = 2,
    grace: int = 6,
    **run,
) -> Path:
    spec = {
        "study": name,
        "objective": "nll_iwae",
        "n_trials": n_trials,
        "sampler": {"kind": "random", "seed": 0},
        "pruner": {
            "collapse": {"enabled": True, "min_active_units": 1, "patience": 2, "warmup_epochs": 1},
            "performance": {"kind": "none"},
            "constraint": True,
        },
        "storage": {"heartbeat_interval": heartbeat, "grace_period": grace, "max_retry": 2,
                    "checkpoint_interval": 0},
        "run": {
            "data": {"name": "shapes", "size": size, "image_size": 16},
            "model": {"hidden": [32]},
            "eval": {"iwae_samples": 10, "iwae_max_examples": 100},
            "epochs": epochs,
            "batch_size": 64,
            "device": "cpu",
            "threads": 1,
            **run,
        },
        "space": {
            "schedule.beta": {"type": "float", "low": 0.2, "high": 2.0, "log": True},
            "schedule.rate": {"type": "float", "low": 0.2, "high": 2.0, "log": True},
            "model.latent_dim": {"type": "int", "low": 2, "high": 8},
            "prior.kind": {"type": "categorical", "choices": ["standard", "mog"]},
            "prior.components": {
                "type": "int",
                "low": 2,
                "high": 4,
                "when": {"prior.kind": ["mog"]},
            },
        },
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def start_worker(
    spec: Path, url: str, index: int, artifacts: Path, *extra: str
) -> subprocess.Popen:
    env = dict(os.environ, VAE_SEARCH_STORAGE=url, VAE_SEARCH_ARTIFACTS=str(artifacts))
    cmd = [sys.executable, "-m", "vae_search", "worker", str(spec), "--index", str(index), *extra]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def load(url: str, name: str) -> optuna.Study:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optuna.load_study(study_name=name, storage=url)


def test_concurrent_workers_finish_exactly_the_budget(storage_url, study_name, tmp_path):
    spec = write_spec(tmp_path / "s.yaml", study_name, n_trials=7)
    procs = [start_worker(spec, storage_url, i, tmp_path / "artifacts") for i in range(3)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    study = load(storage_url, study_name)
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    # exactly the budget finished, nothing left running or waiting, no extra trial started
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == 7
    assert len(trials) == 7
    # every trial ran in exactly one worker, and all three workers took part
    ran = [eval(re.search(r"finished: trials (\[.*\])", out).group(1)) for out in outputs]  # noqa: S307
    flat = sorted(n for r in ran for n in r)
    assert flat == sorted(t.number for t in trials)
    assert all(ran), ran
    for t in trials:
        assert records.record(t, "config")["model"]["latent_dim"] == t.params["model.latent_dim"]
        assert len(records.record(t, "active_units")) == len(t.intermediate_values)
        # the history is written at the end of the trial (history_interval) and complete: its
        # -ELBO column is what the trial reported epoch by epoch
        assert records.record(t, "history")["elbo"] == [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
    # the storage is plain Optuna: its own CLI reads it
    env = dict(os.environ)
    optuna_cli = Path(sys.executable).with_name("optuna")
    res = subprocess.run(
        [
            str(optuna_cli),
            "trials",
            "--study-name",
            study_name,
            "--storage",
            storage_url,
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.count('"number"') == 7


def kill_mid_trial(spec: Path, url: str, name: str, artifacts: Path) -> optuna.trial.FrozenTrial:
    """Start a worker, SIGKILL it once its trial has a checkpoint past epoch 2; return the trial."""
    victim = start_worker(spec, url, 0, artifacts)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            study = load(url, name)
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        except KeyError:
            running = []
        if (
            running
            and len(running[0].intermediate_values) >= 2
            and records.has_record(running[0], "checkpoint")
        ):
            break
        time.sleep(0.2)
    else:
        victim.kill()
        pytest.fail("the first worker never reached epoch 2: " + victim.communicate()[0])
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert load(url, name).trials[running[0].number].state == TrialState.RUNNING
    return running[0]


def test_killed_worker_trial_is_retried_and_resumes_from_its_checkpoint(
    storage_url, study_name, tmp_path
):
    spec = write_spec(
        tmp_path / "s.yaml", study_name, n_trials=1, epochs=8, size=6000, heartbeat=1, grace=3
    )
    original = kill_mid_trial(spec, storage_url, study_name, tmp_path / "artifacts")
    # the killed trial fails after the grace period, is re-created with the same params, and
    # its retry resumes from the last checkpoint instead of starting over
    retry, out = rescue(spec, storage_url, study_name, tmp_path / "artifacts", original)
    assert "resumed from the checkpoint" in out
    assert len(records.record(retry, "active_units")) == 8


def rescue(
    spec: Path, url: str, name: str, artifacts: Path, original: optuna.trial.FrozenTrial
) -> tuple[optuna.trial.FrozenTrial, str]:
    """Run a second worker to the budget; check that ``original`` failed and that its one
    retry completed, resuming from the checkpoint. Return the retry and the worker's output."""
    rescuer = start_worker(spec, url, 1, artifacts)
    out = rescuer.communicate(timeout=300)[0]
    assert rescuer.returncode == 0, out
    trials = load(url, name).trials
    assert trials[original.number].state == TrialState.FAIL
    retries = [t for t in trials if records.record(t, "retry_of") == original.number]
    assert len(retries) == 1 and len(trials) == 2  # the budget of one trial, met exactly
    retry = retries[0]
    assert retry.state == TrialState.COMPLETE and retry.params == original.params
    assert records.record(retry, "resumed_from_epoch") >= 2
    return retry, out


# a worker that fails a stale trial and is killed before it enqueues the retry
SWEEP_THEN_DIE = """
import os, signal, sys
import optuna
from vae_search.study.spec import StudySpec
from vae_search.storage.stale import fail_stale_trials
from vae_search.workers.worker import open_study

study, _ = open_study(StudySpec.from_file(sys.argv[1]), sys.argv[2])
optuna.Study.add_trial = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
fail_stale_trials(study)
"""


def test_a_retry_lost_between_fail_and_enqueue_is_recovered(storage_url, study_name, tmp_path):
    spec = write_spec(
        tmp_path / "s.yaml", study_name, n_trials=1, epochs=6, size=6000, heartbeat=1, grace=3
    )
    original = kill_mid_trial(spec, storage_url, study_name, tmp_path / "artifacts")
    time.sleep(4)  # past the grace period: the trial is stale
    sweeper = subprocess.run(
        [sys.executable, "-c", SWEEP_THEN_DIE, str(spec), storage_url],
        capture_output=True, text=True, timeout=120,
    )
    assert sweeper.returncode == -signal.SIGKILL, sweeper.stderr
    trials = load(storage_url, study_name).trials
    # Optuna's two steps were cut in the middle: the trial failed, no retry was enqueued
    assert [t.state for t in trials] == [TrialState.FAIL]

    # the next worker's sweep finds the failed trial without a retry and enqueues one
    rescue(spec, storage_url, study_name, tmp_path / "artifacts", original)


def test_export_then_train_reproduces_the_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'st.db'}"
    spec = StudySpec.from_file(write_spec(tmp_path / "s.yaml", "repro", n_trials=2))
    run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp_path / "art"), threads=1))
    runner = CliRunner()
    res = runner.invoke(
        main, ["export", "repro", "--storage", url, "-o", str(tmp_path / "best.yaml")]
    )
    assert res.exit_code == 0, res.output
    exported = yaml.safe_load((tmp_path / "best.yaml").read_text())
    prov = exported["provenance"]
    assert prov["study"] == "repro" and {"torch", "optuna", "vae-search"} <= set(prov["versions"])
    res = runner.invoke(
        main, ["train", str(tmp_path / "best.yaml"), "--out", str(tmp_path / "run")]
    )
    assert res.exit_code == 0, res.output
    import json

    final = json.loads((tmp_path / "run" / "metrics.json").read_text())["final"]
    study = load(url, "repro")
    trial = study.trials[prov["trial"]]
    # same seed, same CPU: the re-run's validation figures are the trial's
    assert final["elbo"] == pytest.approx(records.record(trial, "final")["elbo"], rel=1e-5)
    assert final["nll_iwae"] == pytest.approx(trial.value, rel=1e-5)
    assert final["active_units"] == records.record(trial, "final")["active_units"]


def test_nan_trials_fail_with_their_reason_and_the_worker_stops_after_a_streak(tmp_path):
    url = f"sqlite:///{tmp_path / 'st.db'}"
    spec = StudySpec.from_file(
        write_spec(
            tmp_path / "s.yaml",
            "nan",
            n_trials=3,
            model={"hidden": [32], "likelihood": "gaussian", "sigma": 1e-30},
            optim={"lr": 1e30},
        )
    )
    from vae_search.errors import TrainingError

    with pytest.raises(
        TrainingError, match="3 trials in a row failed .*not finite at epoch 1, step"
    ):
        run_worker(
            spec,
            WorkerOptions(
                storage=url, artifact_dir=str(tmp_path / "a"), max_consecutive_failures=3
            ),
        )
    trials = load(url, "nan").trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert all("not finite at epoch 1" in records.record(t, "fail_reason") for t in trials)


def test_cuda_out_of_memory_fails_the_trial_and_the_worker_goes_on(tmp_path, monkeypatch):
    import torch

    from vae_search.workers import objective as objective_mod

    real_train = objective_mod.train
    calls = []

    import weakref

    alive_at_empty_cache = []
    held = []

    def train_oom_first(cfg, **kw):
        calls.append(cfg)
        if len(calls) == 1:
            model = torch.nn.Linear(4, 4)  # what train() holds when the GPU runs out
            held.append(weakref.ref(model))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_train(cfg, **kw)

    monkeypatch.setattr(torch.cuda, "empty_cache",
                        lambda: alive_at_empty_cache.append(held[0]() is not None))
    monkeypatch.setattr(objective_mod, "train", train_oom_first)
    url = f"sqlite:///{tmp_path / 'st.db'}"
    spec = StudySpec.from_file(write_spec(tmp_path / "s.yaml", "oom", n_trials=2))
    run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp_path / "a")))
    trials = load(url, "oom").trials
    # the first trial failed with its reason; the budget was still met by the next ones
    assert trials[0].state == TrialState.FAIL
    assert "CUDA out of memory" in records.record(trials[0], "fail_reason")
    # the cache was emptied once the failed trial's model could be collected, not while the
    # exception still held it (before, the memory stayed reserved for the next trials)
    assert alive_at_empty_cache == [False]
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 2


def _study_names(url: str) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [s.study_name for s in optuna.get_all_study_summaries(url)]


@pytest.mark.parametrize(
    ("run", "args", "message"),
    [
        ({"data": {"name": "mnist", "root": "RAW", "download": False}}, [],
         "error: mnist: dataset files not found in RAW"),
        ({}, ["--device", "cuda"], "error: --device cuda: CUDA is not available here; use auto or cpu"),
        ({"device": "cuda"}, [], "s.yaml: run.device cuda: CUDA is not available here"),
    ],
    ids=["missing-dataset", "device-flag", "device-in-spec"],
)
def test_a_worker_that_cannot_train_says_so_before_it_touches_the_study(tmp_path, run, args, message):
    import torch

    if torch.cuda.is_available() and "cuda" in message:
        pytest.skip("CUDA is available here")
    raw = tmp_path / "nodata"
    run = {k: ({**v, "root": str(raw)} if k == "data" else v) for k, v in run.items()}
    spec = write_spec(tmp_path / "s.yaml", "pre", n_trials=2, **run)
    url = f"sqlite:///{tmp_path / 'st.db'}"
    res = subprocess.run(
        [sys.executable, "-m", "vae_search", "worker", str(spec), "--storage", url, *args],
        capture_output=True, text=True, timeout=120,
    )
    # one line naming the problem, exit 2, no traceback, and no study or FAIL trial left behind
    assert res.returncode == 2, res.stderr
    assert message.replace("RAW", str(raw)) in res.stderr and "Traceback" not in res.stderr
    assert "pre" not in _study_names(url)


def test_the_specs_timeout_ends_the_worker(tmp_path):
    import datetime

    url = f"sqlite:///{tmp_path / 'st.db'}"
    spec = StudySpec.from_dict(
        {**yaml.safe_load(write_spec(tmp_path / "s.yaml", "tmo", n_trials=50).read_text()), "timeout": 0.5}
    )
    began = datetime.datetime.now()
    t0 = time.monotonic()
    result = run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp_path / "a")))
    took = time.monotonic() - t0
    trials = load(url, "tmo").trials
    # however fast a trial is here: no trial starts after the 0.5 s, the one under way finishes
    # (nothing left RUNNING), and the worker stopped on the clock, not on the budget of 50
    assert 1 <= len(result.trials) < 50 and len(trials) == len(result.trials)
    assert took >= 0.5
    # (the worker sets its clock after it opens the study, and checks it before it asks: 2 s of slack)
    late = [t.number for t in trials if t.datetime_start > began + datetime.timedelta(seconds=2.5)]
    assert late == [], f"trials {late} started after the timeout"
    assert all(t.state.is_finished() for t in trials)


def test_a_sampled_dataset_that_cannot_be_read_fails_its_trial_with_the_reason(tmp_path, caplog):
    import logging

    import numpy as np

    good = tmp_path / "good.npy"
    np.save(good, np.random.default_rng(0).random((300, 16), dtype=np.float32))
    missing = tmp_path / "missing.npy"
    path = write_spec(tmp_path / "s.yaml", "data", n_trials=2, data={"name": "array", "path": str(good)})
    raw = yaml.safe_load(path.read_text())
    raw["space"] = {"data.path": {"type": "categorical", "choices": [str(missing)]}}
    spec = StudySpec.from_dict(raw)
    url = f"sqlite:///{tmp_path / 'st.db'}"
    from vae_search.errors import TrainingError

    with caplog.at_level(logging.WARNING), pytest.raises(TrainingError, match="2 trials in a row failed"):
        run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp_path / "a"),
                                       max_consecutive_failures=2))
    trials = load(url, "data").trials
    # each trial failed with the data's own one-line reason, and Optuna logged no traceback
    assert [t.state for t in trials] == [TrialState.FAIL] * 2
    assert all("missing.npy" in records.record(t, "fail_reason") for t in trials)
    assert "Traceback" not in caplog.text and "DataError" not in caplog.text
