"""Progress of a study for people watching a terminal (or a log).

:class:`StudyProgress` reads the study (one ``get_trials`` call) and says: trials finished of
the budget (pruned among them), the best value so far, the running trials and their epochs, and
an estimate of the time left from the pace since watching began. On a terminal the line is
redrawn in place; otherwise a log line is written whenever the finished count changes.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import TextIO

import optuna
from optuna.trial import TrialState

from vae_search import records
from vae_search.study.collapse import is_collapsed
from vae_search.study.objectives import primary_value

log = logging.getLogger(__name__)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _epochs(t: optuna.trial.FrozenTrial, default: int | None) -> int | str:
    """A running trial's epoch count: its stored config's, else the spec's, else ``?``."""
    epochs = records.trial_epochs(t)
    return epochs or default or "?"


class StudyProgress:
    """Status line of a study, refreshed by :meth:`update`."""

    def __init__(self, study: optuna.Study, n_trials: int | None, stream: TextIO | None = None,
                 epochs: int | None = None):
        self.study = study
        self.n_trials = n_trials
        self.epochs = epochs  # the spec's: a trial's own config says so once it is stored
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._first_done: int | None = None
        self._last_done = -1
        self._done = 0

    def line(self) -> str:
        trials = self.study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        pruned = sum(t.state == TrialState.PRUNED for t in done)
        # (the first objective's value in a multi-objective study)
        scored = [t for t in done if t.state == TrialState.COMPLETE and primary_value(t) is not None
                  and math.isfinite(primary_value(t))]
        # the best as `status` reports it: trials that kept their active units first
        values = [primary_value(t) for t in scored if not is_collapsed(t)] or [primary_value(t) for t in scored]
        if self._first_done is None:
            self._first_done = len(done)
        parts = [f"trials {len(done)}/{self.n_trials or '∞'} (pruned {pruned})"]
        parts.append(f"best {min(values):.3f}" if values else "best -")
        running = [t for t in trials if t.state == TrialState.RUNNING]
        if running:
            parts.append("running " + ", ".join(
                f"#{t.number} ep {len(t.intermediate_values)}/"
                f"{_epochs(t, self.epochs)}" for t in running[:6]))
        new = len(done) - self._first_done
        if self.n_trials and new > 0:
            elapsed = time.monotonic() - self.started
            parts.append(f"~{_duration(elapsed / new * max(0, self.n_trials - len(done)))} left")
        self._done = len(done)
        return "  ".join(parts)

    def update(self) -> None:
        try:
            text = self.line()
        except Exception as e:  # a watcher must never stop the work it watches
            log.debug("progress unavailable: %s", e)
            return
        if self.tty:
            self.stream.write("\r\033[K" + text[: 200])
            self.stream.flush()
        elif self._done != self._last_done:
            log.info("%s", text)
        self._last_done = self._done

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
