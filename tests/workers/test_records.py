"""Where a trial's records live: plain Optuna prints a narrow table, vae-search still reads
everything (from system attributes, or inline user attributes of an older study)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest
import yaml
from click.testing import CliRunner
from optuna.artifacts import download_artifact
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from tests.workers.test_worker import write_spec
from vae_search import records
from vae_search.cli import main
from vae_search.config import RunConfig
from vae_search.dashboard.artifacts import trial_artifacts
from vae_search.results.summary import summarize, trial_info
from vae_search.storage.checkpoints import artifact_store
from vae_search.study.collapse import is_collapsed
from vae_search.study.spec import StudySpec
from vae_search.workers.worker import WorkerOptions, open_study, run_worker

OPTUNA = Path(sys.executable).with_name("optuna")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("records")
    url = f"sqlite:///{tmp / 'st.db'}"
    spec = StudySpec.from_file(write_spec(tmp / "s.yaml", "rec", n_trials=3))
    run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp / "art"), threads=1))
    return url, tmp


def json_artifact(study, trial, store, name):
    """The JSON artifact ``name`` of ``trial``, downloaded from the store."""
    metas = trial_artifacts(study._storage, trial._trial_id, mimetype_prefix="application/json")
    meta = [m for m in metas if m.filename == name][-1]  # a retry lists its original's first
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        download_artifact(artifact_store=store, artifact_id=meta.artifact_id, file_path=str(path))
        return json.loads(path.read_text())


def optuna_table(command: str, study_name: str, url: str) -> list[str]:
    """The lines plain ``optuna best-trial`` / ``best-trials`` prints for a study."""
    if not OPTUNA.exists():
        pytest.skip(f"no optuna CLI next to {sys.executable}")
    out = subprocess.run(
        [str(OPTUNA), command, "--study-name", study_name, "--storage", url],
        capture_output=True, text=True, check=True,
    ).stdout
    lines = out.splitlines()
    assert len(lines) >= 5, out  # the table is there, with a row
    return lines


def assert_narrow(study_name: str, url: str, commands=("best-trial", "best-trials")) -> None:
    """What plain Optuna prints of the best trial(s): no line over 300 characters."""
    for command in commands:
        lines = optuna_table(command, study_name, url)
        assert max(map(len, lines)) <= 300, (command, max(map(len, lines)), "\n".join(lines))


def test_optuna_best_trial_prints_a_narrow_table(finished):
    url, _ = finished
    assert_narrow("rec", url)
    # a single objective has no metric name: the value is a number, not a {name: value} cell
    study = optuna.load_study(study_name="rec", storage=url)
    assert study.metric_names is None
    lines = optuna_table("best-trial", "rec", url)
    row = dict(zip(*([c.strip() for c in lines[i].split("|")] for i in (1, 3))))
    assert float(row["value"]) == pytest.approx(study.best_value)
    assert int(row["number"]) == study.best_trial.number


def test_a_multi_objective_study_names_its_metrics_short_and_prints_narrow(tmp_path):
    from tests.workers.test_multi_objective import mo_spec

    url = f"sqlite:///{tmp_path / 'mo.db'}"
    path = mo_spec(tmp_path / "mo.yaml", "mo", n_trials=2, epochs=2)
    raw = yaml.safe_load(path.read_text())
    raw["objective"] = ["distortion", "rate", "active_units"]
    spec = StudySpec.from_dict(raw)
    study, _ = open_study(spec, url)
    # a low-β trial that finishes, so the front has a row whatever the random one does
    study.enqueue_trial({"schedule.beta": 0.25, "model.latent_dim": 8, "prior.kind": "standard"})
    run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp_path / "art"), threads=1))
    study = optuna.load_study(study_name="mo", storage=url)
    assert study.metric_names == ["val D", "val R", "val AU"]
    assert_narrow("mo", url, commands=("best-trials",))  # best-trial is for one objective
    # each value printed under its short name
    row = next(ln for ln in optuna_table("best-trials", "mo", url) if "'val D':" in ln)
    assert "'val R':" in row and "'val AU':" in row
    # the figures' axes still say what the numbers are
    from vae_search.study.objectives import OBJECTIVES, objective_label

    assert objective_label(study) == OBJECTIVES["distortion"].label


def test_status_export_and_records_agree_with_the_stored_artifacts_and_values(finished, tmp_path):
    url, tmp = finished
    study = optuna.load_study(study_name="rec", storage=url)
    store = artifact_store(tmp / "art")
    for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)):
        assert set(t.user_attrs) <= set(records.USER_RECORDS)  # nothing big left there
        history = json_artifact(study, t, store, "history.json")
        # the history record, its JSON artifact and Optuna's reported values are one history
        assert records.trial_history(t)["elbo"] == history["elbo"]
        assert history["elbo"] == [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
        assert records.active_units_history(t) == history["active_units"]
        assert records.trial_config(t) == json_artifact(study, t, store, "config.json")
        assert records.latent_dim(t) == t.params["model.latent_dim"]
    best = study.best_trial
    res = CliRunner().invoke(main, ["status", "rec", "--storage", url, "--json"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)["best"]
    assert shown["number"] == best.number and shown["value"] == pytest.approx(best.value)
    assert shown["latent_dim"] == best.params["model.latent_dim"]
    assert shown["active_units"] == records.trial_final(best)["active_units"]
    # the final figures hold the objective the trial returned (its Optuna value)
    assert records.trial_final(best)["nll_iwae"] == pytest.approx(best.value)
    res = CliRunner().invoke(main, ["export", "rec", "--storage", url, "-o", str(tmp_path / "b.yaml")])
    assert res.exit_code == 0, res.output
    exported = yaml.safe_load((tmp_path / "b.yaml").read_text())
    config = json_artifact(study, best, store, "config.json")
    assert exported["provenance"]["trial"] == best.number
    assert exported["model"] == config["model"] and exported["schedule"] == config["schedule"]
    assert exported["provenance"]["final"]["nll_iwae"] == pytest.approx(best.value)


def test_an_old_layout_trial_is_still_read(tmp_path):
    """A study written before the records moved: everything inline in the user attributes."""
    cfg = RunConfig().to_dict()
    history = {"beta": [0.5, 1.0], "elbo": [100.0, 90.0], "kl": [1.0, 0.0]}
    old = optuna.trial.create_trial(
        params={"schedule.beta": 1.0}, distributions={"schedule.beta": FloatDistribution(0.1, 10)},
        value=88.0, user_attrs={
            "config": cfg, "latent_dim": 20, "active_units": [3, 0], "history": history,
            "final": {"active_units": 0, "nll_iwae": 88.0}, "checkpoint": "abc",
        },
    )
    assert records.trial_config(old) == cfg and records.trial_history(old) == history
    assert records.active_units_history(old) == [3, 0] and records.latent_dim(old) == 20
    assert records.trial_final(old)["nll_iwae"] == 88.0
    assert records.record(old, records.CHECKPOINT) == "abc"
    assert records.trial_epochs(old) == cfg["epochs"]
    assert is_collapsed(old)  # no constraint stored: its final 0 active units say so
    info = trial_info(old)
    assert info["active_units"] == 0 and info["latent_dim"] == 20
    # ... and a study of such trials summarises as before
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'old.db'}", study_name="old")
    pruned = optuna.trial.create_trial(
        params={"schedule.beta": 1.0}, distributions={"schedule.beta": FloatDistribution(0.1, 10)},
        state=TrialState.PRUNED, intermediate_values={1: 100.0},
        user_attrs={"config": cfg, "active_units": [0], "prune_reason": "collapse", "pruned_epoch": 1},
    )
    study.add_trials([old, pruned])
    s = summarize(study)
    assert s.pruned_collapse == 1 and s.collapse_epochs_planned == cfg["epochs"]
    assert s.collapse_epochs_saved == cfg["epochs"] - 1


def test_the_new_place_wins_over_a_stale_inline_copy():
    t = optuna.trial.create_trial(
        value=1.0, user_attrs={"active_units": [1]},
        system_attrs={records.key(records.ACTIVE_UNITS): [4, 5]},
    )
    assert records.active_units_history(t) == [4, 5]
