"""The Optuna objective: one engine run per trial.

Per trial it samples a run config from the spec's space, trains it with the engine and, after
every epoch, stores the diagnostics, reports the validation -ELBO at β = 1 (comparable across
β) and asks the pruner. It returns the spec's objective on the validation split: the IWAE NLL
bound with the spec's k (``nll_iwae``) or the -ELBO (``elbo``); in a multi-objective study, one
value per objective (``distortion``, ``rate``, ``active_units``...).

Multi-objective studies: Optuna refuses ``trial.report`` and ``should_prune`` there, so nothing
is reported; the collapse rule is applied to the trial's own per-epoch record (its live
``active_units``) and a collapsed trial ends PRUNED with the same ``prune_reason`` record.

A trial's records (what ``status``, ``export``, the pruner and the dashboard read, always
through :mod:`vae_search.records`) are trial *system* attributes ``vae_search:<name>``, in the
study's database; plain Optuna (``optuna best-trial``, optuna-dashboard) does not print them:

- ``config``: the full resolved run config (re-run it with ``vae-search train``); for a custom
  model it holds ``model.factory``, ``model.options`` and ``model.factory_hash``;
- ``latent_dim``; ``active_units``: per-epoch counts (what the collapse pruner reads);
- ``history``: per-epoch ``beta``, ``elbo``, ``recon``, ``kl``, ``mutual_info``, ``kl_per_dim``,
  ``seconds``;
- both complete when the trial has ended, and written at most every
  ``storage.history_interval`` seconds while it runs: each write is a storage round trip, and
  with short epochs they add up (see the storage benchmark in the README). The pruners see
  every epoch at once (:meth:`TrialHistory.pruner_view`); a running trial's epoch count is
  its number of reported values;
- ``vocab``: token data built from a text file: the vocabulary, by id (export writes it into
  ``data.vocab``, so the re-run encodes the text the same way);
- ``final``: the final figures (``nll_iwae``, ``iwae_samples``, ``active_units``, ...);
- ``pruned_epoch``, ``pruned_active_units``;
- ``retry_of`` / ``requeued_from``: the trial this one continues; ``resumed_from_epoch``: the
  checkpoint epoch it started from;
- ``checkpoint``: artifact id of the last epoch checkpoint (see ``checkpoints``); a retry
  inherits it with the rest of its original's system attributes.

With an artifact store, the config and the history are also JSON artifacts of the trial
(``config.json``, ``history.json``), for a person on the dashboard's trial page. The user
attributes hold only short words: ``prune_reason`` (``collapse`` or ``performance``) and
``fail_reason`` (a non-finite loss names its epoch and step), so what Optuna prints stays
narrow. Studies from before this layout have every record inline in the user attributes;
:mod:`vae_search.records` reads both.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial

from vae_search import records
from vae_search.config import DataConfig, RunConfig, merge
from vae_search.errors import VaeSearchError
from vae_search.model.factory import record_factory_hash
from vae_search.storage.checkpoints import TrialCheckpoint
from vae_search.study.collapse import CollapsePruner, prune_reason, record_collapse_constraint
from vae_search.study.final import FINALIST_CONFIG, final_value
from vae_search.study.objectives import objective_values
from vae_search.study.spec import StudySpec, sample_run
from vae_search.train import EpochMetrics, train
from vae_search.train.loop import ProgressFn
from vae_search.workers.context import set_trial
from vae_search.workers.hooks import (
    AfterTell,
    DeferredJob,
    Outcome,
    TrialEnd,
    WorkerHooks,
    run_deferred,
)

log = logging.getLogger(__name__)

HISTORY_KEYS = ("beta", "elbo", "recon", "kl", "mutual_info", "kl_per_dim", "seconds")


class TrialHistory:
    """A live trial's per-epoch record: the ``active_units`` and ``history`` records.

    Both are written at most every ``interval`` seconds (0: every epoch) and by :meth:`save`
    when the trial ends. The pruners do not wait for the write: :meth:`pruner_view` is the
    trial as ``Trial.should_prune`` hands it to the pruner, with the active units up to the
    last epoch.
    """

    def __init__(self, trial: optuna.Trial, interval: float = 0.0, latent_dim: int | None = None):
        self.trial = trial
        self.interval = interval
        self.latent_dim = latent_dim
        self.values: dict[str, list[Any]] = {k: [] for k in HISTORY_KEYS}
        self.active_units: list[int] = []
        self._saved_at = time.monotonic()
        self._saved_len = 0

    def append(self, m: EpochMetrics) -> None:
        self.active_units.append(m.active_units)
        for k in HISTORY_KEYS:
            self.values[k].append(getattr(m, k))
        if time.monotonic() - self._saved_at >= self.interval:
            self.save()

    def save(self) -> None:
        """Write both attributes unless the stored ones already hold every epoch."""
        n = len(self.active_units)
        if n and n != self._saved_len:
            records.write(self.trial, records.ACTIVE_UNITS, list(self.active_units))
            records.write(self.trial, records.HISTORY, self.values)
            self._saved_len = n
        self._saved_at = time.monotonic()

    def pruner_view(self) -> FrozenTrial:
        """What ``Trial.should_prune`` passes the pruner (Optuna's in-process copy of the
        trial: its reports and attributes), with the live ``active_units`` (its other system
        attributes load from the storage on first use)."""
        view = copy.copy(self.trial._get_latest_trial())
        live = {records.ACTIVE_UNITS: list(self.active_units), records.LATENT_DIM: self.latent_dim}
        view.system_attrs = records.Overlay(view.system_attrs, live)  # type: ignore[assignment]
        return view


@dataclass
class TrialRun:
    """One trial on its way through the engine (see :meth:`Objective.begin`)."""

    trial: optuna.Trial
    cfg: RunConfig
    checkpoint: TrialCheckpoint | None
    history: TrialHistory
    on_epoch: Callable[[EpochMetrics], None]
    threshold: float


class Objective:
    """Callable objective for ``study.optimize``.

    Args:
        spec: the study spec.
        store: artifact store for checkpoints and pictures (None: neither).
        overrides: run-config values forced by this worker (``device``, ``threads``).
        on_trial_start: called first thing in every trial (the budget lock is released there).
        progress: per-step training progress callback.
        hooks: told as each trial ends (the CLI registers the dashboard's pictures and notes).
        after_tell: where the hooks' deferred jobs (the pictures) go once the trial is told
            (:meth:`told`); None: they run at once, before the trial is told.
    """

    def __init__(
        self,
        spec: StudySpec,
        store: FileSystemArtifactStore | None = None,
        overrides: dict[str, Any] | None = None,
        on_trial_start: Callable[[optuna.Trial], None] | None = None,
        progress: ProgressFn | None = None,
        hooks: WorkerHooks | None = None,
        after_tell: AfterTell | None = None,
    ):
        self.spec = spec
        self.hooks = hooks or WorkerHooks()
        self.after_tell = after_tell
        self._untold: list[tuple[int, DeferredJob]] = []  # (trial, job) of trials not yet told
        self.store = store
        self.overrides = overrides or {}
        self.on_trial_start = on_trial_start
        self.progress = progress
        self._data: dict[str, Any] = {}
        self.interrupted = False  # set when a trial was stopped by a second signal
        # wraps the storing of a finished trial's results (the worker's GracefulStop.hold: a
        # second signal waits until they are stored rather than break them off)
        self.hold: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
        self.stop_now: Callable[[], bool] = lambda: False  # a second signal came during a hold
        self.failed_streak: list[tuple[int, str]] = []  # (trial, reason) since the last success

    def data_for(self, cfg: RunConfig) -> Any:
        """Load each distinct dataset once per worker process."""
        from vae_search.data import load_data

        key = _data_key(cfg.data)
        if key not in self._data:
            self._data = {key: load_data(cfg.data)}  # keep one: a study rarely varies its data
        return self._data[key]

    def preload(self, cfg: DataConfig, data: Any) -> None:
        """Use ``data`` (loaded by the worker's preflight) for trials whose data config is ``cfg``."""
        self._data = {_data_key(cfg): data}

    def run_config(self, trial: optuna.Trial) -> RunConfig:
        if self.spec.finalize is not None:  # a finalist: the enqueued config, nothing sampled
            raw = records.record(trial._get_latest_trial(), FINALIST_CONFIG)
            if not isinstance(raw, dict):
                raise VaeSearchError(
                    f"trial {trial.number} of finalists' study {trial.study.study_name!r} has no "
                    f"{FINALIST_CONFIG}; run vae-search finalize to enqueue finalists"
                )
            cfg = RunConfig.from_dict(raw, source=f"finalist trial {trial.number}")
        else:
            cfg = sample_run(trial, self.spec)
        overrides = dict(self.overrides)
        if not self.spec.wants_final_iwae():
            # an objective that never reads the final IWAE bound does not pay for it: with the
            # MNIST spec's k = 500 on 1,000 images it was most of a trial's fixed cost
            overrides["eval"] = {"iwae_samples": 0}
        if overrides:
            cfg = RunConfig.from_dict(merge(cfg.to_dict(), overrides), source="worker options")
        # a custom factory's source hash goes into the stored config: export and re-runs warn
        # when their code differs
        return record_factory_hash(cfg)

    def _prune_reason(self, trial: optuna.Trial, history: TrialHistory, m: EpochMetrics) -> str | None:
        """Why the trial is pruned after this epoch (None: it goes on)."""
        pruner = trial.study.pruner
        if self.spec.multi_objective:
            # no report, no should_prune (Optuna refuses both): the collapse rule alone, on the
            # trial's own record
            collapsed = isinstance(pruner, CollapsePruner) and pruner.is_collapsed(history.pruner_view())
            return "collapse" if collapsed else None
        trial.report(m.elbo, m.epoch)
        view = history.pruner_view()
        if pruner.prune(trial.study, view):  # Trial.should_prune, live attrs
            return prune_reason(pruner, trial.study, view) or "performance"
        return None

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        set_trial(trial.number)  # the log lines of this trial say so
        try:
            return self._run(trial)
        finally:
            set_trial(None)

    def _run(self, trial: optuna.Trial) -> float | list[float]:
        if self.on_trial_start is not None:
            self.on_trial_start(trial)
        run = self.begin(trial)
        try:
            result = train(
                run.cfg,
                data=self.data_for(run.cfg),
                on_epoch=run.on_epoch,
                checkpoint=run.checkpoint,
                progress=self.progress,
            )
        except Exception as e:
            return self.failed(run, e)
        except KeyboardInterrupt:
            return self.interrupt(run)
        with self.hold():
            return self.complete(run, result)

    def begin(self, trial: optuna.Trial) -> TrialRun:
        """Everything a trial needs before training: its run config (stored), checkpoint,
        history and epoch callback (which reports, prunes and raises ``TrialPruned``)."""
        with warnings.catch_warnings():  # "experimental" since Optuna 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # the trial as Optuna keeps it in process; its system attrs are read on first use
            origin = RetryHeartbeatStaleTrialCallback.retried_trial_number(trial._get_latest_trial())
        if origin is not None:  # first: a retry killed early still says what it continues
            records.write(trial, records.RETRY_OF, origin)
            log.info("trial %d retries trial %d", trial.number, origin)
        cfg = self.run_config(trial)
        records.write(trial, records.CONFIG, cfg.to_dict())
        records.write(trial, records.LATENT_DIM, cfg.model.latent_dim)
        collapse = self.spec.pruner.collapse
        threshold = collapse.threshold(cfg.model.latent_dim)
        checkpoint = (
            TrialCheckpoint(trial, self.store, self.spec.storage.checkpoint_interval)
            if self.store is not None else None
        )
        history = TrialHistory(trial, self.spec.storage.history_interval, cfg.model.latent_dim)

        def on_epoch(m: EpochMetrics) -> None:
            history.append(m)
            reason = self._prune_reason(trial, history, m)
            if reason is not None:
                trial.set_user_attr(records.PRUNE_REASON, reason)
                records.write(trial, records.PRUNED_EPOCH, m.epoch)
                records.write(trial, records.PRUNED_ACTIVE_UNITS, m.active_units)
                history.save()
                self._save_artifacts(trial, cfg, history)
                self.failed_streak.clear()
                self._constraint(trial, m.active_units, threshold)
                self._publish(trial, cfg, history.values, "pruned", {
                    "prune_reason": reason, "pruned_epoch": m.epoch,
                    "pruned_active_units": m.active_units,
                })
                message = pruned_message(reason, m.epoch, m.active_units, cfg.model.latent_dim, threshold)
                log.info("pruned (%s)", message)  # Optuna's own line shows only with -v
                raise optuna.TrialPruned(message)

        self._record_vocab(trial, cfg)
        return TrialRun(trial, cfg, checkpoint, history, on_epoch, threshold)

    def _record_vocab(self, trial: optuna.Trial, cfg: RunConfig) -> None:
        """Store a text dataset's vocabulary with the trial (export writes it into data.vocab).
        Data that cannot be read is left to training, which fails the trial with the reason."""
        try:
            data = self.data_for(cfg)
        except VaeSearchError:
            return
        if getattr(data, "vocab", None) is not None and cfg.data.vocab is None:
            records.write(trial, records.VOCAB, data.vocab)

    def failed(self, run: TrialRun, error: Exception) -> float:
        """The value of a trial whose training raised ``error``; what is not a finding about
        the trial (``TrialPruned`` among them) is raised again, as from ``study.optimize``."""
        if isinstance(error, VaeSearchError):
            # a NaN is a finding about this configuration, not a worker crash: the trial fails
            # (Optuna fails a trial whose value is NaN) with the reason kept, and the worker goes
            # on; so does one whose sampled data cannot be read (the worker's preflight checked
            # the spec's own), without Optuna's traceback
            return self._fail(run.trial, str(error), run.cfg, run.history)
        if isinstance(error, torch.cuda.OutOfMemoryError):
            # too big for this GPU: record it and let the worker go on with the next trial; the
            # memory is freed once the traceback no longer holds train()'s model and batches
            # (workers sharing the GPU would run out in turn)
            error.__traceback__ = None
            del error
            gc.collect()
            torch.cuda.empty_cache()
            cfg = run.cfg
            return self._fail(run.trial, f"CUDA out of memory on {cfg.device} (batch_size {cfg.batch_size}, "
                                         f"latent_dim {cfg.model.latent_dim}); lower batch_size or the model size",
                              cfg, run.history)
        raise error

    def interrupt(self, run: TrialRun) -> float:
        """Stop now, lose nothing: a copy waits in the queue with the last checkpoint, and this
        trial fails quietly (NaN) so the worker can exit without a traceback."""
        run.history.save()
        self._save_artifacts(run.trial, run.cfg, run.history)
        run.trial.set_user_attr(records.FAIL_REASON, f"interrupted; re-queued as trial {requeue(run.trial)}")
        self.interrupted = True
        return float("nan")

    def complete(self, run: TrialRun, result: Any) -> float:
        """Record a finished run's figures; its value for the study."""
        trial = run.trial
        if result.resumed_from:
            records.write(trial, records.RESUMED_FROM_EPOCH, result.resumed_from)
        final = result.final
        run.history.save()
        self.failed_streak.clear()
        records.write(trial, records.FINAL, final)
        self._save_artifacts(trial, run.cfg, run.history)
        self._constraint(trial, final["active_units"], run.threshold)
        if self.spec.finalize is not None:
            values = [final_value(final, self.spec.finalize.split)]
        else:
            values = objective_values(final, self.spec.objective)
        value = values[0] if len(values) == 1 else None  # the note quotes one objective only
        self._publish(trial, run.cfg, run.history.values, "complete", {"final": final, "value": value}, result)
        names = self.spec.objective if isinstance(self.spec.objective, list) else [
            "test nll_iwae" if self.spec.finalize is not None else self.spec.objective]
        log.info("complete: %s, %s/%d active units",
                 ", ".join(f"{n} {v:.3f}" for n, v in zip(names, values)),
                 final.get("active_units"), run.cfg.model.latent_dim)
        return values[0] if len(values) == 1 else values

    def _fail(self, trial: optuna.Trial, reason: str, cfg: RunConfig, history: TrialHistory) -> float:
        """Fail the trial (Optuna fails a NaN value) with its reason, without a traceback."""
        history.save()
        self._save_artifacts(trial, cfg, history)
        trial.set_user_attr(records.FAIL_REASON, reason)
        self.failed_streak.append((trial.number, reason))
        log.warning("trial %d failed: %s", trial.number, reason)
        self._publish(trial, cfg, history.values, "failed", {"fail_reason": reason})
        return float("nan")

    def _save_artifacts(self, trial: optuna.Trial, cfg: RunConfig, history: TrialHistory) -> None:
        """Upload the config and the history as JSON artifacts (for people: the records
        themselves are system attributes); never fail a trial for them."""
        if self.store is None:
            return
        try:
            save_json_artifacts(trial, self.store, {"config.json": cfg.to_dict(), "history.json": {
                "active_units": history.active_units, **history.values}})
        except Exception:  # noqa: BLE001 - the records are in the database already
            log.warning("trial %d: could not upload its config and history", trial.number, exc_info=True)

    def _constraint(self, trial: optuna.Trial, active_units: int, threshold: float) -> None:
        if self.spec.pruner.constraint:
            record_collapse_constraint(trial, active_units, threshold)

    def _publish(
        self,
        trial: optuna.Trial,
        cfg: RunConfig,
        history: dict[str, list[Any]],
        outcome: Outcome,
        detail: dict[str, Any],
        result: Any = None,
    ) -> None:
        """Tell the ``trial_ended`` hooks (pictures and a note, when the CLI registered them);
        what they leave for later waits for :meth:`told` (without ``after_tell``: runs now)."""
        if not self.hooks.trial_ended:
            return
        jobs = self.hooks.end_trial(TrialEnd(
            trial=trial, store=self.store, config=cfg, history=history, outcome=outcome,
            detail=detail, model=result.model if result is not None else None,
            data=self.data_for(cfg) if result is not None else None,
        ))
        for job in jobs:
            if self.after_tell is None:
                run_deferred(job)
            else:
                self._untold.append((trial.number, job))

    def told(self, number: int | None = None) -> None:
        """Trial ``number`` (None: every trial published so far) has been told: its deferred
        jobs go to the after-tell thread (which blocks while it has enough to do)."""
        keep = []
        for trial, job in self._untold:
            if number is None or trial == number:
                assert self.after_tell is not None
                self.after_tell.submit(job, trial)
            else:
                keep.append((trial, job))
        self._untold = keep


def pruned_message(reason: str, epoch: int, active_units: int, latent_dim: int, threshold: float) -> str:
    """Why a trial was pruned, as Optuna logs it: the cause first, the active units as a fact
    (a performance prune of a trial with every unit active is about its -ELBO, not its units)."""
    if reason == "collapse":
        return (f"collapse: only {active_units}/{latent_dim} latent units active at epoch {epoch} "
                f"(needs {threshold:g})")
    return f"performance: -ELBO worse than the pruner's cut at epoch {epoch} (active units {active_units}/{latent_dim})"


def _data_key(cfg: DataConfig) -> str:
    """Trials whose data configs give the same key share one loaded dataset."""
    return repr(dataclasses.asdict(cfg))


def save_json_artifacts(trial: optuna.Trial, store: FileSystemArtifactStore, files: dict[str, Any]) -> None:
    """Upload each ``name: value`` of ``files`` as a JSON artifact of ``trial``."""
    import json
    import tempfile
    from pathlib import Path

    from optuna.artifacts import upload_artifact

    with tempfile.TemporaryDirectory() as tmp:
        for name, value in files.items():
            path = Path(tmp) / name
            path.write_text(json.dumps(value, indent=1, default=str))
            upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial,
                            mimetype="application/json")


def requeue(trial: optuna.Trial) -> int:
    """Enqueue a copy of an interrupted trial (same params, its records and checkpoint);
    return its number."""
    study = trial.study
    study.enqueue_trial(trial.params, user_attrs=dict(trial.user_attrs))
    waiting = max(
        study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)),
        key=lambda t: t.number,
    )
    number = waiting.number
    storage = study._storage
    for k, v in storage.get_trial_system_attrs(trial._trial_id).items():
        if k.startswith(records.PREFIX):
            storage.set_trial_system_attr(waiting._trial_id, k, v)
    storage.set_trial_system_attr(waiting._trial_id, records.key(records.REQUEUED_FROM), trial.number)
    log.warning(
        "trial %d interrupted; re-queued as trial %d with its checkpoint", trial.number, number
    )
    return number
