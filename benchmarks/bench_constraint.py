"""Does the collapse constraint help the sampler? TPE with and without it.

Two studies of ``--trials`` trials on ``specs/collapse_prone.yaml`` with the TPE sampler (same
seed), both pruning collapse; one records collapse as a constraint (``trial.set_constraint``),
one does not. Reported: the share of collapsed trials (pruned for collapse, or completed below
the active-unit threshold) in the first and the second half of each study, and the best value.

    python benchmarks/bench_constraint.py [--trials 40] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import optuna

from benchmarks._common import SPECS, emit, quiet, save_rows, spec_with
from vae_search.dashboard.hooks import dashboard_hooks
from vae_search.results.summary import completed
from vae_search.study.collapse import is_collapsed
from vae_search.workers.worker import WorkerOptions, run_worker


def share(trials) -> float:
    return sum(is_collapsed(t) for t in trials) / max(1, len(trials))


def run(constraint: bool, seed: int, n: int, tmp: Path) -> dict:
    name = f"tpe-{'with' if constraint else 'without'}-{seed}"
    spec = spec_with(SPECS / "collapse_prone.yaml", tmp, study=name, n_trials=n,
                     sampler={"kind": "tpe", "seed": seed, "options": {"n_startup_trials": 10}},
                     pruner={"constraint": constraint})
    url = f"sqlite:///{tmp / 'c.db'}"
    run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp / "a"), index=0),
               hooks=dashboard_hooks())
    trials = sorted(optuna.load_study(study_name=name, storage=url).trials, key=lambda t: t.number)
    half = len(trials) // 2
    best = completed(optuna.load_study(study_name=name, storage=url))
    return {"collapsed_first_half": round(share(trials[:half]), 3),
            "collapsed_second_half": round(share(trials[half:]), 3),
            "best_value": round(best[0].value, 3) if best else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--json")
    args = ap.parse_args()
    quiet()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for constraint in (False, True):
                row = {"seed": seed, "constraint": constraint, **run(constraint, seed, args.trials, Path(tmp))}
                emit(rows, row)
    save_rows(args.json, rows)


if __name__ == "__main__":
    main()
