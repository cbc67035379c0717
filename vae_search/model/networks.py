"""Encoder and decoder networks: an MLP for any data and a stride-2 convolutional net for images.

Both encoders end in one linear layer giving the posterior mean and log-variance; both decoders
give one tensor shaped like the data (logits or means, as the likelihood reads them) and ignore
the ``x`` the factory interface hands them. :mod:`vae_search.model.factory` builds them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}


def _mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers between consecutive sizes, with the activation after every hidden one."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """x -> (mu, logvar); ``hidden=[]`` is a linear encoder."""

    def __init__(self, shape: tuple[int, ...], hidden: Sequence[int], latent_dim: int, activation: str):
        super().__init__()
        self.input_dim = math.prod(shape)
        self.net = _mlp([self.input_dim, *hidden, 2 * latent_dim], activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x.flatten(1)).chunk(2, dim=-1)
        return mu, logvar


class MLPDecoder(nn.Module):
    """z -> data-shaped output; ``hidden`` is mirrored from the encoder."""

    def __init__(self, shape: tuple[int, ...], hidden: Sequence[int], latent_dim: int, activation: str):
        super().__init__()
        self.shape = tuple(shape)
        self.net = _mlp([latent_dim, *reversed(hidden), math.prod(shape)], activation)

    def forward(self, z: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).unflatten(-1, self.shape)


def _conv_sizes(size: int, layers: int) -> list[int]:
    """Spatial side after each stride-2, kernel-3, padding-1 convolution."""
    sizes = [size]
    for _ in range(layers):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


class ConvEncoder(nn.Module):
    """Stride-2 3x3 convolutions, then a linear head to (mu, logvar)."""

    def __init__(self, shape: tuple[int, ...], channels: Sequence[int], latent_dim: int, activation: str):
        super().__init__()
        c, h, w = shape
        layers: list[nn.Module] = []
        for c_in, c_out in zip([c, *channels[:-1]], channels):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), _ACTIVATIONS[activation]()]
        self.conv = nn.Sequential(*layers)
        hs, ws = _conv_sizes(h, len(channels)), _conv_sizes(w, len(channels))
        self.head = nn.Linear(channels[-1] * hs[-1] * ws[-1], 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.conv(x).flatten(1)).chunk(2, dim=-1)
        return mu, logvar


class ConvDecoder(nn.Module):
    """Linear to the smallest feature map, then stride-2 transposed convolutions back to the
    exact input size (output padding chosen per layer, so odd sides such as 28 -> 14 -> 7 -> 4
    come back exactly)."""

    def __init__(self, shape: tuple[int, ...], channels: Sequence[int], latent_dim: int, activation: str):
        super().__init__()
        c, h, w = shape
        hs, ws = _conv_sizes(h, len(channels)), _conv_sizes(w, len(channels))
        rev = list(reversed(channels))
        self.start = (rev[0], hs[-1], ws[-1])
        self.fc = nn.Sequential(nn.Linear(latent_dim, rev[0] * hs[-1] * ws[-1]), _ACTIVATIONS[activation]())
        layers: list[nn.Module] = []
        outs = [*rev[1:], c]
        for i, (c_in, c_out) in enumerate(zip(rev, outs)):
            h_in, w_in = hs[-1 - i], ws[-1 - i]
            h_out, w_out = hs[-2 - i], ws[-2 - i]
            pad = (h_out - (2 * h_in - 1), w_out - (2 * w_in - 1))
            layers.append(nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=pad))
            if i < len(rev) - 1:
                layers.append(_ACTIVATIONS[activation]())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        lead = z.shape[:-1]
        out = self.deconv(self.fc(z.reshape(-1, z.shape[-1])).unflatten(-1, self.start))
        return out.reshape(*lead, *out.shape[1:])
