"""Priors p(z): standard normal, a learnable mixture of Gaussians, and the VampPrior.

Every prior offers ``log_prob(z)``, ``sample(n)``, ``kl_terms(mu, logvar, z)`` (the KL the
loss uses, split into groups for free bits) and ``marginal_moments()`` (per-dimension mean and
variance, used by the per-dimension KL diagnostic). The standard prior's KL is closed form per
dimension; the mixtures' KL is the one-sample Monte Carlo estimate log q(z|x) - log p(z) with
log p(z) the joint mixture density (see :func:`vae_search.model.gaussian.log_mixture`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from vae_search.model.gaussian import full_precision, kl_normal, log_mixture, log_normal

EncodeFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class Prior(nn.Module):
    """Base class; ``latent_dim`` is D."""

    closed_form: bool = False

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """log p(z) for z of shape (..., D), summed over D."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def marginal_moments(self) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        """Per-dimension mean and variance of p(z), each (D,)."""
        raise NotImplementedError

    def kl_terms(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per example, as (B, G) groups that sum to it.

        Closed-form priors give one group per latent dimension; mixtures give one group (the
        Monte Carlo estimate does not split over dimensions). Free bits act per group.
        """
        log_q = log_normal(z, mu, logvar).sum(-1)
        return (log_q - self.log_prob(z)).unsqueeze(-1)

    def kl_per_dim(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Diagnostic (B, D): KL of each posterior dimension to the prior's moment-matched
        marginal N(m_d, v_d). Exact per-dimension KL for the standard prior; for mixtures a
        near-zero value still marks a dimension that carries no information about x."""
        m, v = self.marginal_moments()
        return kl_normal(mu, logvar, m, v)


class StandardPrior(Prior):
    """p(z) = N(0, I)."""

    closed_form = True

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return log_normal(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = self._device()
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def marginal_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        device = self._device()
        return torch.zeros(self.latent_dim, device=device), torch.ones(self.latent_dim, device=device)

    def kl_terms(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return kl_normal(mu, logvar)

    def _device(self) -> torch.device:
        return self._dev.device

    def __init__(self, latent_dim: int):
        super().__init__(latent_dim)
        self.register_buffer("_dev", torch.zeros(()), persistent=False)


class MixturePrior(Prior):
    """Shared code of the two mixtures: subclasses give (log weights, means, log-variances)."""

    def components(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        log_w, mu, logvar = self.components()
        return log_mixture(z, log_w, mu, logvar)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        log_w, mu, logvar = self.components()
        k = torch.multinomial(log_w.softmax(-1), n, replacement=True, generator=generator)
        eps = torch.randn(n, self.latent_dim, generator=generator, device=mu.device)
        return mu[k] + torch.exp(0.5 * logvar[k]) * eps

    def marginal_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        log_w, mu, logvar = self.components()
        w = log_w.softmax(-1).unsqueeze(-1)
        mean = (w * mu).sum(0)
        var = (w * (torch.exp(logvar) + mu.pow(2))).sum(0) - mean.pow(2)
        return mean, var.clamp_min(1e-12)


class MoGPrior(MixturePrior):
    """p(z) = sum_k softmax(logits)_k N(z; m_k, diag s_k^2), all learnable."""

    def __init__(self, latent_dim: int, components: int):
        super().__init__(latent_dim)
        self.logits = nn.Parameter(torch.zeros(components))
        self.means = nn.Parameter(torch.randn(components, latent_dim))
        self.log_scales = nn.Parameter(torch.zeros(components, latent_dim))

    def components(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.logits.log_softmax(-1), self.means, 2.0 * self.log_scales


class VampPrior(MixturePrior):
    """p(z) = 1/K sum_k q(z | u_k) with K learnable pseudo-inputs u_k (Tomczak & Welling 2018).

    As in the official code the pseudo-inputs start at N(0.05, 0.01) and pass through
    Hardtanh(0, 1) when the data are binary. ``encode`` is the VAE's encoder (not registered
    here as a submodule: it belongs to the VAE).
    """

    def __init__(self, latent_dim: int, components: int, shape: tuple[int, ...], encode: EncodeFn, clamp: bool):
        super().__init__(latent_dim)
        self.pseudo_inputs = nn.Parameter(0.05 + 0.01 * torch.randn(components, *shape))
        self._encode = encode
        self.clamp = clamp

    def inputs(self) -> torch.Tensor:
        return self.pseudo_inputs.clamp(0.0, 1.0) if self.clamp else self.pseudo_inputs

    def components(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self._encode(self.inputs())
        mu, logvar = full_precision(mu), full_precision(logvar)  # as VAE.encode gives them
        k = mu.shape[0]
        return torch.full((k,), -math.log(k), device=mu.device, dtype=mu.dtype), mu, logvar


def build_prior(
    kind: str, latent_dim: int, *, components: int, shape: tuple[int, ...], encode: EncodeFn, clamp: bool
) -> Prior:
    """The prior named by ``kind`` ('standard', 'mog' or 'vamp')."""
    if kind == "mog":
        return MoGPrior(latent_dim, components)
    if kind == "vamp":
        return VampPrior(latent_dim, components, shape, encode, clamp)
    return StandardPrior(latent_dim)
