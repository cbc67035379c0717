"""Who is talking: the worker and trial a log line comes from.

Several workers write to one terminal (``launch`` and ``run`` pass their output through), so
every line a worker process logs says which worker and which trial it is about. The worker
sets its label once (:func:`set_worker`), the objective the trial number while a trial runs
(:func:`set_trial`); :class:`WhoFilter`, installed on the log handler by the entry point,
puts them in each record as ``%(who)s``: ``"[w0 #7] "`` (worker 0, trial 7), ``"[w0] "``
between trials, and ``""`` outside a worker.

The worker's label is the process's; the trial is each thread's own: the thread that draws a
told trial's pictures (:class:`~vae_search.workers.hooks.AfterTell`) says that trial while the
next one trains, and a population's lines say the member's trial (:func:`trial_context`), or
every held trial (``"[w0 #4,5,6] "``) for what they share.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_state: dict[str, str | None] = {"worker": None}
_local = threading.local()  # .trial: this thread's trial (int, a label like "4,5,6", or None)


def worker_label(index: int | None) -> str:
    """``"w3"`` for worker 3; a worker started by hand without ``--index`` is named by its
    process id (``"pid 4242"``), which is what tells it apart from the others."""
    return f"w{index}" if index is not None else f"pid {os.getpid()}"


def set_worker(index: int | None) -> str:
    """Mark this process as a worker (see :func:`worker_label`); return its label."""
    label = worker_label(index)
    _state["worker"] = label
    return label


def set_trial(number: int | str | None) -> None:
    """The trial this thread works on now (None: between trials; a string: several, as
    ``"4,5,6"``)."""
    _local.trial = number


@contextmanager
def trial_context(number: int | str | None) -> Iterator[None]:
    """Lines logged by this thread inside the block say trial ``number``; the label before is
    restored after it."""
    before = getattr(_local, "trial", None)
    _local.trial = number
    try:
        yield
    finally:
        _local.trial = before


def who() -> str:
    """The prefix a log line of this thread carries now (see the module docstring)."""
    worker, trial = _state["worker"], getattr(_local, "trial", None)
    if worker is None:
        return ""
    return f"[{worker} #{trial}] " if trial is not None else f"[{worker}] "


class WhoFilter(logging.Filter):
    """Adds ``record.who`` (see :func:`who`) to every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.who = who()
        return True
