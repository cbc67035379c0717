"""Trials per hour of population training against the same trials one after another, in one run.

Two models:

- ``quickstart``: the quickstart's model (32x32 generated shapes, MLP 1024-128, latent 8,
  Bernoulli, batch 128, 12,000 images, 10% validation; eval k = 50 on 400 as the spec has it);
- ``mnist``: the seed's Example 1 model (784-400-20, Bernoulli, batch 128) on MNIST-shaped
  generated images, dynamically binarised, with the quickstart's evaluation settings.

For each model, P trials that differ in β, warm-up rate, learning rate and seed are trained
(a) one after another with :func:`vae_search.train.train`, (b) as one population with
:func:`vae_search.train.population.train_population`, for P = 1, 4, 8, 16. Both include the
per-epoch validation metrics and the final figures a trial computes (the population computes
its members' IWAE bounds in one batched pass); neither touches a storage (the engine only).
One single run and one population of two warm the process up first, outside the timings. The
sequential rate is measured on the first ``--sequential`` trials (trials of one shape cost the
same), just before each population. The compute floor is one stacked training step (forward,
backward, Adam) on pre-made batches, against P single-model steps.

    python -m benchmarks.bench_population [--epochs 2] [--threads 1] [--sizes 1,4,8,16] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.bench_engine import mnist_like
from vae_search.config import RunConfig
from vae_search.data import DataSplits, load_data
from vae_search.model import build_vae, vae_loss
from vae_search.train import train
from vae_search.train.loop import make_optimizer
from vae_search.train.population import train_population
from vae_search.train.stacked import StackedAdam, StackedVAE, stacked_loss


def configs(model: str, p: int, epochs: int, threads: int, device: str = "cpu") -> list[RunConfig]:
    base = {
        "model": {"arch": "mlp", "hidden": [128], "latent_dim": 8, "likelihood": "bernoulli"},
        "data": {"name": "shapes", "size": 12000, "image_size": 32, "val_fraction": 0.1},
        "eval": {"batch_size": 500, "iwae_samples": 50, "iwae_max_examples": 400},
        "epochs": epochs, "batch_size": 128, "device": device, "threads": threads, "images": False,
    }
    if model == "mnist":
        base["model"] = {"arch": "mlp", "hidden": [400], "latent_dim": 20, "likelihood": "bernoulli"}
        base["data"] = {"name": "shapes", "binarize": "dynamic"}  # the data are given, not loaded
    out = []
    for i in range(p):
        cfg = dict(base, seed=i, optim={"lr": 1e-3 * (1 + i % 3)},
                   schedule={"kind": "linear", "beta": 0.5 + 0.25 * i, "rate": 0.2 + 0.1 * (i % 5)})
        out.append(RunConfig.from_dict(cfg))
    return out


def dataset(model: str, n_mnist: int) -> DataSplits:
    if model == "quickstart":
        return load_data(configs("quickstart", 1, 1, 1)[0].data)
    x = mnist_like(n_mnist).float().div(255).unsqueeze(1)
    n_val = n_mnist // 10
    return DataSplits(name="mnist-like", train=x[n_val:], val=x[:n_val], test=None, shape=(1, 28, 28), binary_ok=True)


def step_floor(cfgs: list[RunConfig], shape: tuple[int, ...], repeats: int = 20) -> tuple[float, float]:
    """Seconds of one stacked step of len(cfgs) members, and of as many single-model steps."""
    device = torch.device("cuda" if cfgs[0].device.startswith("cuda") else "cpu")
    models = [build_vae(c, shape).to(device) for c in cfgs]
    p, b, d = len(cfgs), cfgs[0].batch_size, cfgs[0].model.latent_dim
    x = torch.rand(p, b, *shape, device=device).bernoulli()
    eps = torch.randn(p, b, d, device=device)
    stack = StackedVAE(models)
    adam = StackedAdam(stack, [1e-3] * p, [0.0] * p, [None] * p, [0] * p)
    beta, fb = torch.ones(p, device=device), torch.zeros(p, device=device)

    def stacked() -> None:
        log_px, kl = stack.forward(x, eps)
        stacked_loss(log_px, kl, beta, fb, d).sum().backward()
        adam.step()

    opts = [make_optimizer(c, m) for c, m in zip(cfgs, models)]

    def singles() -> None:
        for i, (m, o) in enumerate(zip(models, opts)):
            loss = vae_loss(m(x[i]), 1.0)
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()

    out = []
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for fn in (stacked, singles):
        for _ in range(3):
            fn()
        sync()
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync()
        out.append((time.perf_counter() - t) / repeats)
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default="1,4,8,16")
    ap.add_argument("--sequential", type=int, default=4, help="trials timed one after another")
    ap.add_argument("--models", default="quickstart,mnist")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mnist-n", type=int, default=12000, help="MNIST-shaped images (10%% validation)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    for model in args.models.split(","):
        data = dataset(model, args.mnist_n)
        # warm-up outside the timings: the first run in a process pays one-off costs (kernel
        # selection, allocator growth) that would otherwise land on whichever row runs first
        warm = configs(model, 2, 1, args.threads, args.device)
        train(warm[0], data=data)
        train_population(warm, data=data)
        for p in sizes:
            # the trials one after another just before their population: the machine is shared,
            # so each ratio compares two neighbouring measurements
            seq_cfgs = configs(model, min(p, args.sequential), args.epochs, args.threads, args.device)
            t = time.perf_counter()
            for c in seq_cfgs:
                train(c, data=data)
            seq = (time.perf_counter() - t) / len(seq_cfgs)
            cfgs = configs(model, p, args.epochs, args.threads, args.device)
            t = time.perf_counter()
            outcomes = train_population(cfgs, data=data)
            took = time.perf_counter() - t
            assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
            stacked, singles = step_floor(cfgs, data.shape)
            print(json.dumps({
                "model": model, "P": p, "sequential_trials_per_hour": round(3600 / seq, 1),
                "population_trials_per_hour": round(3600 * p / took, 1), "speedup": round(seq * p / took, 2),
                "stacked_step_ms": round(stacked * 1000, 2), "single_steps_ms": round(singles * 1000, 2),
                "step_ratio": round(singles / stacked, 2),
            }), flush=True)

if __name__ == "__main__":
    main()
