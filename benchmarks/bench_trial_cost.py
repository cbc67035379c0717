"""The fixed cost of a trial: what a completed trial spends beyond its epochs, and on what.

One worker (in this process, SQLite, the dashboard's hooks registered as the CLI does) runs
``--trials`` trials of the seed's MNIST model (784-400-20 MLP on 28x28 generated shapes,
Bernoulli, batch 128) with the MNIST spec's evaluation (final IWAE k = 500 on 1,000 validation
images) and ``objective: elbo``, in one run, each of the ``--ways``:

- ``iwae``: ``final_iwae: true``, the final IWAE bound computed although the objective never
  reads it (what every trial did before it was computed only when read), pictures in the trial;
- ``sync``: ``pictures_after_tell: false``, the pictures drawn inside the trial, before the
  tell (what every trial did before the after-tell thread);
- ``after``: the default: the pictures recorded in the trial, drawn after the tell on the
  worker's after-tell thread, while the next trial trains.

Per completed trial: wall time (Optuna's start to complete), its epochs (the history's
seconds), and the rest split into the final figures (IWAE included), the pictures and note on
the trial's path (the objective's publishing: records, note and, unless after the tell, the
drawing) and everything else (storage, Optuna). Also: the seconds the pictures took to draw
wherever they ran, the worker's wall time per trial (start to end, the wait for the last
pictures included: what the thread's work costs the next trials shows there), the seconds per
trial the worker spent between trials redrawing the study's figures, and the time
from the worker's start to its first trial's start. With ``--launch``, also the time from
starting a ``python -m vae_search worker`` process (imports, dataset, study) to its first
trial's start, what a person waits for after ``launch``.

    python -m benchmarks.bench_trial_cost [--trials 3] [--epochs 2] [--size 12000] [--ways sync,after] [--launch]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import yaml

from benchmarks._common import quiet
from vae_search import records
from vae_search.study.spec import StudySpec
from vae_search.train import loop
from vae_search.workers.objective import Objective
from vae_search.workers.worker import WorkerOptions, run_worker

WAYS = {"iwae": (True, False), "sync": (None, False), "after": (None, True)}  # (final_iwae, after tell)


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


def measure(tmp: Path, label: str, trials: int, epochs: int, size: int, run: int = 0) -> dict:
    from vae_search.dashboard.hooks import dashboard_hooks

    final_iwae, after_tell = WAYS[label]
    final = Timer(loop.final_figures)
    loop.final_figures = final
    publish = Timer(Objective._publish)  # on the trial's path: records, note (and the drawing if sync)
    Objective._publish = lambda self, *a, **k: publish(self, *a, **k)  # type: ignore[method-assign]
    hooks = dashboard_hooks()
    plan = hooks.trial_ended[0]
    drawn: list[float] = []

    def timed_plan(end):
        job = plan(end)

        def draw():
            t = time.perf_counter()
            job()
            drawn.append(time.perf_counter() - t)
        return draw

    hooks.trial_ended[0] = timed_plan
    figures = Timer(hooks.study_changed[0])  # between trials: the study's figures
    hooks.study_changed[0] = figures
    url = f"sqlite:///{tmp / f'{label}{run}.db'}"
    t0, w0 = time.time(), time.perf_counter()
    try:
        run_worker(spec(tmp, label, trials, epochs, size, final_iwae),
                   WorkerOptions(storage=url, artifact_dir=str(tmp / "art"), index=0, pictures_after_tell=after_tell),
                   hooks=hooks)
    finally:
        loop.final_figures = final.fn
        Objective._publish = publish.fn  # type: ignore[method-assign]
    worker_s = time.perf_counter() - w0
    study = optuna.load_study(study_name=label, storage=url)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    walls = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
    epoch_s = [sum(records.record(t, 'history')["seconds"]) for t in done]
    fixed = [w - e for w, e in zip(walls, epoch_s)]
    med = statistics.median
    row = {
        "way": label, "run": run, "trials": len(done), "trial_s": round(med(walls), 2), "epochs_s": round(med(epoch_s), 2),
        "fixed_s": round(med(fixed), 2), "fixed_share": round(med(f / w for f, w in zip(fixed, walls)), 3),
        "final_figures_s": round(med(final.calls), 2), "pictures_on_path_s": round(med(publish.calls), 2),
        "other_s": round(med(fixed) - med(final.calls) - med(publish.calls), 2),
        "pictures_drawn_s": round(med(drawn), 2) if drawn else None,
        "trial_s_mean": round(statistics.mean(walls), 2),  # next to the worker's, which counts every second
        "worker_s_per_trial": round(worker_s / len(study.trials), 2),
        "epochs_s_each": [round(e, 1) for e in epoch_s],
        "study_figures_s_per_trial": round(sum(figures.calls) / len(study.trials), 2),
        "first_trial_after_s": round(min(t.datetime_start.timestamp() for t in study.trials) - t0, 2),
    }
    print(json.dumps(row), flush=True)
    return row


def launch(tmp: Path, size: int) -> dict:
    """Seconds from starting a worker process to its first trial's start (one 1-epoch trial)."""
    path = spec(tmp, "launch", 1, 1, size, None).source
    url = f"sqlite:///{tmp / 'launch.db'}"
    env = dict(os.environ, VAE_SEARCH_ARTIFACTS=str(tmp / "art"))
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "vae_search", "worker", str(path), "--storage", url, "--index", "0"],
                   env=env, check=True, capture_output=True)
    study = optuna.load_study(study_name="launch", storage=url)
    row = {"way": "launch", "first_trial_after_s": round(study.trials[0].datetime_start.timestamp() - t0, 2)}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--size", type=int, default=12000)
    ap.add_argument("--ways", default="sync,after", help=f"comma-separated, of {', '.join(WAYS)}")
    ap.add_argument("--launch", action="store_true", help="also time a worker process's start to its first trial")
    args = ap.parse_args()
    quiet()
    with tempfile.TemporaryDirectory() as tmp:
        for run, label in enumerate(args.ways.split(",")):  # a way named twice runs twice (interleave them)
            measure(Path(tmp), label, args.trials, args.epochs, args.size, run)
        if args.launch:
            launch(Path(tmp), args.size)


if __name__ == "__main__":
    main()
