"""Where a trial's records live, and the one way to read them.

A trial's machine records (its config, per-epoch history, final figures, checkpoint id, ...)
are trial *system* attributes named ``vae_search:<record>``, written through the storage:
they live in the study's database, so ``status``, ``export`` and the report need no artifact
directory, and neither ``optuna best-trial`` nor optuna-dashboard prints them (both print the
user attributes). The user attributes keep only short words for people: ``prune_reason``,
``fail_reason`` and a finalist run's ``finalist_of``. The config and the history are also JSON
artifacts of the trial (``config.json``, ``history.json``) when the worker has an artifact
store. A finalists' study's enqueued runs (``finalist_config``, ``finalist``) and a warm start's
copies (``warm_start``) keep their records here too.

Studies written before this layout kept every record inline in the user attributes under the
same name (``config``, ``history``, ``final``, ...): each reader here falls back to them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

PREFIX = "vae_search:"

# the records, by name (a system attribute PREFIX + name; the old layout's user attribute name)
CONFIG = "config"  # the full resolved run config (a dict)
LATENT_DIM = "latent_dim"
ACTIVE_UNITS = "active_units"  # per-epoch counts: what the collapse pruner reads
HISTORY = "history"  # per-epoch beta, elbo, recon, kl, mutual_info, kl_per_dim, seconds
FINAL = "final"  # the final figures of a complete trial
CHECKPOINT = "checkpoint"  # artifact id of the last epoch checkpoint
PRUNED_EPOCH = "pruned_epoch"
PRUNED_ACTIVE_UNITS = "pruned_active_units"
RESUMED_FROM_EPOCH = "resumed_from_epoch"
RETRY_OF = "retry_of"
REQUEUED_FROM = "requeued_from"
EPOCHS = "epochs"
VOCAB = "vocab"  # a text trial's vocabulary (token data), so an export re-encodes as it did
FINALIST_CONFIG = "finalist_config"  # a finalist run's enqueued run config (STUDY.final)
FINALIST = "finalist"  # which search trial, rank and seed a finalist run is (STUDY.final)
WARM_START = "warm_start"  # a warm-start copy's origin: {study, trial}

# short words for people, kept as user attributes
PRUNE_REASON = "prune_reason"
FAIL_REASON = "fail_reason"
FINALIST_OF = "finalist_of"  # a finalist run: "trial N, seed S" of the search study
USER_RECORDS = (PRUNE_REASON, FAIL_REASON, FINALIST_OF)


def key(name: str) -> str:
    """The system attribute that holds record ``name``."""
    return f"{PREFIX}{name}"


def record(trial: Any, name: str, default: Any = None) -> Any:
    """Record ``name`` of a trial (a FrozenTrial, or anything with ``system_attrs`` and
    ``user_attrs``): the system attribute, else the old layout's user attribute."""
    if name in USER_RECORDS:
        return (getattr(trial, "user_attrs", None) or {}).get(name, default)
    system = getattr(trial, "system_attrs", None) or {}
    k = key(name)
    if k in system:
        return system[k]
    return (getattr(trial, "user_attrs", None) or {}).get(name, default)


def has_record(trial: Any, name: str) -> bool:
    return key(name) in (getattr(trial, "system_attrs", None) or {}) or name in (
        getattr(trial, "user_attrs", None) or {}
    )


def trial_config(trial: Any) -> dict[str, Any] | None:
    return record(trial, CONFIG)


def trial_history(trial: Any) -> dict[str, list[Any]] | None:
    return record(trial, HISTORY)


def trial_final(trial: Any) -> dict[str, Any]:
    """The final figures ({} for a trial that did not complete)."""
    return record(trial, FINAL) or {}


def active_units_history(trial: Any) -> list[int]:
    return list(record(trial, ACTIVE_UNITS) or [])


def latent_dim(trial: Any) -> int | None:
    return record(trial, LATENT_DIM)


def prune_reason(trial: Any) -> str | None:
    return record(trial, PRUNE_REASON)


def trial_epochs(trial: Any) -> int | None:
    """The epochs the trial was to run (its config's, or an explicit ``epochs`` record)."""
    return record(trial, EPOCHS) or (trial_config(trial) or {}).get("epochs")


def write(trial: Any, name: str, value: Any) -> None:
    """Store record ``name`` of a live ``optuna.Trial`` (a storage round trip)."""
    trial.storage.set_trial_system_attr(trial._trial_id, key(name), value)


class Overlay(Mapping[str, Any]):
    """A trial's system attributes with some records replaced, read without loading the rest
    (what the pruner sees: the live active units, before they are written)."""

    def __init__(self, base: Mapping[str, Any], records: Mapping[str, Any]):
        self._base = base
        self._extra = {key(k): v for k, v in records.items()}

    def __getitem__(self, k: str) -> Any:
        if k in self._extra:
            return self._extra[k]
        return self._base[k]

    def __contains__(self, k: object) -> bool:
        return k in self._extra or k in self._base

    def __iter__(self) -> Iterator[str]:
        yield from self._extra
        yield from (k for k in self._base if k not in self._extra)

    def __len__(self) -> int:
        return len(set(self._extra) | set(self._base))
