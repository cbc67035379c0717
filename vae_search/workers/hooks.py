"""What a worker tells the layers above it: a trial ended, the study changed.

The worker and the objective know nothing of the dashboard. They call the hooks a caller
registers (the CLI registers the dashboard's publishers, see
:func:`vae_search.dashboard.hooks.dashboard_hooks`), the way ``study.optimize(callbacks=...)``
calls Optuna's callbacks. A hook that raises is logged and skipped: it never fails a trial or
stops a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.artifacts import FileSystemArtifactStore

from vae_search.config import RunConfig

log = logging.getLogger(__name__)

Outcome = Literal["complete", "pruned", "failed"]


@dataclass(frozen=True)
class TrialEnd:
    """A trial that has just ended, while it is still running in Optuna's eyes (so hooks can
    still write to it: notes, artifacts).

    Attributes:
        trial: the live trial.
        store: the worker's artifact store (None: the worker keeps no artifacts).
        config: the trial's resolved run config.
        history: per-epoch lists (``beta``, ``elbo``, ``recon``, ``kl``, ``mutual_info``,
            ``kl_per_dim``, ``seconds``).
        outcome: ``complete``, ``pruned`` or ``failed``.
        detail: how it ended, by user-attribute name: ``prune_reason``, ``pruned_epoch``,
            ``pruned_active_units`` (pruned), ``fail_reason`` (failed), ``final``, ``value``
            (complete).
        model: the trained model (complete trials only), else None.
        data: the trial's dataset (complete trials only), else None.
    """

    trial: optuna.Trial
    store: FileSystemArtifactStore | None
    config: RunConfig
    history: Mapping[str, list[Any]]
    outcome: Outcome
    detail: Mapping[str, Any]
    model: Any = None
    data: Any = None


TrialEndHook = Callable[[TrialEnd], None]
StudyChangedHook = Callable[[optuna.Study, float], None]


@dataclass
class WorkerHooks:
    """The hooks a worker calls.

    Attributes:
        trial_ended: called once per trial as it ends, before Optuna records its state.
        study_changed: called with ``(study, min_interval)`` after trials finish, under the
            study lock (one worker at a time): at most every ``WorkerOptions.figures_every``
            seconds, with that interval, and once as the worker stops, with 0. A hook may skip
            the call when another worker ran it less than ``min_interval`` seconds ago.
    """

    trial_ended: list[TrialEndHook] = field(default_factory=list)
    study_changed: list[StudyChangedHook] = field(default_factory=list)

    def end_trial(self, event: TrialEnd) -> None:
        for hook in self.trial_ended:
            _call(hook, event)

    def change_study(self, study: optuna.Study, min_interval: float) -> None:
        for hook in self.study_changed:
            _call(hook, study, min_interval)

    def __bool__(self) -> bool:
        return bool(self.trial_ended or self.study_changed)


def _call(hook: Callable[..., None], *args: Any) -> None:
    try:
        hook(*args)
    except Exception:  # noqa: BLE001 - a hook never fails a trial or stops a worker
        log.warning("hook %s failed", getattr(hook, "__qualname__", hook), exc_info=True)
