"""Trial checkpoints in the artifact store: round trip, throttling, clean-up."""

from __future__ import annotations

import optuna
import torch

from vae_search.search.checkpoints import CHECKPOINT_ATTR, TrialCheckpoint, artifact_store


def state(epoch: int) -> dict:
    return {"epoch": epoch, "model": {"w": torch.full((3,), float(epoch))}}


def test_round_trip_and_previous_file_removed(tmp_path):
    store = artifact_store(tmp_path / "art")
    trial = optuna.create_study().ask()
    ckpt = TrialCheckpoint(trial, store)
    assert ckpt.load() is None
    ckpt.save(state(1))
    first = trial.user_attrs[CHECKPOINT_ATTR]
    ckpt.save(state(2))
    loaded = ckpt.load()
    # the newest state comes back, and only its file is left in the store
    assert loaded["epoch"] == 2 and torch.equal(loaded["model"]["w"], torch.full((3,), 2.0))
    assert trial.user_attrs[CHECKPOINT_ATTR] != first
    assert len(list((tmp_path / "art").iterdir())) == 1


def test_interval_skips_checkpoints_that_come_too_soon(tmp_path):
    store = artifact_store(tmp_path / "art")
    trial = optuna.create_study().ask()
    ckpt = TrialCheckpoint(trial, store, interval=3600)
    ckpt.save(state(1))  # within an hour of the trial's start: skipped
    assert CHECKPOINT_ATTR not in trial.user_attrs
    ckpt._last -= 3600  # an hour later
    ckpt.save(state(5))
    assert ckpt.load()["epoch"] == 5
