"""Search throughput: how many trials per unit of time N workers get out of one study.

CPU part: 1, 2, 4 and 8 worker processes (one thread each) against one PostgreSQL, on the small
trials of ``bench_storage`` (its ``one()`` runs them): trials per minute and storage seconds per
trial, from the workers' own timing (``VAE_SEARCH_STORAGE_TIMING``). On a machine with fewer
cores than workers, the figures show where the cores, not the database, run out.

GPU part (skipped with a message when there is no CUDA device): 1, 2 and 4 workers sharing one
GPU on larger trials (32x32 shapes, a 512-256 MLP): trials per hour, and how far sharing a GPU
between processes helps.

    python -m benchmarks.bench_throughput --postgres URL [--workers 1 2 4 8] [--trials 32]
        [--gpu-workers 1 2 4] [--gpu-trials 24] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks._common import SPECS, emit, quiet, save_rows, spec_with
from benchmarks.bench_storage import one

GPU_RUN = {
    "epochs": 3,
    "batch_size": 128,
    "device": "cuda",
    "data": {"size": 20000, "image_size": 32},
    "model": {"hidden": [512, 256]},
    "eval": {"iwae_samples": 50, "iwae_max_examples": 1000},
}


def machine(url: str) -> dict:
    """What the figures were measured on."""
    import sqlalchemy
    import torch

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as c:
        pg = c.execute(sqlalchemy.text("SHOW server_version")).scalar_one()
    engine.dispose()
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "torch": torch.__version__,
        "postgres": pg,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _cpu_model() -> str:
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def gpu_one(url: str, workers: int, trials: int, tmp: Path) -> dict:
    """``workers`` processes on GPU 0 run a fresh study of ``trials`` larger trials."""
    name = f"bench-gpu-{uuid.uuid4().hex[:8]}"
    spec = spec_with(
        SPECS / "collapse_prone.yaml",
        tmp,
        study=name,
        n_trials=trials,
        pruner={"collapse": {"enabled": False}, "constraint": False},
        run=GPU_RUN,
    )
    env = dict(
        os.environ,
        VAE_SEARCH_STORAGE=url,
        VAE_SEARCH_ARTIFACTS=str(tmp / "art"),
        CUDA_VISIBLE_DEVICES=os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0],
        OMP_NUM_THREADS="2",
    )
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vae_search",
                "-q",
                "worker",
                spec.source,
                "--index",
                str(i),
                "--device",
                "cuda",
                "--threads",
                "2",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(workers)
    ]
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - t0
    errors = sum(p.returncode != 0 for p in procs) + sum(o.count("Traceback") for o in outs)
    return {
        "workers": workers,
        "trials": trials,
        "wall_seconds": round(wall, 1),
        "trials_per_hour": round(3600 * trials / wall),
        "errors": errors,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--postgres",
        default=os.environ.get("VAE_SEARCH_TEST_POSTGRES_URL"),
        help="PostgreSQL URL (default: $VAE_SEARCH_TEST_POSTGRES_URL)",
    )
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--gpu-workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--gpu-trials", type=int, default=24)
    ap.add_argument("--no-gpu", action="store_true", help="Skip the GPU part.")
    ap.add_argument("--json", help="Also write the rows to this file.")
    args = ap.parse_args()
    if not args.postgres:
        sys.exit("give a PostgreSQL URL: --postgres URL or $VAE_SEARCH_TEST_POSTGRES_URL")
    quiet()
    import torch

    rows: list[dict] = [{"machine": machine(args.postgres)}]
    print(json.dumps(rows[0]), flush=True)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for w in args.workers:
            row = {
                "part": "cpu",
                "backend": "postgresql",
                **one(args.postgres, w, args.trials, tmp),
            }
            emit(rows, row)
        if args.no_gpu:
            pass
        elif not torch.cuda.is_available():
            print("GPU part skipped: no CUDA device here", flush=True)
        else:
            for w in args.gpu_workers:
                row = {"part": "gpu", **gpu_one(args.postgres, w, args.gpu_trials, tmp)}
                emit(rows, row)
    save_rows(args.json, rows)


if __name__ == "__main__":
    main()
