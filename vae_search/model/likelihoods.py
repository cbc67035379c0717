"""Observation models p(x | z): the decoder's output is read as Bernoulli logits, a Gaussian
mean, or (token data) next-token logits of a categorical that masks padding."""

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

    def param_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """Shape of the decoder output this likelihood reads for the batch ``x``."""
        return tuple(x.shape)

    def describe(self) -> str:
        return f"{type(self).__name__.lower()} parameters shaped like x"


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


class Categorical(Likelihood):
    """Token data: x is (..., T) ids whose first is <bos>; the decoder gives (..., T - 1, V)
    logits, position t predicting token t + 1. log p(x|z) sums log softmax over the predicted
    tokens that are not padding: <eos> counts, <bos> (never predicted) does not.
    ``x`` broadcasts against leading sample dimensions of ``out`` (the IWAE's k)."""

    def __init__(self, vocab_size: int, pad_id: int):
        super().__init__(1)
        self.vocab_size = vocab_size
        self.pad_id = pad_id

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        target = x[..., 1:].expand(out.shape[:-1])
        logp = torch.log_softmax(out.float(), dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return (logp * (target != self.pad_id)).sum(-1)

    def counted(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens per sequence that the likelihood scores (<eos> yes, <bos> and <pad> no)."""
        return (x[..., 1:] != self.pad_id).sum(-1)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(-1)

    def param_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        return (*x.shape[:-1], x.shape[-1] - 1, self.vocab_size)

    def describe(self) -> str:
        return "next-token logits (batch, max_len - 1, vocab_size)"


def build_likelihood(kind: str, event_dims: int, *, sigma: float, learn_sigma: bool,
                     vocab_size: int = 0, pad_id: int = 0) -> Likelihood:
    if kind == "categorical":
        return Categorical(vocab_size, pad_id)
    if kind == "gaussian":
        return Gaussian(event_dims, sigma, learn_sigma)
    return Bernoulli(event_dims)
