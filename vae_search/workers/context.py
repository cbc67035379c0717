"""Who is talking: the worker and trial a log line comes from.

Several workers write to one terminal (``launch`` and ``run`` pass their output through), so
every line a worker process logs says which worker and which trial it is about. The worker
sets its label once (:func:`set_worker`), the objective the trial number while a trial runs
(:func:`set_trial`); :class:`WhoFilter`, installed on the log handler by the entry point,
puts them in each record as ``%(who)s``: ``"[w0 #7] "`` (worker 0, trial 7), ``"[w0] "``
between trials, and ``""`` outside a worker.
"""

from __future__ import annotations

import logging
import os

_state: dict[str, str | int | None] = {"worker": None, "trial": None}


def worker_label(index: int | None) -> str:
    """``"w3"`` for worker 3; a worker started by hand without ``--index`` is named by its
    process id (``"pid 4242"``), which is what tells it apart from the others."""
    return f"w{index}" if index is not None else f"pid {os.getpid()}"


def set_worker(index: int | None) -> str:
    """Mark this process as a worker (see :func:`worker_label`); return its label."""
    label = worker_label(index)
    _state["worker"] = label
    return label


def set_trial(number: int | None) -> None:
    """The trial this worker runs now (None: between trials)."""
    _state["trial"] = number


def who() -> str:
    """The prefix a log line of this process carries now (see the module docstring)."""
    worker, trial = _state["worker"], _state["trial"]
    if worker is None:
        return ""
    return f"[{worker} #{trial}] " if trial is not None else f"[{worker}] "


class WhoFilter(logging.Filter):
    """Adds ``record.who`` (see :func:`who`) to every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.who = who()
        return True
