"""Search throughput: how many trials per unit of time N workers get out of one study.

CPU part: 1, 2, 4 and 8 worker processes (one thread each) against one storage, on the small
trials of ``bench_storage`` (its ``one()`` runs them): trials per minute and storage seconds per
trial, from the workers' own timing (``VAE_SEARCH_STORAGE_TIMING``). On a machine with fewer
cores than workers, the figures show where the cores, not the storage, run out.

GPU part (skipped with a message when there is no CUDA device): 1, 2 and 4 workers sharing one
GPU on quickstart-sized trials (``studies/quickstart.yaml``'s run and space: 12,000 generated
32x32 shapes, 8 epochs, an MLP, latent 2-32, standard/mog/vamp priors), started exactly as
``vae-search launch --gpus 0 --per-gpu N`` starts them (its ``plan`` and ``worker_command``).
Every variant runs the SAME trials: one fixed seeded sample of the space is enqueued in each
variant's study, and pruning is off, so 1, 2 and 4 workers do identical work. Trials per hour
count the COMPLETE and PRUNED trials in the study over the span from the first trial's start to
the last trial's end (worker start-up -- imports, data generation -- is left out of it;
``wall_seconds`` reports the whole run including start-up, and ``trials_per_hour_warm`` the rate
once every worker has finished its first trial, which pays for creating the CUDA context). A row is
``"valid": false`` (with the reasons) when fewer trials finished than were asked for or a worker
exited non-zero. The last line is a summary: speed-ups of 2 and 4 workers over 1 and whether the
goal (at least 3x with 4 workers) is met.

On an H200 the quickstart trial is launch-bound (about 1-2 s each with one worker), so the
default 32 trials per variant keep the GPU part to about 2-3 minutes.

    python -m benchmarks.bench_throughput [--storage URL] [--gpu-only | --no-gpu]
        [--workers 1 2 4 8] [--trials 32]
        [--gpu-workers 1 2 4] [--gpu-trials 32] [--gpu-epochs 8] [--gpu-size 12000]
        [--gpu-device cuda] [--json out.json]

``--storage``: SQLite or PostgreSQL (default: a SQLite file in a temporary directory);
``--gpu-device cpu`` runs the GPU part's procedure on the CPU (workers placed as
``vae-search launch --workers N`` places them), for dry runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import yaml

from benchmarks._common import emit, quiet, save_rows, spec_with
from benchmarks.bench_pruning import sample_params
from benchmarks.bench_storage import one

QUICKSTART = Path(__file__).resolve().parent.parent / "studies" / "quickstart.yaml"
GOAL = 3.0  # 4 workers sharing one GPU: at least this many times the trials/hour of one


class Interrupted(Exception):
    """SIGTERM (``timeout``, a scheduler): stop the workers and report what was measured."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def machine(url: str) -> dict:
    """What the figures were measured on; the server version only for PostgreSQL."""
    import torch

    from vae_search.storage import redact

    backend = _backend(url)
    info = {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "storage": redact(url),
        "backend": backend,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if backend == "postgresql":
        import sqlalchemy

        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as c:
            info["postgres"] = c.execute(sqlalchemy.text("SHOW server_version")).scalar_one()
        engine.dispose()
    elif backend == "sqlite":
        import sqlite3

        info["sqlite"] = sqlite3.sqlite_version
    return info


def _backend(url: str) -> str:
    if url.startswith("sqlite"):
        return "sqlite"
    if url.startswith("postgres"):
        return "postgresql"
    return url.split(":", 1)[0]


def _cpu_model() -> str:
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def gpu_spec(tmp: Path, name: str, trials: int, epochs: int, size: int):
    """The quickstart study, ``trials`` trials, pruning off (every variant: the same work)."""
    data = yaml.safe_load(QUICKSTART.read_text())
    data["pruner"] = {"collapse": {"enabled": False}, "performance": {"kind": "none"},
                      "constraint": False}
    data["sampler"] = {"kind": "random", "seed": 0}  # only enqueued trials run
    base = tmp / "quickstart-base.yaml"
    base.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec_with(base, tmp, study=name, n_trials=trials, timeout=None,
                     run={"epochs": epochs, "data": {"size": size}})


def gpu_one(url: str, workers: int, params: list[dict], tmp: Path, *, epochs: int, size: int,
            device: str = "cuda") -> dict:
    """``workers`` worker processes, placed as ``vae-search launch --gpus 0 --per-gpu N`` places
    them, run a fresh study holding the enqueued ``params``."""
    import optuna
    from optuna.trial import TrialState

    from vae_search.workers.launch import plan, worker_command
    from vae_search.workers.worker import open_study

    name = f"bench-gpu{workers}-{uuid.uuid4().hex[:6]}"
    spec = gpu_spec(tmp, name, len(params), epochs, size)
    study, _ = open_study(spec, url)  # created once, before the workers race for it (as launch)
    for p in params:
        study.enqueue_trial(p)
    placements = plan(workers, "0", workers) if device == "cuda" else plan(workers, None, 1)
    logs = [tmp / f"{name}-worker{p.index}.log" for p in placements]
    procs: list[subprocess.Popen] = []
    interrupted = None
    launched = datetime.now()  # Optuna's trial datetimes are naive local times too
    t0 = time.perf_counter()
    try:
        for p, log_path in zip(placements, logs):
            cmd, env = worker_command(Path(spec.source), p, storage=url,
                                      artifact_dir=str(tmp / "art"), timeout=None, verbose=0)
            with open(log_path, "w") as out:
                procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                              start_new_session=True))
        for pr in procs:
            pr.wait()
    except Interrupted as e:  # report what the workers finished, then stop (main re-raises)
        interrupted = str(e)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    finally:
        for pr in procs:  # interrupted: the workers run in their own sessions, so stop them here
            if pr.poll() is None:
                try:
                    os.killpg(pr.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                pr.wait()
    wall = time.perf_counter() - t0
    codes = [pr.returncode for pr in procs]
    outs = [p.read_text(errors="replace") for p in logs]
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    failed = sum(t.state == TrialState.FAIL for t in trials)
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in done if t.datetime_complete is not None]
    span = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    busy = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done)
    reasons = [f"interrupted by {interrupted}"] if interrupted else []
    if len(done) < len(params):
        reasons.append(f"{len(done)} of {len(params)} trials finished")
    if any(codes):
        reasons.append(f"worker exit codes {codes}")
    tracebacks = sum(o.count("Traceback") for o in outs)
    if tracebacks:
        reasons.append(f"{tracebacks} traceback(s) in the worker logs")
    row = {
        "workers": workers,
        "device": device,
        "trials_asked": len(params),
        "trials_finished": len(done),
        "failed": failed,
        "exit_codes": codes,
        "span_seconds": round(span, 2),  # first trial's start to last trial's end
        "wall_seconds": round(wall, 2),  # the whole run, worker start-up included
        # launch to the first trial's start: imports, data generation, opening the study
        "startup_seconds": round((min(starts) - launched).total_seconds(), 2) if starts else None,
        "trial_seconds": round(busy / len(done), 3) if done else None,  # mean, one trial
        "concurrency": round(busy / span, 2) if span > 0 else None,  # trials running at once
        "trials_per_hour": round(3600 * len(done) / span, 1) if span > 0 else 0.0,
        "trials_per_hour_with_startup": round(3600 * len(done) / wall, 1) if wall > 0 else 0.0,
        "trials_per_hour_warm": warm_rate(trials, outs),  # each worker's first trial left out
        "valid": not reasons,
    }
    if interrupted:
        row["interrupted"] = interrupted
    if reasons:
        row["reason"] = "; ".join(reasons)
        bad = [o for c, o in zip(codes, outs) if c != 0 or "Traceback" in o]
        row["log_tail"] = bad[0][-1500:] if bad else ""  # the first failing worker's last lines
    return row


