"""The fixed cost of a trial: what a completed trial spends beyond its epochs, and on what.

One worker (in this process, SQLite, the dashboard's hooks registered as the CLI does) runs
``--trials`` trials of the seed's MNIST model (784-400-20 MLP on 28x28 generated shapes,
Bernoulli, batch 128) with the MNIST spec's evaluation (final IWAE k = 500 on 1,000 validation
images) and ``objective: elbo``, twice in one run:

- ``before``: ``final_iwae: true``, the final IWAE bound computed although the objective never
  reads it (what every trial did before);
- ``after``: the default, computed only when the objective reads it.

Per completed trial: wall time (Optuna's start to complete), its epochs (the history's
seconds), and the rest split into the final figures (IWAE included), the pictures and note
(the dashboard's hook) and everything else (storage, Optuna). Also the time from the worker's
start to its first trial's start.

    python -m benchmarks.bench_trial_cost [--trials 3] [--epochs 2] [--size 12000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import yaml

from benchmarks._common import quiet
from vae_search import records
from vae_search.study.spec import StudySpec
from vae_search.train import loop
from vae_search.workers.worker import WorkerOptions, run_worker


class Timer:
    """Seconds spent in a wrapped function, per call."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, *a, **k):
        t = time.perf_counter()
        try:
            return self.fn(*a, **k)
        finally:
            self.calls.append(time.perf_counter() - t)


def spec(tmp: Path, name: str, trials: int, epochs: int, size: int, final_iwae: bool | None) -> StudySpec:
    data = {
        "study": name, "objective": "elbo", "n_trials": trials,
        "sampler": {"kind": "random", "seed": 0},
        "pruner": {"collapse": {"enabled": False}, "performance": {"kind": "none"}},
        "storage": {"heartbeat_interval": 10, "grace_period": 60},
        "run": {
            "data": {"name": "shapes", "size": size, "image_size": 28},
            "model": {"arch": "mlp", "hidden": [400], "latent_dim": 20},
            "schedule": {"kind": "linear", "beta_start": 0.0},
            "eval": {"batch_size": 1000, "iwae_samples": 500, "iwae_max_examples": 1000},
            "epochs": epochs, "batch_size": 128, "device": "cpu", "threads": 2,
        },
        "space": {"schedule.beta": {"type": "float", "low": 0.5, "high": 2.0, "log": True}},
    }
    if final_iwae is not None:
        data["final_iwae"] = final_iwae
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return StudySpec.from_file(path)


def measure(tmp: Path, label: str, trials: int, epochs: int, size: int, final_iwae: bool | None) -> dict:
    from vae_search.dashboard.hooks import dashboard_hooks

    final = Timer(loop.final_figures)
    loop.final_figures = final
    hooks = dashboard_hooks()
    pictures = Timer(hooks.trial_ended[0])
    hooks.trial_ended[0] = pictures
    url = f"sqlite:///{tmp / (label + '.db')}"
    t0 = time.time()
    try:
        run_worker(spec(tmp, label, trials, epochs, size, final_iwae),
                   WorkerOptions(storage=url, artifact_dir=str(tmp / "art"), index=0), hooks=hooks)
    finally:
        loop.final_figures = final.fn
    study = optuna.load_study(study_name=label, storage=url)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    walls = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
    epoch_s = [sum(records.record(t, 'history')["seconds"]) for t in done]
    fixed = [w - e for w, e in zip(walls, epoch_s)]
    med = statistics.median
    row = {
        "way": label, "trials": len(done), "trial_s": round(med(walls), 2), "epochs_s": round(med(epoch_s), 2),
        "fixed_s": round(med(fixed), 2), "fixed_share": round(med(f / w for f, w in zip(fixed, walls)), 3),
        "final_figures_s": round(med(final.calls), 2), "pictures_s": round(med(pictures.calls), 2),
        "other_s": round(med(fixed) - med(final.calls) - med(pictures.calls), 2),
        "first_trial_after_s": round(min(t.datetime_start.timestamp() for t in study.trials) - t0, 2),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--size", type=int, default=12000)
    args = ap.parse_args()
    quiet()
    with tempfile.TemporaryDirectory() as tmp:
        for label, final_iwae in (("before", True), ("after", None)):
            measure(Path(tmp), label, args.trials, args.epochs, args.size, final_iwae)


if __name__ == "__main__":
    main()
