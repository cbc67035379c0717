"""Studies of a user's own model, end to end on SQLite: a factory named by module path and one
named by file path each run trials, and the collapse pruner acts on them as on the stock models;
a broken factory stops the worker before it leaves a trial behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from vae_search import records
from vae_search.errors import ConfigError
from vae_search.study.spec import StudySpec
from vae_search.workers.worker import WorkerOptions, run_worker

EXAMPLE = Path(__file__).parents[2] / "examples" / "custom_vae.py"


def spec_file(path: Path, name: str, factory: str) -> Path:
    path.write_text(yaml.safe_dump({
        "study": name, "objective": "nll_iwae", "n_trials": 2,
        "sampler": {"kind": "bruteforce", "seed": 0},
        "pruner": {"collapse": {"enabled": True, "min_active_units": 1, "patience": 1, "warmup_epochs": 2},
                   "performance": {"kind": "none"}},
        "storage": {"checkpoint_interval": 0, "history_interval": 0},
        "run": {
            "data": {"name": "shapes", "size": 1500, "image_size": 16},
            "model": {"arch": "custom", "factory": factory, "options": {"width": 32, "blocks": 1},
                      "latent_dim": 4},
            "schedule": {"kind": "constant"},
            "eval": {"iwae_samples": 5, "iwae_max_examples": 50},
            "epochs": 4, "batch_size": 64, "device": "cpu", "threads": 1,
        },
        # β = 0.2 keeps the latents in use; β = 60 makes the posterior collapse to the prior
        "space": {"schedule.beta": {"type": "categorical", "choices": [0.2, 60.0]}},
    }))
    return path


def run_study(spec_path: Path, tmp: Path, name: str) -> list:
    url = f"sqlite:///{tmp / 'st.db'}"
    run_worker(StudySpec.from_file(spec_path), WorkerOptions(storage=url, artifact_dir=str(tmp / "art")))
    return optuna.load_study(study_name=name, storage=url).trials


def check(trials: list, factory_file: Path) -> None:
    by_beta = {t.params["schedule.beta"]: t for t in trials}
    # the small β trial completes with its latents active; the large β one is pruned for collapse
    assert by_beta[0.2].state == TrialState.COMPLETE and records.trial_final(by_beta[0.2])["active_units"] >= 1
    assert by_beta[60.0].state == TrialState.PRUNED
    assert by_beta[60.0].user_attrs["prune_reason"] == "collapse"
    import hashlib

    for t in trials:
        stored = records.record(t, 'config')["model"]
        # the stored config records the factory, its options and its source file's hash
        assert stored["options"] == {"width": 32, "blocks": 1}
        assert stored["factory_hash"] == hashlib.sha256(factory_file.read_bytes()).hexdigest()[:16]


def test_a_module_path_factory_runs_a_study_with_collapse_pruning(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "my_models"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    shutil.copy(EXAMPLE, pkg / "vae.py")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    trials = run_study(spec_file(tmp_path / "s.yaml", "mod", "my_models.vae:build"), tmp_path, "mod")
    check(trials, pkg / "vae.py")


def test_a_file_path_factory_runs_a_study_with_collapse_pruning(tmp_path):
    (tmp_path / "specs" / "models").mkdir(parents=True)
    shutil.copy(EXAMPLE, tmp_path / "specs" / "models" / "vae.py")
    # relative to the spec file's folder, not the working directory
    trials = run_study(spec_file(tmp_path / "specs" / "s.yaml", "file", "models/vae.py:build"), tmp_path, "file")
    check(trials, tmp_path / "specs" / "models" / "vae.py")


def test_a_broken_factory_stops_the_worker_before_it_leaves_a_trial(tmp_path):
    path = spec_file(tmp_path / "s.yaml", "bad", f"{EXAMPLE}:build")
    raw = yaml.safe_load(path.read_text())
    raw["run"]["model"]["options"] = {"width": "wide"}  # int("wide") raises in the factory
    path.write_text(yaml.safe_dump(raw))
    url = f"sqlite:///{tmp_path / 'st.db'}"
    with pytest.raises(ConfigError, match=r"model.factory .*build.*: the factory raised ValueError"):
        run_worker(StudySpec.from_file(path), WorkerOptions(storage=url, artifact_dir=str(tmp_path / "a")))
    # nothing was written: the preflight failed before the storage was even opened
    assert not (tmp_path / "st.db").exists()
