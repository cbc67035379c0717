"""A VAE of your own, searched by vae-search through ``model.arch: custom``.

``examples/custom-vae.yaml`` names this file as ``model.factory: custom_vae.py:build`` (a
path relative to the spec's folder) and searches ``model.options.width`` and
``model.options.blocks`` next to the β schedule. The factory gets one
:class:`vae_search.model.factory.ModelContext` and returns ``(encoder, decoder)``:

- ``encoder(x) -> (mu, logvar)``, each (batch, latent_dim);
- ``decoder(z, x) -> likelihood parameters`` shaped like x (Bernoulli logits here); x is there
  for teacher forcing, and this decoder ignores it.

Priors, β schedules, free bits, the metrics, the IWAE bound and the collapse pruner all work
on it unchanged: vae-search owns everything but the two networks.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Residual(nn.Module):
    """x + MLP(x), with a LayerNorm in front: the blocks a user might add to the stock MLP."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class Encoder(nn.Module):
    def __init__(self, inputs: int, width: int, blocks: int, latent_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs, width), *[Residual(width) for _ in range(blocks)],
                                 nn.SiLU(), nn.Linear(width, 2 * latent_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x.flatten(1)).chunk(2, dim=-1)
        return mu, logvar


class Decoder(nn.Module):
    def __init__(self, shape: tuple[int, ...], width: int, blocks: int, latent_dim: int):
        super().__init__()
        self.shape = shape
        self.net = nn.Sequential(nn.Linear(latent_dim, width), *[Residual(width) for _ in range(blocks)],
                                 nn.SiLU(), nn.Linear(width, math.prod(shape)))

    def forward(self, z: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).unflatten(-1, self.shape)


def build(ctx):
    """The factory: options ``width`` (default 64) and ``blocks`` (default 1)."""
    width, blocks = int(ctx.options.get("width", 64)), int(ctx.options.get("blocks", 1))
    inputs = math.prod(ctx.event_shape)
    return (Encoder(inputs, width, blocks, ctx.latent_dim),
            Decoder(tuple(ctx.event_shape), width, blocks, ctx.latent_dim))
