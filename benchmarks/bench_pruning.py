"""Compute saved by collapse pruning: the same configurations with and without it.

Samples N configurations of ``specs/collapse_prone.yaml`` once (random sampler, fixed seed),
enqueues them identically in one study without any pruner and in one study per collapse-pruner
setting (warm-up, patience, threshold), runs each with one in-process worker, and reports epochs
run, wall time, the best value and whether the best trial is the unpruned study's.

    python benchmarks/bench_pruning.py [--trials 24]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import optuna

from benchmarks._common import SPECS, epochs_run, quiet, spec_with
from vae_search.dashboard.hooks import dashboard_hooks
from vae_search.results.summary import completed
from vae_search.study.collapse import is_collapsed
from vae_search.workers.worker import WorkerOptions, open_study, run_worker

# (warmup_epochs, patience, min_active_fraction); min_active_units is 1 throughout
SETTINGS = [(2, 2, 0.25), (2, 1, 0.25), (2, 2, None), (2, 1, None), (1, 2, None)]


def sample_params(spec, n: int) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=123))
    from vae_search.study.spec import sample_run

    out = []
    for _ in range(n):
        t = study.ask()
        sample_run(t, spec)
        out.append(dict(t.params))
        study.tell(t, 0.0)
    return out


def run(spec, params: list[dict], url: str, art: str) -> dict:
    study, _ = open_study(spec, url)
    for p in params:
        study.enqueue_trial(p)
    t0 = time.perf_counter()
    run_worker(spec, WorkerOptions(storage=url, artifact_dir=art), hooks=dashboard_hooks())
    wall = time.perf_counter() - t0
    study = optuna.load_study(study_name=spec.study, storage=url)
    best = completed(study)[0]
    return {
        "epochs": epochs_run(study), "wall_seconds": round(wall, 1),
        "complete": len(completed(study)),
        "pruned": sum(t.state.name == "PRUNED" for t in study.trials),
        "collapsed_complete": sum(is_collapsed(t) for t in completed(study)),
        "best_trial": best.number, "best_value": round(best.value, 3), "best_params": best.params,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=10, help="epochs per trial (the spec's run.epochs)")
    ap.add_argument("--json")
    args = ap.parse_args()
    quiet()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = SPECS / "collapse_prone.yaml"
        plain = spec_with(base, tmp, study="no-pruner", n_trials=args.trials, run={"epochs": args.epochs},
                          pruner={"collapse": {"enabled": False}, "constraint": False})
        params = sample_params(plain, args.trials)
        url = f"sqlite:///{tmp / 'bench.db'}"
        res = {"without": run(plain, params, url, str(tmp / "a")), "with": []}
        for warmup, patience, fraction in SETTINGS:
            collapse = {"warmup_epochs": warmup, "patience": patience, "min_active_units": 1,
                        "min_active_fraction": fraction}
            spec = spec_with(base, tmp, study=f"collapse-w{warmup}-p{patience}-f{fraction}",
                             n_trials=args.trials, run={"epochs": args.epochs}, pruner={"collapse": collapse})
            row = {**collapse, **run(spec, params, url, str(tmp / "a"))}
            row["epochs_saved"] = round(1 - row["epochs"] / res["without"]["epochs"], 3)
            row["same_best_trial"] = row["best_trial"] == res["without"]["best_trial"]
            res["with"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "best_params"}), flush=True)
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
