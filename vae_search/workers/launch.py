"""Start N local worker processes, each pinned to a GPU or to a share of the CPU cores.

Workers run in their own sessions so that a terminal's Ctrl-C reaches them once, through the
launcher: the first signal asks every worker to finish its trial, the second to stop now (each
re-queues its trial). Each worker's output goes to the launcher's stderr; every log line of a
worker says which worker and trial it comes from (:mod:`vae_search.workers.context`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vae_search.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Placement:
    """Where one worker runs: ``gpu`` is a CUDA index (None: the CPU), with ``threads`` CPU threads."""

    index: int
    gpu: int | None
    threads: int | None


def inherited_devices() -> list[str] | None:
    """The launcher's own ``CUDA_VISIBLE_DEVICES`` (Slurm, a container, a user), or None.

    A worker's GPU index counts within this list, as torch in the launcher does, so the child
    gets the entry itself, not the index: under ``4,5`` worker 0 goes to device 4.
    """
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [d.strip() for d in value.split(",") if d.strip()]


def visible_gpus() -> list[int]:
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def plan(
    workers: int, gpus: str | None, per_gpu: int, cpu_count: int | None = None
) -> list[Placement]:
    """Place ``workers`` workers: round-robin over the GPUs (at most ``per_gpu`` each), or on the
    CPU; either way with ``cpu_count // workers`` CPU threads each (at least one), as a GPU
    worker still generates data and draws pictures on the CPU."""
    if workers < 1:
        raise ConfigError(f"--workers: must be at least 1, got {workers}")
    threads = max(1, (cpu_count or os.cpu_count() or 1) // workers)
    if gpus is None:
        return [Placement(i, None, threads) for i in range(workers)]
    ids = visible_gpus() if gpus == "all" else _parse_gpus(gpus)
    if not ids:
        raise ConfigError(
            "--gpus all: no CUDA device is visible here; leave out --gpus to run on the CPU"
        )
    inherited = inherited_devices()
    if inherited is not None and max(ids) >= len(inherited):
        raise ConfigError(
            f"--gpus {gpus}: CUDA_VISIBLE_DEVICES={','.join(inherited)} leaves {len(inherited)} "
            f"GPU(s), indices 0-{len(inherited) - 1}; --gpus counts within it"
        )
    if workers > len(ids) * per_gpu:
        raise ConfigError(
            f"--workers {workers} does not fit {len(ids)} GPU(s) x --per-gpu {per_gpu}; "
            f"raise --per-gpu to {-(-workers // len(ids))} or lower --workers"
        )
    return [Placement(i, ids[i % len(ids)], threads) for i in range(workers)]


def _parse_gpus(text: str) -> list[int]:
    try:
        ids = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"--gpus: {text!r} is not 'all' or a list like 0,1,3") from None
    if any(i < 0 for i in ids):
        raise ConfigError(f"--gpus: {text!r} has a negative index")
    return ids


def worker_command(
    spec: Path,
    p: Placement,
    *,
    storage: str | None,
    artifact_dir: str | None,
    timeout: float | None,
    verbose: int,
    study_name: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    cmd = [
        sys.executable,
        "-m",
        "vae_search",
        *(["-q"] if verbose < 0 else ["-v"] * verbose),  # -q: a progress line shows instead
        "worker",
        str(spec),
        "--index",
        str(p.index),
    ]
    env = dict(os.environ)
    env["VAE_SEARCH_SPEC_CHECKED"] = "1"  # the launcher warned about the spec: not once per worker
    if storage:  # through the environment: a password on a command line shows in `ps`
        env["VAE_SEARCH_STORAGE"] = storage
    if artifact_dir:
        cmd += ["--artifact-dir", artifact_dir]
    if study_name:
        cmd += ["--study-name", study_name]
    if timeout:
        cmd += ["--timeout", str(timeout)]
    if p.threads is not None:
        cmd += ["--threads", str(p.threads)]
        env["OMP_NUM_THREADS"] = str(p.threads)
    if p.gpu is None:
        cmd += ["--device", "cpu"]
    else:
        cmd += ["--device", "cuda"]
        inherited = inherited_devices()
        env["CUDA_VISIBLE_DEVICES"] = inherited[p.gpu] if inherited else str(p.gpu)
    return cmd, env


def launch(
    spec: Path,
    placements: list[Placement],
    *,
    storage: str | None = None,
    artifact_dir: str | None = None,
    timeout: float | None = None,
    verbose: int = 0,
    poll: float = 0.5,
    monitor: Callable[[], None] | None = None,
    study_name: str | None = None,
) -> list[int]:
    """Run the workers to the end; return their exit codes. Signals are forwarded (see above).

    ``monitor`` is called about every second while they run (the progress line);
    ``study_name`` replaces the spec's ``study:`` in every worker.
    """
    procs = []
    for p in placements:
        cmd, env = worker_command(
            spec, p, storage=storage, artifact_dir=artifact_dir, timeout=timeout, verbose=verbose,
            study_name=study_name,
        )
        procs.append(subprocess.Popen(cmd, env=env, start_new_session=True))
        where = f"GPU {p.gpu}" if p.gpu is not None else f"CPU, {p.threads} thread(s)"
        log.info("started worker %d (pid %d) on %s", p.index, procs[-1].pid, where)
    signals = 0

    def forward(signum: int, frame: object) -> None:
        nonlocal signals
        signals += 1
        what = "finish their trials" if signals == 1 else "stop now (trials are re-queued)"
        log.warning("asking %d worker(s) to %s", sum(pr.poll() is None for pr in procs), what)
        for pr in procs:
            if pr.poll() is None:
                pr.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        last = 0.0
        while any(pr.poll() is None for pr in procs):
            if monitor is not None and time.monotonic() - last >= 1.0:
                monitor()
                last = time.monotonic()
            time.sleep(poll)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    codes = [pr.returncode for pr in procs]
    log.info("workers exited with %s", codes)
    return codes
