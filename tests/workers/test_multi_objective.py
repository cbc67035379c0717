"""A [distortion, rate] study run by three real worker processes on SQLite and PostgreSQL:
the budget is exact, the collapse pruner still acts (Optuna cannot prune there), and the
Pareto front that `status --json` lists is the brute-force front over the trials' values."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml
from click.testing import CliRunner
from optuna.trial import TrialState

from tests.results.test_pareto import brute_front
from tests.workers.test_worker import load, start_worker, write_spec
from vae_search import records
from vae_search.cli import main
from vae_search.study.spec import StudySpec
from vae_search.workers.worker import open_study

pytestmark = pytest.mark.slow


def mo_spec(path, name, n_trials, **run):
    write_spec(path, name, n_trials=n_trials, **run)
    spec = yaml.safe_load(path.read_text())
    spec["objective"] = ["distortion", "rate"]
    del spec["pruner"]["performance"]  # left out: none, the only kind that can run here
    spec["run"]["schedule"] = {"kind": "constant"}
    spec["space"]["schedule.beta"] = {"type": "float", "low": 0.2, "high": 4.0, "log": True}
    del spec["space"]["schedule.rate"]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_three_workers_run_a_rate_distortion_study(storage_url, study_name, tmp_path):
    path = mo_spec(tmp_path / "mo.yaml", study_name, n_trials=7, epochs=4)
    spec = StudySpec.from_file(path)
    study, _ = open_study(spec, storage_url)
    # two trials that surely collapse (β = 60 crushes the KL), picked up by the workers first
    for _ in range(2):
        study.enqueue_trial({"schedule.beta": 60.0, "model.latent_dim": 4, "prior.kind": "standard"},
                            skip_if_exists=False)
    procs = [start_worker(path, storage_url, i, tmp_path / "art") for i in range(3)]
    outputs = [p.communicate(timeout=400)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    study = load(storage_url, study_name)
    trials = study.get_trials(deepcopy=False)
    # the budget is exact: 7 finished trials and not one more
    assert len(trials) == 7
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 7
    # the collapse pruner acted without trial.report: pruned, with the usual record
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert len(pruned) >= 2
    for t in pruned:
        assert t.user_attrs["prune_reason"] == "collapse"
        au = records.record(t, 'active_units')
        assert records.record(t, 'pruned_epoch') == len(au) and au[-2:] == [0, 0]
        assert t.intermediate_values == {}  # nothing was reported
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert done
    for t in done:  # values are D and R of the validation split, as the final figures say
        assert t.values == pytest.approx([records.record(t, 'final')["recon"], records.record(t, 'final')["kl"]])
    res = CliRunner().invoke(main, ["status", study_name, "--storage", storage_url, "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    # the front status lists is the brute-force front over the completed, non-collapsed trials
    cands = [t for t in done if records.record(t, 'final')["active_units"] >= 1] or done
    brute = brute_front([tuple(t.values) for t in cands])
    assert sorted(p["number"] for p in d["pareto"]) == sorted(cands[i].number for i in brute)
    # with the collapse constraint recorded, that is Optuna's own study.best_trials
    assert sorted(p["number"] for p in d["pareto"]) == sorted(t.number for t in study.best_trials)
    # Optuna's own Pareto chart works on the study, with our metric names
    fig = optuna.visualization.plot_pareto_front(study)
    assert fig.layout.xaxis.title.text == study.metric_names[0]
