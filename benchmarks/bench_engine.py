"""Seconds per training epoch of the seed's Example 1 model, three ways, in one run.

The model is the classic 784-400-20 MLP VAE with a Bernoulli likelihood, batch 128, Adam 1e-3,
on MNIST-shaped data (60,000 uint8 28x28 images; generated, so no download is needed):

1. ``engine``: ``vae_search.train.train`` (data on the device, batches by index), timing the
   training steps of each epoch (``train_seconds``) and, separately, the whole epoch with its
   validation metrics.
2. ``dataloader``: the loop a user would write after pytorch/examples ``vae/main.py``: a
   torchvision-style Dataset that turns each uint8 image into a tensor per item (PIL +
   ``ToTensor``), ``DataLoader(batch_size=128, shuffle=True)``, the example's model and loss.
3. ``floor``: the same model and loss as the engine on pre-made batches already on the device:
   the bare compute.

Prints seconds per epoch (median over the timed epochs, after one warm-up epoch) and ratios.

    python benchmarks/bench_engine.py [--epochs 3] [--device cpu] [--n 60000]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from vae_search.config import RunConfig
from vae_search.data import DataSplits
from vae_search.model import build_vae, vae_loss
from vae_search.train import train
from vae_search.train.loop import make_optimizer


def mnist_like(n: int, seed: int = 0) -> torch.Tensor:
    """uint8 (n, 28, 28) images: blurred random strokes, roughly MNIST's ink density."""
    g = torch.Generator().manual_seed(seed)
    base = (torch.rand(n, 1, 7, 7, generator=g) > 0.6).float()
    img = F.interpolate(base, size=(28, 28), mode="bilinear", align_corners=False)
    return (img.squeeze(1) * 255).to(torch.uint8)


class ExampleVAE(nn.Module):
    """pytorch/examples vae/main.py, verbatim in structure."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def forward(self, x):
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


class MNISTStyle(Dataset):
    """What torchvision.datasets.MNIST does per item: uint8 -> PIL image -> ToTensor."""

    def __init__(self, data: torch.Tensor):
        self.data = data
        self.transform = transforms.ToTensor()

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        img = Image.fromarray(self.data[i].numpy(), mode="L")
        return self.transform(img), 0


def time_dataloader(images: torch.Tensor, epochs: int, device: torch.device) -> list[float]:
    torch.manual_seed(0)
    model = ExampleVAE().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(MNISTStyle(images), batch_size=128, shuffle=True)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for x, _ in loader:
            x = x.to(device)
            recon, mu, logvar = model(x)
            bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = bce + kld
            opt.zero_grad()
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def engine_config(epochs: int, device: str) -> RunConfig:
    return RunConfig.from_dict({
        "model": {"arch": "mlp", "hidden": [400], "latent_dim": 20, "likelihood": "bernoulli"},
        "schedule": {"kind": "constant", "beta": 1.0},
        "eval": {"iwae_samples": 0},
        "epochs": epochs, "batch_size": 128, "device": device, "images": False,
    })


def time_floor(train_x: torch.Tensor, cfg: RunConfig, epochs: int, device: torch.device) -> list[float]:
    torch.manual_seed(0)
    model = build_vae(cfg, (1, 28, 28)).to(device)
    opt = make_optimizer(cfg, model)  # the engine's own optimizer: the floor differs only in batching
    x = train_x.to(device)
    batches = [x[i : i + 128] for i in range(0, len(x) - 127, 128)]
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for b in batches:
            loss = vae_loss(model(b), 1.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (one more is run as warm-up)")
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    device = torch.device(args.device)
    images = mnist_like(args.n)
    train_x = images.float().div(255).unsqueeze(1)
    val_x = mnist_like(10000, seed=1).float().div(255).unsqueeze(1)
    splits = DataSplits(name="mnist-like", train=train_x, val=val_x, test=None, shape=(1, 28, 28), binary_ok=True)
    cfg = engine_config(args.epochs + 1, args.device)

    result = train(cfg, data=splits)
    engine = [h.train_seconds for h in result.history[1:]]
    engine_total = [h.seconds for h in result.history[1:]]
    floor = time_floor(train_x, cfg, args.epochs + 1, device)[1:]
    loop = time_dataloader(images, args.epochs + 1, device)[1:]

    med = {k: statistics.median(v) for k, v in
           {"engine": engine, "engine_with_metrics": engine_total, "floor": floor, "dataloader": loop}.items()}
    figures = {
        "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "n": args.n, "epochs_timed": args.epochs,
        "seconds_per_epoch": med,
        "speedup_vs_dataloader": med["dataloader"] / med["engine"],
        "engine_over_floor": med["engine"] / med["floor"],
    }
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.n} examples")
    print(f"{'way':24s} {'s/epoch':>9s}")
    for k, v in med.items():
        print(f"{k:24s} {v:9.3f}")
    print(f"engine is {figures['speedup_vs_dataloader']:.2f}x faster than the DataLoader loop, "
          f"{100 * (figures['engine_over_floor'] - 1):+.1f}% vs the compute floor")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    np.random.seed(0)


if __name__ == "__main__":
    main()
