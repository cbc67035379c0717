"""A trial's per-epoch record: throttled writes while it runs, complete at its end, and a
pruner that sees every epoch at once."""

from __future__ import annotations

import copy

import optuna
import pytest
from optuna.storages import InMemoryStorage

from vae_search import records
from vae_search.study.collapse import CollapsePruner
from vae_search.train import EpochMetrics
from vae_search.workers.objective import HISTORY_KEYS, TrialHistory


class RecordingStorage(InMemoryStorage):
    """Keeps a copy of every record write (a ``vae_search:`` system attribute), as the
    database would receive it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, object]] = []

    def set_trial_system_attr(self, trial_id: int, key: str, value: object) -> None:
        if key.startswith(records.PREFIX):
            self.writes.append((key.removeprefix(records.PREFIX), copy.deepcopy(value)))
        super().set_trial_system_attr(trial_id, key, value)


def metrics(epoch: int, active: int = 1) -> EpochMetrics:
    return EpochMetrics(
        epoch=epoch, beta=0.1 * epoch, train_loss=100.0 - epoch, seconds=0.5, train_seconds=0.4,
        elbo=90.0 - epoch, recon=80.0, kl=float(epoch), kl_per_dim=[0.0, float(epoch)],
        active_units=active, unit_variance=[0.0, 1.0], mutual_info=0.01 * epoch,
    )


def live_trial(pruner: optuna.pruners.BasePruner | None = None) -> tuple[optuna.Trial, RecordingStorage]:
    storage = RecordingStorage()
    study = optuna.create_study(storage=storage, pruner=pruner)
    return study.ask(), storage


@pytest.mark.parametrize(("interval", "writes_before_end"), [(0.0, 5), (3600.0, 0)])
def test_history_is_written_per_interval_and_in_full_at_the_end(interval, writes_before_end):
    trial, storage = live_trial()
    history = TrialHistory(trial, interval)
    for e in range(1, 6):
        history.append(metrics(e))
    # each write stores both attributes
    assert len(storage.writes) == 2 * writes_before_end
    history.save()  # the trial ends
    history.save()  # a second end (a failure after a prune check) writes nothing new
    assert len(storage.writes) == 2 * max(writes_before_end, 1)
    frozen = storage.get_trial(trial._trial_id)
    assert frozen.user_attrs == {}  # nothing for `optuna best-trial` to print
    stored = {k: records.record(frozen, k) for k in ("active_units", "history")}
    assert stored["active_units"] == [1] * 5
    assert set(stored["history"]) == set(HISTORY_KEYS)
    assert stored["history"]["elbo"] == [90.0 - e for e in range(1, 6)]
    assert stored["history"]["kl_per_dim"][-1] == [0.0, 5.0]
    # every write is a prefix of the final history: a reader never sees epochs out of order
    for key, value in storage.writes:
        if key == "history":
            n = len(value["elbo"])
            assert all(value[k] == stored["history"][k][:n] for k in HISTORY_KEYS)


def test_a_trial_with_no_epoch_writes_nothing():
    trial, storage = live_trial()
    TrialHistory(trial, 0.0).save()
    assert storage.writes == []


def test_the_pruner_sees_epochs_not_yet_written():
    pruner = CollapsePruner(min_active_units=1, patience=2, warmup_epochs=0)
    trial, storage = live_trial(pruner)
    history = TrialHistory(trial, 3600.0)  # nothing is written before the trial ends
    verdicts = []
    for e, active in enumerate([2, 0, 0], start=1):
        history.append(metrics(e, active))
        trial.report(90.0 - e, e)
        view = history.pruner_view()
        verdicts.append(pruner.prune(trial.study, view))
    assert storage.writes == []
    # two epochs below the threshold: pruned at epoch 3, as with the attributes in storage
    assert verdicts == [False, False, True]
    assert records.active_units_history(view) == [2, 0, 0] and view.last_step == 3
    # the view is a copy: the live trial's own attributes are untouched
    assert not records.has_record(storage.get_trial(trial._trial_id), "active_units")
