"""A worker that holds up to P trials at once and trains those of one network shape together.

Per round, under the study lock (as :mod:`vae_search.workers.worker` does for one trial): fail
stale trials, count the budget, and ask Optuna for ``min(P, trials left)`` trials (WAITING
retries first); then release the lock. Each trial gets its run config, checkpoint, history and
epoch callback from :meth:`Objective.begin`, exactly as a trial of ``study.optimize`` does.
The configs are grouped by network shape (:func:`vae_search.train.population.group_configs`):
a group of two or more trains as one stacked population, a trial that fits no group runs alone
through the single-run trainer, and so do models that cannot be stacked (one log line says
why). Each trial is then told on its own: its value, PRUNED (its callback raised
``TrialPruned``) or FAIL with its reason; its pictures are drawn after that, on the worker's
after-tell thread, as for a trial of ``study.optimize``. Log lines about one member say its
trial (``[w0 #4]``), those about the round every held trial (``[w0 #4,5,6,7]``).

Heartbeats: Optuna beats only for the trial of ``study.optimize``; ask/tell trials get none. A
:class:`Heartbeats` thread records one for every trial this worker holds, every
``heartbeat_interval`` seconds, through the storage's ``record_heartbeat`` (one connection,
the trials in turn), from the moment a trial is asked until it is told. A worker killed outright
stops beating for all of them, and the stale-trial sweep of the next worker retries every one,
each resuming from its own checkpoint (alone or in that worker's population).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

from vae_search.train import train
from vae_search.train.population import group_configs, stack_key, stack_problem, train_population
from vae_search.workers.context import trial_context
from vae_search.workers.objective import Objective, TrialRun

log = logging.getLogger(__name__)


class Heartbeats:
    """A daemon thread recording a heartbeat for each held trial every ``interval`` seconds."""

    def __init__(self, study: optuna.Study):
        self.storage = study._storage
        self.interval = self.storage.get_heartbeat_interval() if is_heartbeat_enabled(self.storage) else None
        self._held: dict[int, int] = {}  # trial id -> number
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeats:
        if self.interval is not None:
            self._thread = threading.Thread(target=self._run, name="population-heartbeats", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def hold(self, trial: optuna.Trial) -> None:
        """Beat for ``trial`` from now on (the first beat at once)."""
        with self._lock:
            self._held[trial._trial_id] = trial.number
        self._beat(trial._trial_id)

    def release(self, trial: optuna.Trial) -> None:
        with self._lock:
            self._held.pop(trial._trial_id, None)

    def held(self) -> list[int]:
        with self._lock:
            return sorted(self._held.values())

    def _beat(self, trial_id: int) -> None:
        if self.interval is None:
            return
        try:
            self.storage.record_heartbeat(trial_id)
        except Exception as e:  # a missed beat is retried next interval; the grace period covers it
            log.warning("heartbeat of trial id %d not recorded: %s", trial_id, e)

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = list(self._held)
            for trial_id in ids:
                self._beat(trial_id)


class PopulationRound:
    """Train and tell one round of held trials (see the module docstring)."""

    def __init__(self, study: optuna.Study, objective: Objective, beats: Heartbeats, size: int):
        self.study = study
        self.objective = objective
        self.beats = beats
        self.size = size
        self._problems: dict[tuple[Any, ...], str | None] = {}

    def run(self, trials: list[optuna.Trial]) -> None:
        # a line about all held trials says "[w0 #4,5,6,7]"; one about a member, its own
        with trial_context(",".join(str(t.number) for t in trials)):
            self._run(trials)

    def _run(self, trials: list[optuna.Trial]) -> None:
        runs: list[TrialRun] = []
        try:
            for trial in trials:
                with trial_context(trial.number):
                    runs.append(self.objective.begin(trial))
        except BaseException:
            for trial in trials:  # none has trained: all fail now rather than go stale
                self._tell(trial, state=TrialState.FAIL)
            raise
        pending = list(runs)
        try:
            for group in group_configs([r.cfg for r in runs], max_size=self.size):
                members = [runs[i] for i in group]
                self._train(members)
                for r in members:
                    pending.remove(r)
                if self.objective.stop_now():  # a second signal while members' results were stored
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            for r in pending:  # the second signal: every held trial is re-queued with its checkpoint
                self.objective.interrupt(r)
                self._tell(r.trial, state=TrialState.FAIL)
            raise

    def _train(self, members: list[TrialRun]) -> None:
        cfg = members[0].cfg
        problem = self._stack_problem(members) if len(members) > 1 else None
        if len(members) == 1 or problem is not None:
            for r in members:
                self._one(r)
            return
        data = self.objective.data_for(cfg)
        progress = self.objective.progress
        outcomes = train_population(
            [r.cfg for r in members], data=data, on_epoch=[r.on_epoch for r in members],
            checkpoints=[r.checkpoint for r in members],
            progress=(lambda e, s, n, _p: progress(e, s, n)) if progress is not None else None,
            member_context=lambda i: trial_context(members[i].trial.number),
        )
        errors = []
        for r, out in zip(members, outcomes):
            try:
                self._finish(r, out.result, out.error)
            except Exception as e:  # not a finding about the trial: told FAIL, raised after the others
                errors.append(e)
        if errors:
            raise errors[0]

    def _stack_problem(self, members: list[TrialRun]) -> str | None:
        key = stack_key(members[0].cfg)
        if key not in self._problems:
            shape = self.objective.data_for(members[0].cfg).shape
            problem = self._problems[key] = stack_problem(members[0].cfg, shape)
            if problem is not None:
                log.info("population: %s models cannot be stacked (%s); training trials %s one at a time",
                         members[0].cfg.model.arch, problem, [r.trial.number for r in members])
        return self._problems[key]

    def _one(self, r: TrialRun) -> None:
        """A trial alone, through the single-run trainer (what ``study.optimize`` would do)."""
        with trial_context(r.trial.number):
            self._alone(r)

    def _alone(self, r: TrialRun) -> None:
        try:
            result = train(r.cfg, data=self.objective.data_for(r.cfg), on_epoch=r.on_epoch,
                           checkpoint=r.checkpoint, progress=self.objective.progress)
        except Exception as e:
            self._finish(r, None, e)
            return
        self._finish(r, result, None)

    def _finish(self, r: TrialRun, result: Any, error: Exception | None) -> None:
        with trial_context(r.trial.number):
            self._end(r, result, error)

    def _end(self, r: TrialRun, result: Any, error: Exception | None) -> None:
        if error is None:
            with self.objective.hold():  # a second signal waits until this member is stored and told
                self._tell(r.trial, value=self.objective.complete(r, result))
            return
        try:
            value = self.objective.failed(r, error)
        except optuna.TrialPruned:
            self._tell(r.trial, state=TrialState.PRUNED)
            return
        except Exception:
            r.trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}")
            self._tell(r.trial, state=TrialState.FAIL)
            raise
        self._tell(r.trial, value=value)

    def _tell(self, trial: optuna.Trial, *, value: float | None = None, state: TrialState | None = None) -> None:
        self.beats.release(trial)
        if state is None and value is not None and value != value:  # NaN: a failed trial
            state, value = TrialState.FAIL, None
        self.study.tell(trial, value, state=state)
        self.objective.told(trial.number)  # its pictures are drawn after the tell, on a thread


def ask_trials(study: optuna.Study, n: int, beats: Heartbeats, on_trial: Callable[[optuna.Trial], None]) -> list[optuna.Trial]:
    """Ask for ``n`` trials (WAITING retries first), each beating from the moment it exists."""
    trials = []
    for _ in range(n):
        trial = study.ask()
        beats.hold(trial)
        on_trial(trial)
        trials.append(trial)
    return trials
