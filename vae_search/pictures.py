"""PNG pictures of a model: reconstructions next to their inputs, and samples from the prior.

Only for image data (C, H, W); flat vectors have no picture. Pixels are the likelihood's mean
(sigmoid of logits for Bernoulli), clamped to [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from vae_search.model import VAE


@torch.no_grad()
def reconstruction_grid(model: VAE, x: torch.Tensor, n: int = 32, nrow: int = 8) -> torch.Tensor:
    """Rows alternate inputs and their reconstructions (posterior mean z, no sampling)."""
    model.eval()
    x = x[:n]
    mu, _ = model.encode(x)
    recon = model.likelihood.mean(model.decode(mu)).clamp(0, 1)
    rows = []
    for i in range(0, x.shape[0], nrow):
        rows += [x[i : i + nrow], recon[i : i + nrow]]
    return make_grid(torch.cat(rows).float().cpu(), nrow=nrow, padding=1, pad_value=0.5)


@torch.no_grad()
def sample_grid(model: VAE, n: int = 64, nrow: int = 8, seed: int = 0) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    samples = model.sample(n, generator=gen).clamp(0, 1)
    return make_grid(samples.float().cpu(), nrow=nrow, padding=1, pad_value=0.5)


def save_pictures(model: VAE, x: torch.Tensor, out_dir: Path, seed: int = 0) -> list[Path]:
    """Write ``reconstructions.png`` and ``samples.png``; nothing for non-image data."""
    if x.dim() != 4:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "reconstructions.png", out_dir / "samples.png"]
    save_image(reconstruction_grid(model, x), paths[0])
    save_image(sample_grid(model, seed=seed), paths[1])
    return paths
