"""Observation models p(x | z): the decoder's output is read as Bernoulli logits or a Gaussian mean."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vae_search.model.gaussian import LOG_2PI


class Likelihood(nn.Module):
    """log p(x | decoder output), summed over the ``event_dims`` trailing dimensions."""

    def __init__(self, event_dims: int):
        super().__init__()
        self.event_dims = event_dims

    def _sum(self, t: torch.Tensor) -> torch.Tensor:
        return t.flatten(-self.event_dims).sum(-1)

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def mean(self, out: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """E[x | z], for pictures."""
        raise NotImplementedError


class Bernoulli(Likelihood):
    """Decoder outputs logits l; log p(x|l) = x l - softplus(l), the stable form of
    BCE-with-logits. ``x`` broadcasts against ``out`` (k samples per x in the IWAE)."""

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return self._sum(x * out - F.softplus(out))

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out)


class Gaussian(Likelihood):
    """Decoder outputs the mean; sigma is fixed or one learned scalar shared by all pixels."""

    def __init__(self, event_dims: int, sigma: float, learn_sigma: bool):
        super().__init__(event_dims)
        log_sigma = torch.tensor(math.log(sigma))
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        ls = self.log_sigma
        return self._sum(-0.5 * LOG_2PI - ls - 0.5 * (x - out).pow(2) * torch.exp(-2.0 * ls))

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return out


def build_likelihood(kind: str, event_dims: int, *, sigma: float, learn_sigma: bool) -> Likelihood:
    if kind == "gaussian":
        return Gaussian(event_dims, sigma, learn_sigma)
    return Bernoulli(event_dims)
