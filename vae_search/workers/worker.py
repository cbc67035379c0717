"""A search worker: join the study and run trials until its budget is reached.

Each trial is one ``study.optimize(n_trials=1)`` call (heartbeats work with ``optimize``, not
ask/tell), entered through the budget gate of :mod:`vae_search.workers.budget`. With a
population of P (``--population``, the spec's ``population``) a worker instead asks for up to P
trials at once through the same gate and trains them together
(:mod:`vae_search.workers.population`, which keeps their heartbeats itself).

Stopping: the first SIGINT/SIGTERM lets the current trial finish, then the worker exits; the
second stops at once: the running trial is recorded as failed and a copy (same parameters, its
last checkpoint) is enqueued, so another worker, or the next run, resumes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled

from vae_search.errors import StorageError, TrainingError
from vae_search.storage import create_or_load_study, open_storage, redact, resolve_url
from vae_search.storage.checkpoints import artifact_store, resolve_artifact_dir
from vae_search.storage.locks import Lock, study_lock
from vae_search.storage.resilient import resilient
from vae_search.storage.stale import fail_stale_trials
from vae_search.storage.timing import ENV_VAR as TIMING_ENV
from vae_search.storage.timing import StorageTimer, instrument
from vae_search.study.final import final_label
from vae_search.study.objectives import name_objective
from vae_search.study.references import store_references
from vae_search.study.spec import StudySpec, build_pruner, build_sampler
from vae_search.study.warm_start import apply_warm_start
from vae_search.train.loop import ProgressFn
from vae_search.workers import budget
from vae_search.workers.context import set_worker
from vae_search.workers.hooks import AfterTell, WorkerHooks
from vae_search.workers.objective import Objective
from vae_search.workers.population import Heartbeats, PopulationRound, ask_trials
from vae_search.workers.preflight import check_device, check_model, prepare_data, trial_base

log = logging.getLogger(__name__)


@dataclass
class WorkerOptions:
    """How one worker process runs.

    Attributes:
        storage: storage URL (None: ``VAE_SEARCH_STORAGE`` or the SQLite default).
        artifact_dir: artifact store directory (None: ``VAE_SEARCH_ARTIFACTS`` or ./artifacts).
        n_trials: the most trials this worker runs (None: until the study's budget is met).
        timeout: seconds after which this worker starts no new trial (None: the spec's).
        device: run-config ``device`` for every trial (None: the spec's).
        threads: CPU threads per trial (None: the spec's).
        index: this worker's number: the sampler seed is the spec's seed + index (None: + the
            process id, so workers started by hand do not propose the same parameters).
        poll_seconds: wait between budget checks while other workers' trials finish.
        max_consecutive_failures: stop with an error after this many failed trials in a row
            (a spec whose every trial fails would otherwise never reach its budget).
        figures_every: refresh the study's dashboard figures after a trial when this many
            seconds have passed since any worker last did and a trial has finished since
            (and once when this worker stops).
        population: trials held and trained at once, those of one network shape as one
            stacked model (None: the spec's ``population``; 1: one ``study.optimize`` trial at
            a time); see :mod:`vae_search.workers.population`.
        pictures_after_tell: draw and write a trial's pictures on a thread after the trial is
            told (their artifact records are written before), so the next trial starts at once;
            False: before it is told, as part of the trial (see :class:`~vae_search.workers.hooks.AfterTell`).
        pictures_wait: seconds a stopping worker waits for pictures still being drawn; those
            not written by then show as "picture not written". A second signal does not wait:
            the pictures not yet started are dropped (see :meth:`AfterTell.close <vae_search.workers.hooks.AfterTell.close>`).
    """

    storage: str | None = None
    artifact_dir: str | None = None
    n_trials: int | None = None
    timeout: float | None = None
    device: str | None = None
    threads: int | None = None
    index: int | None = None
    poll_seconds: float = 2.0
    max_consecutive_failures: int = 5
    figures_every: float = 30.0
    population: int | None = None
    pictures_after_tell: bool = True
    pictures_wait: float = 300.0


@dataclass
class WorkerResult:
    trials: list[int] = field(default_factory=list)
    stopped_by_signal: bool = False


class GracefulStop:
    """First SIGINT/SIGTERM: stop after the current trial. Second: KeyboardInterrupt now,
    except while a finished trial's results are being stored (:meth:`hold`): then the worker
    stops right after they are, with nothing to re-queue."""

    def __init__(self) -> None:
        self.requested = False
        self.now = False  # a second signal came while held: stop once the trial is stored
        self._held = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """While a trial whose training finished records its figures, a second signal does not
        raise in the middle of the writes (or of a picture): it is honoured once they are done."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1

    def stopped_message(self) -> str:
        """What the CLI says when a second signal stopped the worker."""
        if self.now:
            return "worker stopped; its finished trial is stored"
        return "worker stopped; its trial was re-queued"

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.requested and self._held:
            self.now = True
            log.warning("%s again: stopping as soon as this finished trial's results are stored", name)
            return
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("%s: finishing the current trial, then stopping (send it again to stop now)", name)


def open_study(
    spec: StudySpec, storage_url: str | None, worker_index: int | None = 0, timers: list[StorageTimer] | None = None
) -> tuple[optuna.Study, str]:
    """Open the spec's study (creating it if missing) with heartbeats on; return it and its URL.

    With ``timers`` (a list), the storage's calls are timed and the timer appended to it.
    """
    url = resolve_url(storage_url)
    st = spec.storage
    storage = resilient(open_storage(
        url,
        heartbeat_interval=st.heartbeat_interval,
        grace_period=st.grace_period,
        max_retry=st.max_retry,
    ))
    if timers is not None:
        timers.append(instrument(storage))
    study = create_or_load_study(
        storage, spec.study, build_sampler(spec, worker=worker_index), build_pruner(spec),
        directions=spec.directions,
    )
    # a multi-objective study's charts in optuna-dashboard: not "Objective 0", "Objective 1"
    name_objective(study, spec.objective if spec.finalize is None else [final_label(spec.finalize)])
    store_references(study, spec.references, spec.our_conditions())
    return study, url


def run_worker(
    spec: StudySpec,
    opts: WorkerOptions,
    stop: GracefulStop | None = None,
    progress: ProgressFn | None = None,
    hooks: WorkerHooks | None = None,
) -> WorkerResult:
    """Run trials of ``spec``'s study until its budget, ``opts.n_trials`` or ``opts.timeout``.

    ``hooks`` are told as each trial ends and when the study changed (the CLI registers the
    dashboard's publishers there; without them no pictures or study figures are made).
    """
    hooks = hooks or WorkerHooks()
    set_worker(opts.index)  # every log line of this process says which worker it comes from
    overrides = {
        k: v for k, v in (("device", opts.device), ("threads", opts.threads)) if v is not None
    }
    check_device(spec, overrides)  # before the study is touched: one line, no FAIL left behind
    data = prepare_data(spec, overrides)
    check_model(trial_base(spec, overrides), data, f"{spec.source}: ")  # a broken factory: one line
    timing_dir = os.environ.get(TIMING_ENV)
    timers: list[StorageTimer] = []
    study, url = open_study(spec, opts.storage, opts.index, timers if timing_dir else None)
    if spec.warm_start is not None:
        _warm_start(study, url, spec)
    after_tell = AfterTell(opts.pictures_wait) if opts.pictures_after_tell and hooks.trial_ended else None
    objective = Objective(spec, artifact_store(resolve_artifact_dir(opts.artifact_dir)), overrides,
                          progress=progress, hooks=hooks, after_tell=after_tell)
    objective.preload(trial_base(spec, overrides).data, data)
    result = WorkerResult()
    now = False  # stopped by a second signal: no wait for pictures
    try:
        return _run(study, url, spec, opts, objective, stop, result, hooks)
    except KeyboardInterrupt:
        now = True
        raise
    finally:
        if after_tell is not None:
            if not now:
                objective.told()  # a trial stopped between its publishing and the tell
            # a graceful stop loses no picture; stopping now, those not drawn say "not written"
            try:
                after_tell.close(now=now)
            except KeyboardInterrupt:  # a second signal while waiting for them: its trials are stored
                if stop is not None and not now:
                    stop.now = True
                raise
        if timers:
            timers[0].dump(Path(timing_dir), len(result.trials))


def _run(study: optuna.Study, url: str, spec: StudySpec, opts: WorkerOptions, objective: Objective,
         stop: GracefulStop | None, result: WorkerResult, hooks: WorkerHooks) -> WorkerResult:
    lock = study_lock(url, spec.study)

    def on_trial_start(trial: optuna.Trial) -> None:
        lock.release()
        result.trials.append(trial.number)

    objective.on_trial_start = on_trial_start
    if stop is not None:
        objective.hold = stop.hold
        objective.stop_now = lambda: stop.now
    timeout = opts.timeout if opts.timeout is not None else spec.timeout
    deadline = time.monotonic() + timeout if timeout else None
    size = opts.population if opts.population is not None else spec.population
    if size <= 1:
        return _loop(study, spec, opts, objective, stop, result, hooks, lock, deadline, None)
    with Heartbeats(study) as beats:
        population = PopulationRound(study, objective, beats, size)
        return _loop(study, spec, opts, objective, stop, result, hooks, lock, deadline, population)


def _loop(study: optuna.Study, spec: StudySpec, opts: WorkerOptions, objective: Objective,
          stop: GracefulStop | None, result: WorkerResult, hooks: WorkerHooks, lock: Lock,
          deadline: float | None, population: PopulationRound | None) -> WorkerResult:
    last_refresh = float("-inf")
    log.info("joined study %r as worker %s (pid %d)%s", spec.study,
             opts.index if opts.index is not None else "without --index", os.getpid(),
             f", holding up to {population.size} trials at once" if population else "")
    while True:
        if stop is not None and stop.requested:
            result.stopped_by_signal = True
            break
        if opts.n_trials is not None and len(result.trials) >= opts.n_trials:
            break
        if deadline is not None and time.monotonic() >= deadline:
            log.info("timeout reached")
            break
        lock.acquire()
        try:
            fail_stale_trials(study)
            left, running = budget.remaining(study, spec.n_trials)
            if spec.finalize is not None and not budget.waiting(study):
                left = 0  # a finalists' study only runs its enqueued trials (and their retries)
            if left is not None and left <= 0:
                lock.release()
                if running == 0 or not is_heartbeat_enabled(study._storage):
                    break  # without heartbeats (gRPC proxy) a dead worker's trial never ends
                time.sleep(opts.poll_seconds)  # running trials may still fail and come back
                continue
            if population is None:
                study.optimize(objective, n_trials=1, gc_after_trial=False)
                with objective.hold():  # a second signal while it waits for a free slot: stop after
                    objective.told()  # now its pictures are drawn, while the next trial trains
            else:
                n = population.size if left is None else min(population.size, left)
                if opts.n_trials is not None:
                    n = min(n, opts.n_trials - len(result.trials))
                # all n are asked under the lock, so the budget stays exact
                trials = ask_trials(study, n, population.beats, lambda t: result.trials.append(t.number))
                lock.release()
                population.run(trials)
        finally:
            lock.release()
        if time.monotonic() - last_refresh >= opts.figures_every:
            _study_changed(hooks, study, lock, opts.figures_every)
            last_refresh = time.monotonic()
        if objective.interrupted:
            raise KeyboardInterrupt
        if stop is not None and stop.now:  # a second signal while the trial's results were stored
            result.stopped_by_signal = True
            raise KeyboardInterrupt
        _check_failures(objective, opts.max_consecutive_failures)
    if result.trials:
        _study_changed(hooks, study, lock, 0.0)  # the study's figures include this worker's last trial
    if result.trials or result.stopped_by_signal or spec.n_trials is None:
        log.info("ran %d trial(s)", len(result.trials))
    else:
        log.info("%s", budget_met_message(spec.study, spec.n_trials))
    return result


def budget_met_message(study: str | None, n_trials: int) -> str:
    """What a worker or ``run`` says when the study has no trial left to run."""
    return (f"study {study!r} has met its budget of {n_trials} trials: raise n_trials in the spec to "
            f"extend it, or pass --study-name NEW (or another --storage) to start a new study")


def _warm_start(study: optuna.Study, url: str, spec: StudySpec) -> None:
    """Copy the earlier study's trials in, once, under the study lock (racing workers)."""
    ws = spec.warm_start
    source_url = resolve_url(ws.storage) if ws.storage else url
    try:
        source = optuna.load_study(study_name=ws.study, storage=open_storage(source_url))
    except KeyError as e:
        raise StorageError(
            f"warm_start.study: no study {ws.study!r} in {redact(source_url)}; name an existing study"
            " (optuna studies --storage URL lists them)"
        ) from e
    lock = study_lock(url, spec.study)
    lock.acquire()
    try:
        apply_warm_start(study, source, spec.distributions(), spec.objective, ws.top)
    finally:
        lock.release()


def _study_changed(hooks: WorkerHooks, study: optuna.Study, lock: Lock, every: float) -> None:
    if not hooks.study_changed:
        return
    lock.acquire()  # one worker at a time, e.g. rewriting the study's figures (saved in chunks)
    try:
        hooks.change_study(study, every)
    finally:
        lock.release()


def _check_failures(objective: Objective, limit: int) -> None:
    """Raise when this worker's last ``limit`` trials all failed."""
    streak = objective.failed_streak
    if len(streak) >= limit:
        number, reason = streak[-1]
        raise TrainingError(
            f"{limit} trials in a row failed (last, trial {number}: {reason}); fix the spec's run settings"
        )
