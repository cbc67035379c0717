"""Trial checkpoints in the artifact store: round trip, throttling, clean-up."""

from __future__ import annotations

import optuna
import torch

from vae_search.storage.checkpoints import CHECKPOINT_ATTR, TrialCheckpoint, artifact_store


def stored(trial: optuna.Trial) -> str | None:
    """The checkpoint id in the trial's storage (its system attribute)."""
    return trial.storage.get_trial_system_attrs(trial._trial_id).get(CHECKPOINT_ATTR)


def state(epoch: int) -> dict:
    return {"epoch": epoch, "model": {"w": torch.full((3,), float(epoch))}}


def test_round_trip_and_previous_file_removed(tmp_path):
    store = artifact_store(tmp_path / "art")
    trial = optuna.create_study().ask()
    ckpt = TrialCheckpoint(trial, store)
    assert ckpt.load() is None
    ckpt.save(state(1))
    first = stored(trial)
    ckpt.save(state(2))
    loaded = ckpt.load()
    # the newest state comes back, and only its file is left in the store
    assert loaded["epoch"] == 2 and torch.equal(loaded["model"]["w"], torch.full((3,), 2.0))
    assert stored(trial) != first
    assert len(list((tmp_path / "art").iterdir())) == 1


def test_interval_skips_checkpoints_that_come_too_soon(tmp_path):
    store = artifact_store(tmp_path / "art")
    trial = optuna.create_study().ask()
    ckpt = TrialCheckpoint(trial, store, interval=3600)
    ckpt.save(state(1))  # within an hour of the trial's start: skipped
    assert stored(trial) is None
    ckpt._last -= 3600  # an hour later
    ckpt.save(state(5))
    assert ckpt.load()["epoch"] == 5


def _interrupted_trial(tmp_path, cfg):
    """A trial killed after epoch 2 of 3, whose last checkpoint lies in a real artifact store."""
    from vae_search.train import train

    class Killed(Exception):
        pass

    def die_after_two(m):
        if m.epoch == 2:
            raise Killed

    store = artifact_store(tmp_path)
    trial = optuna.create_study().ask()
    try:
        train(cfg, checkpoint=TrialCheckpoint(trial, store), on_epoch=die_after_two)
    except Killed:
        pass
    (path,) = tmp_path.iterdir()
    return trial, store, path


def test_a_truncated_or_lost_checkpoint_restarts_the_trial_with_a_warning(tmp_path, caplog):
    import logging

    from tests.conftest import small_config
    from vae_search.train import train

    cfg = small_config(epochs=3)
    fresh = train(cfg)
    damages = {  # what a retry may find, and the words its warning must use
        "intact": (lambda p: None, None),
        "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated or corrupt"),
        "garbage": (lambda p: p.write_bytes(b"\0" * 4096), "truncated or corrupt"),
        "missing": (lambda p: p.unlink(), "is missing from the artifact store"),  # shared dir lost it
    }
    for damage, (apply, words) in damages.items():
        trial, store, path = _interrupted_trial(tmp_path / damage, cfg)
        apply(path)
        caplog.clear()
        seen = []
        with caplog.at_level(logging.WARNING):
            result = train(cfg, checkpoint=TrialCheckpoint(trial, store), on_epoch=seen.append)
        # every retry ends where a fresh run ends; an intact checkpoint resumes after epoch 2,
        # a damaged one is named in one warning line and the run starts over
        assert result.final == fresh.final, damage
        assert [m.epoch for m in seen] == [1, 2, 3], damage
        if words is None:
            assert result.resumed_from == 2 and "from scratch" not in caplog.text
        else:
            assert result.resumed_from == 0, damage
            (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert f"trial {trial.number}" in warning and words in warning, warning
            assert warning.endswith("starting this run from scratch") and "\n" not in warning
