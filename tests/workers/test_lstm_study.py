"""The LSTM VAE in a study, end to end: a killed worker's trial resumes from its checkpoint
epoch, and an exported trial re-run with ``vae-search train`` gives the trial's figures."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.workers.test_worker import kill_mid_trial, load, rescue, write_spec
from vae_search import records
from vae_search.cli import main
from vae_search.study.spec import StudySpec
from vae_search.workers.worker import WorkerOptions, run_worker

TEXT_RUN = {
    "data": {"name": "sentences", "size": 1500},
    "model": {"arch": "lstm", "likelihood": "categorical", "hidden": [16], "embedding": 8, "word_dropout": 0.2},
    "eval": {"batch_size": 200, "iwae_samples": 4, "iwae_max_examples": 40, "iwae_chunk": 400},
}


def no_collapse_pruning(path):
    """The spec at ``path`` with the collapse pruner off: these trials must run to their end."""
    import yaml

    raw = yaml.safe_load(path.read_text())
    raw["pruner"]["collapse"]["enabled"] = False
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_killed_workers_lstm_trial_resumes_from_its_epoch(storage_url, study_name, tmp_path):
    spec = no_collapse_pruning(
        write_spec(tmp_path / "s.yaml", study_name, n_trials=1, epochs=6, heartbeat=1, grace=3, **TEXT_RUN))
    original = kill_mid_trial(spec, storage_url, study_name, tmp_path / "artifacts")
    done_before = len(original.intermediate_values)
    retry, out = rescue(spec, storage_url, study_name, tmp_path / "artifacts", original)
    # it continued from the checkpoint, not from epoch 0, and finished all 6 epochs
    assert "resumed from the checkpoint" in out
    assert records.record(retry, 'resumed_from_epoch') >= min(done_before, 2)
    assert len(records.record(retry, 'active_units')) == 6
    # the epochs before the kill are the original's, as reported
    for e, v in original.intermediate_values.items():
        if e <= records.record(retry, 'resumed_from_epoch'):
            assert retry.intermediate_values[e] == pytest.approx(v, abs=1e-9)


def test_export_then_train_reproduces_an_lstm_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'st.db'}"
    spec_path = no_collapse_pruning(write_spec(tmp_path / "s.yaml", "lstm-export", n_trials=1, epochs=2, **TEXT_RUN))
    run_worker(StudySpec.from_file(spec_path), WorkerOptions(storage=url, artifact_dir=str(tmp_path / "a")))
    (trial,) = load(url, "lstm-export").trials
    runner = CliRunner()
    res = runner.invoke(main, ["export", "lstm-export", "--storage", url, "--include-collapsed",
                               "-o", str(tmp_path / "best.yaml")])
    assert res.exit_code == 0, res.output
    # the exported config carries the trial's vocabulary
    import yaml

    exported = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert exported["data"]["vocab"] == records.record(trial, 'vocab')
    res = runner.invoke(main, ["train", str(tmp_path / "best.yaml"), "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # every epoch's -ELBO is the one the trial reported, and the final IWAE bound matches
    assert [h["elbo"] for h in metrics["history"]] == pytest.approx(
        [trial.intermediate_values[e] for e in sorted(trial.intermediate_values)], abs=1e-6)
    assert metrics["final"]["nll_iwae"] == pytest.approx(records.record(trial, 'final')["nll_iwae"], abs=1e-6)
    assert metrics["final"]["ppl_iwae"] == pytest.approx(records.record(trial, 'final')["ppl_iwae"], abs=1e-6)
