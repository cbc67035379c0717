"""Does the finalists' ranking differ from the search's? And does a [distortion, rate] study
cover the rate–distortion front with fewer trials than β-VAE trials of a single-objective one?

    python -m benchmarks.bench_finalists shapes  [--trials 12 --top 5 --seeds 5 --k 500 --epochs 4]
    python -m benchmarks.bench_finalists mnist   [same, --test-examples N --workers W --dir DIR]   # MNIST present
    python -m benchmarks.bench_finalists table --storage URL --study mnist-search [--top 5]
    python -m benchmarks.bench_finalists table --storage URL [--dataset mnist --trials 16 --sampler-seeds 4]
    python -m benchmarks.bench_finalists front   [--dataset mnist --trials 12 --sampler-seeds S]

Everything runs in process on the CPU (one worker, 1 thread), sized for 2 shared cores: see the
README for the sizes used. ``front`` compares the hypervolume (area dominated in the (R, D)
plane up to a reference point: the worst R and D over both studies, plus 1 nat) of the front
of each study's completed, non-collapsed trials, after each quarter of its trials, for each TPE
seed (both studies share seed s, so their first 4 start-up trials are the same points).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from benchmarks._common import quiet
from vae_search import records
from vae_search.results.finalists import choose_finalists, summarize_finalists
from vae_search.results.pareto import non_dominated
from vae_search.study.collapse import is_collapsed
from vae_search.study.final import final_study_name
from vae_search.study.spec import StudySpec
from vae_search.workers.finalize import prepare_finalists
from vae_search.workers.worker import WorkerOptions, run_worker

MNIST_GZ = Path("/work/shared/data/mnist")
FRONT_LABELS = {"beta-vae, nll_iwae": "nll_iwae", "[distortion, rate]": ["distortion", "rate"]}


def _space() -> dict[str, Any]:
    """β-VAE: a constant β and the latent size."""
    return {
        "schedule.beta": {"type": "float", "low": 0.1, "high": 10.0, "log": True},
        "model.latent_dim": {"type": "int", "low": 2, "high": 32, "log": True},
    }


def _spec(name: str, run: dict[str, Any], n_trials: int, objective: Any = "nll_iwae",
          sampler: str = "tpe", sampler_seed: int = 0) -> StudySpec:
    multi = not isinstance(objective, str)
    return StudySpec.from_dict({
        "study": name, "objective": objective, "n_trials": n_trials,
        "sampler": {"kind": sampler, "seed": sampler_seed, "options": {"n_startup_trials": 4} if sampler == "tpe" else {}},
        "pruner": {"collapse": {"enabled": True, "min_active_units": 1, "patience": 2, "warmup_epochs": 1},
                   **({} if multi else {"performance": {"kind": "none"}})},
        "storage": {"heartbeat_interval": None, "checkpoint_interval": 3600, "history_interval": 3600},
        "run": run, "space": _space(),
    }, source=name)


def _run_cfg(dataset: str, root: Path | None, epochs: int, k_val: int,
             test_examples: int | None = None) -> dict[str, Any]:
    if dataset == "shapes":
        data = {"name": "shapes", "size": 3000, "image_size": 16}
        model = {"hidden": [128]}
    else:
        data = {"name": "mnist", "root": str(root), "binarize": "dynamic", "limit": 10000}
        model = {"arch": "mlp", "hidden": [400], "likelihood": "bernoulli"}
    return {"data": data, "model": model, "schedule": {"kind": "constant"}, "epochs": epochs,
            "batch_size": 128, "device": "cpu", "threads": 1, "images": False,
            "eval": {"iwae_samples": k_val, "iwae_max_examples": 1000,
                     "test_max_examples": test_examples}}


def mnist_root(tmp: Path) -> Path | None:
    """gunzip the shared MNIST files into ROOT/MNIST/raw (None when they are absent)."""
    if not all((MNIST_GZ / f).exists() for f in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")):
        return None
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for gz in MNIST_GZ.glob("*.gz"):
        with gzip.open(gz, "rb") as src, open(raw / gz.name[:-3], "wb") as dst:
            shutil.copyfileobj(src, dst)
    return tmp


def workdir(path: str | None) -> Path:
    """``--dir`` (created), else a new temporary folder: it holds the storage ``b.db`` or
    ``f.db``, so ``table --storage sqlite:///DIR/b.db`` re-reads a run, finished or stopped."""
    if path is None:
        return Path(tempfile.mkdtemp())
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def finalists(dataset: str, trials: int, top: int, seeds: int, k: int, epochs: int,
              test_examples: int | None = None, workers: int = 1, where: str | None = None) -> dict[str, Any]:
    """Search, then finalize the top configurations with ``workers`` workers: this process and
    ``workers - 1`` ``vae-search worker`` processes on the finalists' spec (one thread each)."""
    tmp = workdir(where)
    root = mnist_root(tmp) if dataset == "mnist" else None
    if dataset == "mnist" and root is None:
        return {"skipped": f"no MNIST files in {MNIST_GZ}"}
    url = f"sqlite:///{tmp / 'b.db'}"
    spec = _spec(f"{dataset}-search", _run_cfg(dataset, root, epochs, 100, test_examples), trials)
    opts = WorkerOptions(storage=url, artifact_dir=None, threads=1)
    run_worker(spec, opts)
    study = optuna.load_study(study_name=spec.study, storage=url)
    spec_file = tmp / "final.yaml"
    final_spec = prepare_finalists(study, choose_finalists(study, top), url, seeds=seeds, k=k, spec_out=spec_file)
    others = [subprocess.Popen([sys.executable, "-m", "vae_search", "worker", str(spec_file), "--storage", url,
                                "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
              for _ in range(workers - 1)]
    run_worker(final_spec, opts)
    for proc in others:
        proc.wait()
    meta = {"dataset": dataset, "trials": trials, "epochs": epochs, "seeds": seeds, "k": k,
            "test_examples": test_examples, "workers": workers}
    return {**meta, **report(url, spec.study, top)}


def report(url: str, search: str, top: int) -> dict[str, Any]:
    """The search's top ``top`` and the finalists' table, read back from the storage."""
    study = optuna.load_study(study_name=search, storage=url)
    chosen = choose_finalists(study, top)
    table = summarize_finalists(optuna.load_study(study_name=final_study_name(search), storage=url))
    return {
        "pruned": sum(t.state.name == "PRUNED" for t in study.trials),
        "search_top": [{"trial": t.number, "val_nll": round(t.value, 2), "params": t.params} for t in chosen],
        "finalists": [{"rank": r["rank"], "trial": r["trial"], "search_rank": r["search_rank"], "n": r["n"],
                       "mean": round(r["mean"], 2), "values": [round(v, 2) for v in r["values"]],
                       "sd": round(r["sd"], 2) if r["sd"] is not None else None,
                       "interval": [round(r["low"], 2), round(r["high"], 2)] if r["low"] is not None else None,
                       "active_units": r["active_units"], "kl": round(r["kl"], 2) if r["kl"] is not None else None}
                      for r in table["rows"]],
        "verdict": table["verdict"]["text"] if table["verdict"] else None,
    }


def _rd(t: optuna.trial.FrozenTrial) -> tuple[float, float]:
    f = records.record(t, 'final')
    return float(f["kl"]), float(f["recon"])


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (minimised R, D) inside the box up to ``ref``."""
    pts = np.array([p for p in points if p[0] < ref[0] and p[1] < ref[1]])
    if len(pts) == 0:
        return 0.0
    front = pts[non_dominated(pts)]
    front = front[np.argsort(front[:, 0])]
    area, prev_d = 0.0, ref[1]
    for r, d in front:
        area += (ref[0] - r) * (prev_d - d)
        prev_d = d
    return float(area)


def fronts(dataset: str, trials: int, epochs: int, sampler_seeds: int = 1,
           where: str | None = None) -> dict[str, Any]:
    """Both studies once per sampler seed (0 .. sampler_seeds - 1), all on one reference point."""
    tmp = workdir(where)
    root = mnist_root(tmp) if dataset == "mnist" else None
    if dataset == "mnist" and root is None:
        return {"skipped": f"no MNIST files in {MNIST_GZ}"}
    url = f"sqlite:///{tmp / 'f.db'}"
    run = _run_cfg(dataset, root, epochs, 20)
    for seed in range(sampler_seeds):
        for label, objective in FRONT_LABELS.items():
            spec = _spec(f"{dataset}-{'mo' if label.startswith('[') else 'so'}-{seed}", run, trials, objective,
                         sampler_seed=seed)
            run_worker(spec, WorkerOptions(storage=url, artifact_dir=None, threads=1))
    return {"dataset": dataset, "epochs": epochs, **front_report(url, dataset, trials, sampler_seeds)}


def _healthy(ts: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in ts if t.state == optuna.trial.TrialState.COMPLETE and not is_collapsed(t)]


def front_report(url: str, dataset: str, trials: int, sampler_seeds: int) -> dict[str, Any]:
    """Hypervolume curves of both studies for each sampler seed whose two studies both
    finished, read back from the storage, on one reference point."""
    names = {label: f"{dataset}-{'mo' if label.startswith('[') else 'so'}" for label in FRONT_LABELS}
    have = set(optuna.get_all_study_names(url))
    seeds = [s for s in range(sampler_seeds) if all(f"{n}-{s}" in have for n in names.values())]
    # a trial lost with its worker (FAIL, or RUNNING after a stopped run) is no search trial:
    # "after n trials" counts the first n that completed or were pruned
    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    studies = {label: [[t for t in optuna.load_study(study_name=f"{n}-{s}", storage=url).trials
                        if t.state in counted] for s in seeds]
               for label, n in names.items()}
    keep = [i for i in range(len(seeds))
            if all(len(runs[i]) >= trials for runs in studies.values())]
    seeds = [seeds[i] for i in keep]
    studies = {label: [runs[i] for i in keep] for label, runs in studies.items()}
    allpts = [_rd(t) for runs in studies.values() for ts in runs for t in _healthy(ts)]
    ref = (max(p[0] for p in allpts) + 1.0, max(p[1] for p in allpts) + 1.0)
    checkpoints = [trials * i // 4 for i in (1, 2, 3, 4)]
    out: dict[str, Any] = {"trials": trials, "sampler_seeds": seeds, "reference_point": ref, "after": checkpoints}
    curves = {}
    for label, runs in studies.items():
        curves[label] = np.array([[hypervolume([_rd(t) for t in _healthy(ts[:n])], ref) for n in checkpoints]
                                  for ts in runs])
        out[label] = {
            "completed": [len(_healthy(ts)) for ts in runs],
            "pruned": [sum(t.state.name == "PRUNED" for t in ts) for ts in runs],
            "hypervolume": curves[label].round(1).tolist(),
            "mean": curves[label].mean(0).round(1).tolist(),
            "sd": curves[label].std(0, ddof=1).round(1).tolist() if len(runs) > 1 else None,
        }
    so, mo = (curves[label] for label in FRONT_LABELS)
    out["mo_minus_so"] = (mo - so).round(1).tolist()  # paired by sampler seed
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["shapes", "mnist", "front", "table"])
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--k", type=int, default=500)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--test-examples", type=int, default=None, help="eval.test_max_examples (None: all)")
    p.add_argument("--sampler-seeds", type=int, default=1, help="front: runs of both studies")
    p.add_argument("--workers", type=int, default=1, help="finalist workers (processes, 1 thread each)")
    p.add_argument("--dir", help="mnist/shapes/front: folder for the storage and data (default: a new temp folder)")
    p.add_argument("--storage", help="table: re-read a finished run's storage (sqlite:///.../b.db)")
    p.add_argument("--study", help="table: the search study (shapes-search, mnist-search)")
    a = p.parse_args()
    quiet()
    if a.what == "front":
        print(json.dumps(fronts(a.dataset, a.trials, a.epochs, a.sampler_seeds, a.dir), indent=1))
    elif a.what == "table" and a.study is None:  # a front run's storage
        print(json.dumps(front_report(a.storage, a.dataset, a.trials, a.sampler_seeds), indent=1))
    elif a.what == "table":
        print(json.dumps(report(a.storage, a.study, a.top), indent=1))
    else:
        print(json.dumps(finalists(a.what, a.trials, a.top, a.seeds, a.k, a.epochs, a.test_examples,
                                   a.workers, a.dir), indent=1))


if __name__ == "__main__":
    main()
