"""Seconds of the IWAE bound (``vae_search.metrics.iwae_nll``) against ``eval.iwae_chunk``, the
rows (examples x samples) per decoder pass, for k = 50, 500 and 5000, in one run.

The model is the MNIST study's size (784-400-z MLP, z = 32, Bernoulli likelihood), untrained
(the time does not depend on the weights), on random binary 28x28 images; every k gets the
same number of rows (``--rows``, so ``rows / k`` examples), one thread, as a worker runs.
Chunk sizes are timed round-robin (``--repeats`` rounds, each chunk once a round) so that load
from other processes falls on all of them alike, and the median CPU and wall seconds are
printed per (k, chunk), with the ratio to the best chunk for that k and the default chunk
(``eval.iwae_chunk: null``, by memory). The bound is checked to be the same for every chunk
(it draws example i's samples the same way whatever the blocks).

    python -m benchmarks.bench_iwae [--rows 200000 --repeats 3 --threads 1 --json FILE]

Peak memory of one pass grows with the chunk: the decoder's logits and the likelihood's two
temporaries are rows x 784 float32 each, about 9.4 KB a row (94 MB at 10,000 rows, 940 MB at
100,000), besides the hidden layer (1.6 KB a row).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks._common import emit, quiet, save_rows
from vae_search.config import RunConfig
from vae_search.metrics import iwae_chunk_for, iwae_nll
from vae_search.model import build_vae

CHUNKS = (1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000)


def model_and_data(rows: int, k: int):
    torch.manual_seed(0)
    cfg = RunConfig.from_dict({"model": {"arch": "mlp", "hidden": [400], "latent_dim": 32,
                                         "likelihood": "bernoulli"}})
    model = build_vae(cfg, (1, 28, 28))
    n = max(1, rows // k)
    x = (torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1)) < 0.13).float()
    return model, x


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ks", type=int, nargs="+", default=[50, 500, 5000])
    p.add_argument("--json", default=None)
    a = p.parse_args()
    quiet()
    torch.set_num_threads(a.threads)
    rows: list[dict] = []
    for k in a.ks:
        model, x = model_and_data(a.rows, k)
        cpu: dict[int, list[float]] = {c: [] for c in CHUNKS}
        wall: dict[int, list[float]] = {c: [] for c in CHUNKS}
        values = set()
        for _ in range(a.repeats):
            for c in CHUNKS:
                t0, w0 = time.process_time(), time.perf_counter()
                values.add(round(iwae_nll(model, x, k=k, chunk=c, seed=0), 3))
                cpu[c].append(time.process_time() - t0)
                wall[c].append(time.perf_counter() - w0)
        med = {c: statistics.median(v) for c, v in cpu.items()}
        best = min(med.values())
        for c in CHUNKS:
            emit(rows, {"k": k, "examples": x.shape[0], "chunk": c, "cpu_s": round(med[c], 3),
                        "wall_s": round(statistics.median(wall[c]), 3), "cpu_vs_best": round(med[c] / best, 2),
                        "same_bound": len(values) == 1, "default_chunk": iwae_chunk_for(model, x)})
    save_rows(a.json, rows)


if __name__ == "__main__":
    main()