_FINISHED = re.compile(r"worker \d+ finished: trials \[([\d, ]*)\]")  # the worker's last log line


def warm_rate(trials: list, outs: list[str]) -> float | None:
    """Trials per hour once every worker has finished its first trial (which pays for CUDA
    initialisation and cold caches): the finished trials' work inside [the last worker's first
    trial end, the last trial end], trials that straddle its start counted by the share inside.
    None when a worker's log does not name its trials (it did not finish)."""
    from optuna.trial import TrialState

    by_number = {t.number: t for t in trials}
    firsts = []
    for out in outs:
        m = _FINISHED.search(out)
        if m is None:
            return None
        numbers = [int(n) for n in m.group(1).split(",") if n.strip()]
        if not numbers:
            continue  # a worker that found no trial left to run
        first = by_number.get(numbers[0])
        if first is None or first.datetime_complete is None:
            return None
        firsts.append(first.datetime_complete)
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            and t.datetime_start is not None and t.datetime_complete is not None]
    if not done or not firsts:
        return None
    start, end = max(firsts), max(t.datetime_complete for t in done)
    window = (end - start).total_seconds()
    if window <= 0:
        return None
    work = 0.0
    for t in done:
        length = (t.datetime_complete - t.datetime_start).total_seconds()
        inside = (t.datetime_complete - max(t.datetime_start, start)).total_seconds()
        if inside > 0:
            work += inside / length if length > 0 else 1.0
    return round(3600 * work / window, 1)


