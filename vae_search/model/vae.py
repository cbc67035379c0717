"""The VAE: encode -> reparameterize -> decode, with the prior and likelihood it was built with.

Follows Kingma & Welling (2014): q(z|x) = N(mu(x), diag exp(logvar(x))), z = mu + sigma * eps.
The loss is a free function (:func:`vae_loss`) so the β schedule and free bits stay outside the
(possibly compiled) module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from vae_search.config import RunConfig
from vae_search.model.factory import SequenceInfo, build_networks_from, context_for, source_hash
from vae_search.model.gaussian import full_precision, log_normal
from vae_search.model.likelihoods import Likelihood, build_likelihood
from vae_search.model.priors import Prior, build_prior

log = logging.getLogger(__name__)


@dataclass
class VAEOutput:
    """What one forward pass gives, per example (B,) unless noted."""

    out: torch.Tensor  # decoder output, data-shaped (logits or mean)
    mu: torch.Tensor  # (B, D)
    logvar: torch.Tensor  # (B, D)
    z: torch.Tensor  # (B, D)
    log_px: torch.Tensor  # log p(x|z), one z sample
    kl_terms: torch.Tensor  # (B, G) KL groups: G = D (standard prior) or 1 (mixtures)

    @property
    def kl(self) -> torch.Tensor:
        return self.kl_terms.sum(-1)


class VAE(nn.Module):
    """Encoder, decoder, prior and likelihood for data of event shape ``shape``."""

    def __init__(
        self, shape: tuple[int, ...], encoder: nn.Module, decoder: nn.Module, prior: Prior, likelihood: Likelihood
    ):
        super().__init__()
        self.shape = tuple(shape)
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior
        self.likelihood = likelihood

    @property
    def latent_dim(self) -> int:
        return self.prior.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # float32 whatever autocast made the network's output: every density and KL below is
        # computed from these, and bfloat16 would bias them by hundredths of a nat
        mu, logvar = self.encoder(x)
        return full_precision(mu), full_precision(logvar)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if generator is None:
            eps = torch.randn_like(mu)
        else:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's likelihood parameters for z (..., D); ``x`` (B, ...) is handed to it
        for teacher forcing. Leading sample dimensions of z (the IWAE's k) are folded into the
        batch, so a decoder only ever sees z (N, D) and x (N, ...)."""
        if z.dim() > 2:
            lead = z.shape[:-1]
            flat_x = None if x is None else x.expand(*lead, *x.shape[1:]).reshape(-1, *x.shape[1:])
            out = self._decoder(z.reshape(-1, z.shape[-1]), flat_x)
            out = out.reshape(*lead, *out.shape[1:])
        else:
            out = self._decoder(z, x)
        return full_precision(out)  # logits or means, float32 under autocast too

    def _decoder(self, z: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        # without x (pictures decoding from the prior or a mean) the decoder gets z alone, so
        # a plain z -> output module works there; the factory contract is forward(z, x=None)
        return self.decoder(z) if x is None else self.decoder(z, x)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        out = self.decode(z, x)
        return VAEOutput(
            out=out, mu=mu, logvar=logvar, z=z,
            log_px=self.likelihood.log_prob(x, out),
            kl_terms=self.prior.kl_terms(mu, logvar, z),
        )

    def log_importance_weights(
        self, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
        eps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(k, B) log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), z_i ~ q(z|x): z_i =
        mu + sigma * eps_i, with ``eps`` (k, B, D) when given, else drawn from ``generator``."""
        mu, logvar = self.encode(x)
        if eps is None:
            eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        log_px = self.likelihood.log_prob(x, self.decode(z, x))
        return log_px + self.prior.log_prob(z) - log_normal(z, mu, logvar).sum(-1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Data-space means of n draws from the prior."""
        return self.likelihood.mean(self.decode(self.prior.sample(n, generator)))


def vae_loss(out: VAEOutput, beta: torch.Tensor | float, free_bits: float = 0.0) -> torch.Tensor:
    """Mean over the batch of -log p(x|z) + β KL, with optional free bits.

    Free bits (Kingma et al. 2016, eq. 15): each KL group contributes max(λ, KL_g) with KL_g
    averaged over the batch; a mixture prior's single group gets λ times the latent size.
    """
    recon = -out.log_px.mean()
    kl_groups = out.kl_terms.mean(0)
    if free_bits > 0.0:
        per_group = free_bits * out.mu.shape[-1] / kl_groups.shape[0]
        kl_groups = kl_groups.clamp_min(per_group)
    return recon + beta * kl_groups.sum()


def build_vae(cfg: RunConfig, shape: tuple[int, ...], sequence: SequenceInfo | None = None) -> VAE:
    """Build the model a run config describes, for data of event shape ``shape`` (token data:
    ``(T,)`` and its :class:`SequenceInfo`), through the model section's factory.

    A custom factory whose source file differs from the one ``model.factory_hash`` recorded
    is built with a warning: the run may not reproduce the one it came from.
    """
    m = cfg.model
    if m.arch == "custom" and m.factory_hash:
        now = source_hash(m.factory or "")
        if now != m.factory_hash:
            log.warning("model.factory %r: its source file differs from the one this config was "
                        "recorded with (hash %s, now %s); results may not reproduce", m.factory,
                        m.factory_hash, now)
    encoder, decoder = build_networks_from(m, context_for(m, shape, sequence))
    prior = build_prior(
        cfg.prior.kind, m.latent_dim, components=cfg.prior.components, shape=shape,
        encode=encoder.forward, clamp=m.likelihood == "bernoulli",
    )
    likelihood = build_likelihood(
        m.likelihood, len(shape), sigma=m.sigma, learn_sigma=m.learn_sigma,
        vocab_size=sequence.vocab_size if sequence else 0, pad_id=sequence.pad_id if sequence else 0,
    )
    return VAE(shape, encoder, decoder, prior, likelihood)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["VAE", "VAEOutput", "build_vae", "n_params", "vae_loss"]
