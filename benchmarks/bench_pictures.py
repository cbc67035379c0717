"""What the trial pictures cost a worker: start-up imports and seconds per trial.

1. ``import``: wall and CPU time of a fresh ``python -c 'import MODULE'`` (median of ``--repeats``)
   for what a worker imports at start-up (``vae_search.workers.worker``), the module that draws
   a trial's pictures (``vae_search.dashboard.trial.publish``) and, for scale, an empty interpreter
   and matplotlib's figure + Agg canvas. Each row says whether the import pulled matplotlib in.
2. ``pictures``: one trial's pictures, all five (curves, KL per dimension, reconstructions,
   prior samples, traversals), for a quickstart-sized model (latent 16, hidden 256-128) on
   generated 32x32 shapes: ``draw`` renders and PNG-encodes them in memory; ``publish`` is the
   whole :func:`~vae_search.dashboard.trial.publish.publish_trial` (pictures, uploads to a file
   artifact store, note) on an in-memory study. The first call (``cold``: lazy imports, font
   loading) is reported apart from the median of the next ``--repeats``; ``cpu`` is process
   CPU time, which other load on the machine sways less than wall time. One thread.

    python -m benchmarks.bench_pictures [--repeats 7] [--json FILE]

Run it from the root of the checkout to measure: ``-m`` puts the current directory first on
``sys.path``, ahead of the installed package; each row names the ``vae_search`` it timed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORTS = {
    "python": "pass",
    "worker": "import vae_search.workers.worker",
    "publish": "import vae_search.dashboard.trial.publish",
    "matplotlib": "import matplotlib.figure, matplotlib.backends.backend_agg",
}
EPOCHS = 8


def import_seconds(code: str, repeats: int) -> dict:
    """Median wall and CPU time of a fresh interpreter running ``code``, and whether it loaded
    matplotlib."""
    probe = code + "; import sys; print('matplotlib' in sys.modules)"
    times, cpu, loaded = [], [], ""
    for _ in range(repeats + 1):  # the first run warms the OS file cache
        t0, c0 = time.perf_counter(), _children_cpu()
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        times.append(time.perf_counter() - t0)
        cpu.append(_children_cpu() - c0)
        loaded = out.stdout.strip()
    return {
        "seconds": statistics.median(times[1:]),
        "cpu_seconds": statistics.median(cpu[1:]),
        "matplotlib_loaded": loaded == "True",
    }


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _setup():
    import torch

    from vae_search.config import RunConfig
    from vae_search.data import load_data
    from vae_search.model.vae import build_vae

    cfg = RunConfig.from_dict(
        {
            "data": {"name": "shapes", "size": 1200, "image_size": 32},
            "model": {"hidden": [256, 128], "latent_dim": 16},
            "schedule": {"kind": "linear", "beta": 1.0, "rate": 0.5},
            "epochs": EPOCHS,
            "device": "cpu",
            "threads": 1,
            "images": False,
        }
    )
    data = load_data(cfg.data)
    torch.manual_seed(0)
    model = build_vae(cfg, data.shape)
    history = {
        "beta": [min(1.0, 0.5 * (e + 1)) for e in range(EPOCHS)],
        "elbo": [300.0 - 20 * e for e in range(EPOCHS)],
        "recon": [290.0 - 22 * e for e in range(EPOCHS)],
        "kl": [5.0 + e for e in range(EPOCHS)],
        "mutual_info": [1.0 + 0.3 * e for e in range(EPOCHS)],
        "seconds": [0.1] * EPOCHS,
        "kl_per_dim": (torch.rand(EPOCHS, 16) * torch.linspace(0, 2, 16)).tolist(),
        "active_units": [16, 15, 14, 12, 11, 11, 10, 10],
        "unit_variance": [torch.linspace(0, 0.5, 16).tolist()],
    }
    return cfg, data, model, history


def picture_seconds(repeats: int) -> dict:
    import optuna
    from optuna.artifacts import FileSystemArtifactStore

    from vae_search.dashboard.trial import publish

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg, data, model, history = _setup()
    detail = {"final": {"active_units": 10, "unit_variance": history["unit_variance"][-1]}}

    def draw() -> int:
        pics = publish._pictures(
            0, cfg, history, history["active_units"], model, data, "complete", detail
        )
        for make in pics.values():
            make().save(io.BytesIO(), format="PNG", optimize=False)
        return len(pics)

    out: dict = {}
    t0, c0 = time.perf_counter(), time.process_time()
    out["pictures"] = draw()
    out["draw_cold"] = time.perf_counter() - t0
    out["draw_cold_cpu"] = time.process_time() - c0
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        draw()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    out["draw_median"] = statistics.median(times)
    out["draw_cpu_median"] = statistics.median(cpu)  # CPU seconds: less swayed by other load
    study = optuna.create_study()
    with tempfile.TemporaryDirectory() as tmp:
        store = FileSystemArtifactStore(tmp)
        times = []
        for _ in range(repeats):
            trial = study.ask()
            t0 = time.perf_counter()
            publish.publish_trial(
                trial,
                store,
                config=cfg,
                history=history,
                model=model,
                data=data,
                outcome="complete",
                detail=detail,
            )
            times.append(time.perf_counter() - t0)
    out["publish_median"] = statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None)
    ap.add_argument("--pictures-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.pictures_only:  # the child process: a fresh interpreter, so "cold" is cold
        print(json.dumps(picture_seconds(args.repeats)))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    row_load = os.getloadavg()[0]
    import vae_search

    row: dict = {
        "vae_search": str(Path(vae_search.__file__).parent),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_at_start": row_load,
    }
    for name, code in IMPORTS.items():
        row[f"import_{name}"] = import_seconds(code, args.repeats)
        print(name, json.dumps(row[f"import_{name}"]), flush=True)
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_pictures",
            "--pictures-only",
            "--repeats",
            str(args.repeats),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    row["pictures"] = json.loads(child.stdout.strip().splitlines()[-1])
    row["load_at_end"] = os.getloadavg()[0]
    print("pictures", json.dumps(row["pictures"]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