def summary(rows: list[dict]) -> dict:
    """Speed-ups of 2 and 4 GPU workers over 1, and whether the >= 3x goal with 4 is met."""
    gpu = {r["workers"]: r for r in rows if r.get("part") == "gpu"}
    out: dict = {"summary": "gpu throughput", "goal": f">= {GOAL:g}x trials/hour with 4 workers vs 1"}
    base = gpu.get(1)
    out["trials_per_hour"] = {str(w): r["trials_per_hour"] for w, r in sorted(gpu.items())}
    out["valid"] = {str(w): r["valid"] for w, r in sorted(gpu.items())}
    speedup = {}
    for w in sorted(gpu):
        if w != 1 and base is not None and base["trials_per_hour"] > 0:
            speedup[str(w)] = round(gpu[w]["trials_per_hour"] / base["trials_per_hour"], 2)
    out["speedup_vs_1"] = speedup
    warm = {}
    for w in sorted(gpu):
        a, b = gpu[w].get("trials_per_hour_warm"), base.get("trials_per_hour_warm") if base else None
        if w != 1 and a and b:
            warm[str(w)] = round(a / b, 2)
    out["warm_speedup_vs_1"] = warm  # the same without each worker's first (cold) trial
    ok = base is not None and 4 in gpu and base["valid"] and gpu[4]["valid"] and "4" in speedup
    out["goal_met"] = (speedup["4"] >= GOAL) if ok else None  # None: not measured validly
    if not ok:
        out["why_unknown"] = "no valid 1- and 4-worker rows"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--storage", help="storage URL, SQLite or PostgreSQL (default: a SQLite file "
                    "in a temporary directory)")
    ap.add_argument("--postgres", help=argparse.SUPPRESS)  # the old spelling of --storage
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--gpu-workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--gpu-trials", type=int, default=32,
                    help="trials per GPU variant (the same ones in each)")
    ap.add_argument("--gpu-epochs", type=int, default=8, help="epochs per trial (quickstart: 8)")
    ap.add_argument("--gpu-size", type=int, default=12000,
                    help="generated images per trial's dataset (quickstart: 12000)")
    ap.add_argument("--gpu-device", choices=["cuda", "cpu"], default="cuda",
                    help="cpu: run the GPU part's procedure on the CPU (a dry run)")
    part = ap.add_mutually_exclusive_group()
    part.add_argument("--gpu-only", action="store_true", help="Skip the CPU part.")
    part.add_argument("--no-gpu", action="store_true", help="Skip the GPU part.")
    ap.add_argument("--json", help="Also write the rows to this file.")
    args = ap.parse_args()
    quiet()
    import torch

    from vae_search.storage import resolve_url

    signal.signal(signal.SIGTERM, _on_sigterm)
    rows: list[dict] = []
    code = 0
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        url = resolve_url(args.storage or args.postgres or f"sqlite:///{tmp / 'throughput.db'}")
        rows.append({"machine": machine(url)})
        print(json.dumps(rows[0]), flush=True)
        try:
            if not args.gpu_only:
                for w in args.workers:
                    row = {"part": "cpu", "backend": _backend(url),
                           **one(url, w, args.trials, tmp)}
                    reasons = []
                    if row["trials"] < args.trials:
                        reasons.append(f"{row['trials']} of {args.trials} trials ran")
                    if row["errors"]:
                        reasons.append(f"{row['errors']} error(s)")
                    row["valid"] = not reasons
                    if reasons:
                        row["reason"] = "; ".join(reasons)
                    emit(rows, row)
            if args.no_gpu:
                pass
            elif args.gpu_device == "cuda" and not torch.cuda.is_available():
                print("GPU part skipped: no CUDA device here", flush=True)
            else:
                spec = gpu_spec(tmp, "bench-gpu-params", args.gpu_trials, args.gpu_epochs,
                                args.gpu_size)
                params = sample_params(spec, args.gpu_trials)  # one fixed sample for all
                for w in args.gpu_workers:
                    row = {"part": "gpu", "epochs": args.gpu_epochs, "size": args.gpu_size,
                           **gpu_one(url, w, params, tmp, epochs=args.gpu_epochs,
                                     size=args.gpu_size, device=args.gpu_device)}
                    emit(rows, row)
                    if row.get("interrupted"):
                        raise Interrupted(row["interrupted"])
                end = summary(rows)
                emit(rows, end)
                code = 0 if all(end["valid"].values()) else 1
        except Interrupted as e:
            end = {**summary(rows), "interrupted": str(e)}
            emit(rows, end)
            code = 1
    save_rows(args.json, rows)
    sys.exit(code)


if __name__ == "__main__":
    main()
