"""Opt-in accounting of the time a worker spends in storage calls (for the benchmarks).

Set ``VAE_SEARCH_STORAGE_TIMING=DIR`` and each worker writes ``DIR/worker-<pid>.json`` at exit:
seconds and calls in storage methods on the main (trial) thread and on other threads (the
heartbeat), trials run, wall seconds, and errors.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from optuna.storages import BaseStorage

ENV_VAR = "VAE_SEARCH_STORAGE_TIMING"


class StorageTimer:
    def __init__(self) -> None:
        self.main = {"seconds": 0.0, "calls": 0}
        self.other = {"seconds": 0.0, "calls": 0}
        self.errors: dict[str, int] = {}
        self.methods: dict[str, list[float]] = {}  # name -> [calls, seconds] on the trial thread
        self.started = time.perf_counter()
        self._main_thread = threading.main_thread()
        self._lock = threading.Lock()

    def wrap(self, name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                # KeyError (no such study yet) and DuplicatedStudyError (another worker created
                # it first) are how Optuna's create-or-load works, so they are counted apart
                kind = type(e).__name__
                with self._lock:
                    self.errors[kind] = self.errors.get(kind, 0) + 1
                raise
            finally:
                dt = time.perf_counter() - t0
                main = threading.current_thread() is self._main_thread
                bucket = self.main if main else self.other
                with self._lock:
                    bucket["seconds"] += dt
                    bucket["calls"] += 1
                    if main:
                        m = self.methods.setdefault(name, [0, 0.0])
                        m[0] += 1
                        m[1] += dt

        return timed

    def dump(self, directory: Path, trials: int) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"worker-{os.getpid()}.json"
        path.write_text(json.dumps({
            "storage_main": self.main, "storage_other": self.other, "errors": self.errors,
            "methods": self.methods,
            "trials": trials, "wall_seconds": time.perf_counter() - self.started,
        }))
        return path


def instrument(storage: BaseStorage) -> StorageTimer:
    """Time every public method of ``storage`` (patched on the instance)."""
    timer = StorageTimer()
    for name in dir(type(storage)):
        if name.startswith("_"):
            continue
        attr = getattr(storage, name, None)
        if callable(attr):
            setattr(storage, name, timer.wrap(name, attr))
    return timer
