"""publish_trial: what a finished study holds, and that a picture never fails a trial."""

from __future__ import annotations

import logging
import subprocess
import sys

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState
from optuna_dashboard import get_note

from tests.conftest import small_config
from vae_search import records
from vae_search.dashboard.artifacts import trial_artifacts
from vae_search.dashboard.trial.publish import PICTURES, publish_trial
from vae_search.data import load_data
from vae_search.model.vae import build_vae

PNG = b"\x89PNG\r\n\x1a\n"


def _pngs(study: optuna.Study, t) -> dict[str, str]:
    metas = trial_artifacts(study._storage, t._trial_id, mimetype_prefix="image/png")
    return {m.filename: m.artifact_id for m in metas}


def test_every_trial_has_its_pictures_and_a_note(finished_study):
    study = finished_study.load()
    store = FileSystemArtifactStore(str(finished_study.artifact_dir))
    by_state = {s: [t for t in study.trials if t.state == s] for s in TrialState}
    # the fixture's enqueued trials ended as planned: two complete, one pruned for collapse
    assert len(by_state[TrialState.COMPLETE]) == 2 and len(by_state[TrialState.PRUNED]) == 1
    pruned = by_state[TrialState.PRUNED][0]
    assert records.record(pruned, "prune_reason") == "collapse"
    for t in by_state[TrialState.COMPLETE]:
        # a completed shapes trial has all five pictures, each once
        assert sorted(_pngs(study, t)) == sorted(PICTURES)
    # a pruned trial has no model: only what its history allows
    assert sorted(_pngs(study, pruned)) == ["curves.png", "kl-per-dim.png"]
    for t in study.trials:
        for name, artifact_id in _pngs(study, t).items():
            with store.open_reader(artifact_id) as f:
                # every artifact is a real PNG in the store
                assert f.read(8) == PNG, name
    note = get_note(optuna.Trial(study, pruned._trial_id))
    # the pruned trial's note says why, when, and how many units were left
    assert "posterior collapse" in note and f"epoch {records.record(pruned, 'pruned_epoch')}" in note
    assert f"0/{records.record(pruned, 'latent_dim')} active units" in note
    # ... and the rule it broke, with the fixture's pruner settings: min_active_units 1 (no
    # fraction), patience 1, warm-up 1, and the config's active-unit variance threshold 0.01
    epoch = records.record(pruned, "pruned_epoch")
    assert (
        f"(variance of E[z_d] over the validation data > 0.01), below the threshold 1 "
        f"(= min_active_units) for 1 epoch (epoch {epoch}: 0) after a 1-epoch warm-up." in " ".join(note.split())
    )
    done = by_state[TrialState.COMPLETE][0]
    assert "complete" in get_note(optuna.Trial(study, done._trial_id))


def test_publish_trial_never_raises(tmp_path, caplog):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'x.db'}")
    trial = study.ask()

    class BrokenStore:
        def write(self, artifact_id, content):
            raise OSError("disk full")

        def open_reader(self, artifact_id):
            raise OSError("gone")

        def remove(self, artifact_id):
            pass

    cfg = small_config()
    with caplog.at_level(logging.WARNING, logger="vae_search.dashboard"):
        # a store that fails on every write, and a history that is not even a mapping of lists
        publish_trial(
            trial,
            BrokenStore(),
            config=cfg,
            history={"elbo": "garbage", "kl_per_dim": 3},
            model=None,
            data=None,
            outcome="failed",
            detail={"fail_reason": "nan at epoch 1"},
        )
        # not even a trial
        publish_trial(
            None, None, config=cfg, history={}, model=None, data=None, outcome="x", detail={}
        )
    # nothing raised; each failure was logged as a warning
    assert any("could not publish" in r.getMessage() for r in caplog.records)
    # the note does not depend on the pictures: it was saved, with the reason
    assert "nan at epoch 1" in get_note(trial)


def test_publish_trial_uploads_all_five_pictures(tmp_path):
    # what the pictures cost is measured in benchmarks/bench_pictures.py, not timed here
    cfg = small_config(model={"latent_dim": 16, "hidden": [256, 128]})
    data = load_data(cfg.data)
    model = build_vae(cfg, data.shape)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'x.db'}")
    trial = study.ask()
    store = FileSystemArtifactStore(str(tmp_path))
    epochs = 6
    history = {
        "beta": [1.0] * epochs,
        "elbo": [50.0] * epochs,
        "recon": [45.0] * epochs,
        "kl": [5.0] * epochs,
        "mutual_info": [1.0] * epochs,
        "seconds": [0.1] * epochs,
        "kl_per_dim": torch.rand(epochs, 16).tolist(),
        "active_units": [16] * epochs,
    }
    publish_trial(
        trial,
        store,
        config=cfg,
        history=history,
        model=model,
        data=data,
        outcome="complete",
        detail={"final": {"active_units": 16}},
    )
    # all five pictures of a completed image trial reach the artifact store
    assert len(_pngs(study, study._storage.get_trial(trial._trial_id))) == 5


def test_a_worker_that_never_draws_does_not_import_matplotlib():
    code = "import sys, vae_search.workers.worker, vae_search.dashboard.trial.publish; print(sorted(m for m in sys.modules if m.startswith('matplotlib')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # the pictures import matplotlib when they draw, not when the worker starts
    assert out.stdout.strip() == "[]"


def test_the_artifact_listing_skips_entries_deleted_in_the_dashboard(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'x.db'}")
    trial = study.ask()
    store = FileSystemArtifactStore(str(tmp_path))
    png = tmp_path / "a.png"
    png.write_bytes(PNG)
    optuna.artifacts.upload_artifact(
        artifact_store=store, file_path=str(png), study_or_trial=trial, mimetype="image/png"
    )
    # what optuna-dashboard writes when an artifact is deleted there
    study._storage.set_trial_system_attr(trial._trial_id, "artifacts:deleted-one", "null")
    metas = trial_artifacts(study._storage, trial._trial_id, mimetype_prefix="image/")
    # the live artifact is listed, the deleted one skipped (optuna's own listing raises here)
    assert [m.filename for m in metas] == ["a.png"]


def test_a_note_reads_back_through_the_dashboard_even_over_a_longer_one(tmp_path):
    from optuna_dashboard import save_note

    from vae_search.dashboard.trial.publish import _save_note

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'n.db'}")
    study = optuna.create_study(storage=storage)
    other, trial = study.ask(), study.ask()
    save_note(other, "another trial's note")
    # someone wrote a long note on the running trial in the dashboard (three chunks) ...
    save_note(trial, "edited in the dashboard " * 200)
    # ... then the trial ends and its note is written: the dashboard reads exactly that one
    _save_note(trial, "## Trial 1\nshort")
    assert get_note(trial) == "## Trial 1\nshort"
    assert get_note(other) == "another trial's note"
    # the version moved on, so the dashboard's next edit (version + 1) is accepted
    from optuna_dashboard._note import get_note_from_system_attrs

    attrs = storage.get_study_system_attrs(study._study_id)
    assert get_note_from_system_attrs(attrs, trial._trial_id)["version"] == 2
    _save_note(other, "x" * 5000)  # longer than the old one: all its chunks are read back
    assert get_note(other) == "x" * 5000
