"""Storage overhead and scaling: 1, 2, 4 and 8 worker processes on SQLite and PostgreSQL.

Each configuration runs a fresh study of ``--trials`` small trials (generated 16x16 shapes,
2 epochs, so storage calls weigh as much as they can) with N real ``vae-search worker``
processes, one CPU thread each. Every worker times its storage calls
(``VAE_SEARCH_STORAGE_TIMING``). Reported: trials per minute, storage seconds per trial on the
trial thread (and on the heartbeat thread), the share of worker time spent in storage, and
errors (non-zero exits, failed storage calls, tracebacks in the logs).

    python -m benchmarks.bench_storage [--postgres URL] [--no-sqlite] [--workers 1 2 4 8]
        [--trials 32] [--epochs 2] [--size 1000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks._common import SPECS, emit, quiet, save_rows, spec_with


def one(url: str, workers: int, trials: int, tmp: Path, epochs: int = 2, size: int = 1000) -> dict:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    spec = spec_with(
        SPECS / "collapse_prone.yaml", tmp, study=name, n_trials=trials,
        pruner={"collapse": {"enabled": False}, "constraint": False},
        run={"epochs": epochs, "data": {"size": size}, "eval": {"iwae_samples": 5, "iwae_max_examples": 100}},
    )
    timing = tmp / f"timing-{name}"
    env = dict(os.environ, VAE_SEARCH_STORAGE=url, VAE_SEARCH_STORAGE_TIMING=str(timing),
               VAE_SEARCH_ARTIFACTS=str(tmp / "art"), OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "vae_search", "worker", spec.source, "--index", str(i),
                               "--threads", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(workers)]
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - t0
    stats = [json.loads(f.read_text()) for f in timing.glob("*.json")]
    n = sum(s["trials"] for s in stats)
    main_s = sum(s["storage_main"]["seconds"] for s in stats)
    other_s = sum(s["storage_other"]["seconds"] for s in stats)
    worker_s = sum(s["wall_seconds"] for s in stats)
    expected = {"KeyError", "DuplicatedStudyError"}  # Optuna's create-or-load control flow
    errors = sum(p.returncode != 0 for p in procs) + sum(
        n for s in stats for kind, n in s["errors"].items() if kind not in expected
    ) + sum(o.count("Traceback") for o in outs)
    methods: dict[str, list[float]] = {}
    for s in stats:
        for name, (calls, secs) in s["methods"].items():
            m = methods.setdefault(name, [0, 0.0])
            m[0] += calls
            m[1] += secs
    return {
        "workers": workers, "trials": n, "wall_seconds": round(wall, 1),
        "trials_per_minute": round(60 * n / wall, 1),
        "storage_s_per_trial": round(main_s / max(n, 1), 4),
        "heartbeat_storage_s_per_trial": round(other_s / max(n, 1), 4),
        "storage_share": round(main_s / worker_s, 4) if worker_s else None,
        "errors": errors,
        "top_calls_per_trial": {k: [round(c / max(n, 1), 1), round(t / max(n, 1), 4)] for k, (c, t) in
                                sorted(methods.items(), key=lambda kv: -kv[1][1])[:6]},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--postgres", default=os.environ.get("VAE_SEARCH_TEST_POSTGRES_URL"))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=2, help="epochs per trial (2: storage-heavy)")
    ap.add_argument("--size", type=int, default=1000, help="generated images per trial's dataset")
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    ap.add_argument("--json")
    args = ap.parse_args()
    quiet()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        backends = {} if args.no_sqlite else {"sqlite": f"sqlite:///{tmp / 'bench.db'}"}
        if args.postgres:
            backends["postgresql"] = args.postgres
        for backend, url in backends.items():
            for w in args.workers:
                row = {"backend": backend, "epochs": args.epochs, "size": args.size,
                       **one(url, w, args.trials, tmp, args.epochs, args.size)}
                emit(rows, row)
    save_rows(args.json, rows)


if __name__ == "__main__":
    main()
