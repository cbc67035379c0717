"""What a worker tells the layers above it: a trial ended, the study changed.

The worker and the objective know nothing of the dashboard. They call the hooks a caller
registers (the CLI registers the dashboard's publishers, see
:func:`vae_search.dashboard.hooks.dashboard_hooks`), the way ``study.optimize(callbacks=...)``
calls Optuna's callbacks. A hook that raises is logged and skipped: it never fails a trial or
stops a worker.

A ``trial_ended`` hook may leave work for after the trial is told: it returns a callable (a
*deferred job*, e.g. drawing the pictures whose artifact records it has just written). The
worker runs those jobs on one :class:`AfterTell` thread once Optuna has recorded the trial's
state, so the next trial does not wait for them (``WorkerOptions.pictures_after_tell``; off,
they run at once, before the trial is told, as every hook did before).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.artifacts import FileSystemArtifactStore

from vae_search.config import RunConfig
from vae_search.workers.context import trial_context

log = logging.getLogger(__name__)

Outcome = Literal["complete", "pruned", "failed"]

# seconds a worker told to stop now (a second signal) waits for the picture job being run;
# the jobs not yet started are dropped (see AfterTell.close)
STOP_NOW_WAIT = 10.0


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


DeferredJob = Callable[[], None]
TrialEndHook = Callable[[TrialEnd], "DeferredJob | None"]
StudyChangedHook = Callable[[optuna.Study, float], None]


@dataclass
class WorkerHooks:
    """The hooks a worker calls.

    Attributes:
        trial_ended: called once per trial as it ends, before Optuna records its state; what
            one returns (a callable) is run after the trial is told (see the module docstring).
        study_changed: called with ``(study, min_interval)`` after trials finish, under the
            study lock (one worker at a time): at most every ``WorkerOptions.figures_every``
            seconds, with that interval, and once as the worker stops, with 0. A hook may skip
            the call when another worker ran it less than ``min_interval`` seconds ago.
    """

    trial_ended: list[TrialEndHook] = field(default_factory=list)
    study_changed: list[StudyChangedHook] = field(default_factory=list)

    def end_trial(self, event: TrialEnd) -> list[DeferredJob]:
        """Call every ``trial_ended`` hook; return the deferred jobs they left (see the module
        docstring)."""
        jobs = []
        for hook in self.trial_ended:
            job = _call(hook, event)
            if callable(job):
                jobs.append(job)
        return jobs

    def change_study(self, study: optuna.Study, min_interval: float) -> None:
        for hook in self.study_changed:
            _call(hook, study, min_interval)

    def __bool__(self) -> bool:
        return bool(self.trial_ended or self.study_changed)


def run_deferred(job: DeferredJob) -> None:
    """Run a deferred job now; one that raises is logged, never raised."""
    _call(job)


def _call(hook: Callable[..., Any], *args: Any) -> Any:
    try:
        return hook(*args)
    except Exception:  # noqa: BLE001 - a hook never fails a trial or stops a worker
        log.warning("hook %s failed", getattr(hook, "__qualname__", hook), exc_info=True)
        return None


class AfterTell:
    """One daemon thread that runs told trials' deferred jobs (their pictures), in order.

    At most ``max_pending`` jobs wait (those being run included): :meth:`submit` blocks when
    that many are, so a worker whose trials end faster than their pictures are drawn slows
    down instead of piling models up in memory. A job that raises is logged and skipped.
    :meth:`close` (also the context manager's exit) waits up to ``wait`` seconds for what is
    pending, so a worker that stops gracefully (its budget, SIGTERM) loses no picture; what is
    still pending then is named in a warning, and readers show such a picture as not written.

    Args:
        wait: seconds :meth:`close` waits for pending jobs (``WorkerOptions.pictures_wait``).
        max_pending: jobs that may wait before :meth:`submit` blocks.
    """

    def __init__(self, wait: float = 300.0, max_pending: int = 4):
        self.wait = wait
        self._queue: queue.Queue[tuple[int | None, DeferredJob] | None] = queue.Queue()
        self._slots = threading.BoundedSemaphore(max_pending)
        self._pending: list[int | None] = []  # trials whose jobs are queued or running
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="pictures-after-tell", daemon=True)
        self._thread.start()

    def __enter__(self) -> AfterTell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, job: DeferredJob, trial: int | None = None) -> None:
        """Run ``job`` (of trial number ``trial``, for the log lines) after those before it;
        block while ``max_pending`` jobs are pending."""
        if self._closed:
            raise RuntimeError("AfterTell.submit after close")
        if not self._slots.acquire(blocking=False):
            t0 = time.perf_counter()
            self._slots.acquire()
            log.debug("waited %.2fs for the pictures of earlier trials", time.perf_counter() - t0)
        with self._lock:
            self._pending.append(trial)
        self._queue.put((trial, job))

    def pending(self) -> list[int | None]:
        """The trials whose jobs are queued or running."""
        with self._lock:
            return list(self._pending)

    def close(self, wait: float | None = None, *, now: bool = False) -> bool:
        """Stop taking jobs and wait up to ``wait`` seconds (default: the constructor's) for the
        pending ones; True when all ran.

        ``now`` (the worker was told to stop now: a second signal): the jobs not yet started
        are dropped and only the one running is waited for, at most :data:`STOP_NOW_WAIT`
        seconds. A KeyboardInterrupt while waiting (one more signal) ends the wait: what is
        left is named in the warning and the interrupt raised."""
        if self._closed:
            return not self.pending()
        self._closed = True
        dropped = self._drop_queued() if now else []
        self._queue.put(None)
        left = self.pending()
        if left and not now:
            log.info("waiting for the pictures of trial(s) %s", ", ".join(map(str, left)))
        timeout = self.wait if wait is None else wait
        try:
            self._thread.join(min(timeout, STOP_NOW_WAIT) if now else timeout)
        except KeyboardInterrupt:
            self._warn_left(dropped)
            raise
        return self._warn_left(dropped)

    def _drop_queued(self) -> list[int | None]:
        """Take the jobs not yet started off the queue; their trials."""
        dropped = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return dropped
            if item is None:
                continue
            with self._lock:
                self._pending.remove(item[0])
            self._slots.release()
            dropped.append(item[0])

    def _warn_left(self, dropped: list[int | None]) -> bool:
        left = self.pending() + dropped
        if left:
            log.warning("stopped before the pictures of trial(s) %s were written; they show as "
                        "'picture not written'", ", ".join(map(str, left)))
        return not left

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            trial, job = item
            try:
                with trial_context(trial):  # its lines say the trial drawn, not the one training
                    _call(job)
            finally:
                with self._lock:
                    self._pending.remove(trial)
                self._slots.release()
