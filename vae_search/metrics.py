"""Collapse diagnostics and likelihood estimates on a held-out split.

All figures are per example, in nats, lower-is-better where they are losses:

- ``elbo``: the negative ELBO at β = 1, -E_q[log p(x|z)] + KL(q(z|x) || p(z)), one z per x.
  It is comparable across trials with different β (the β-weighted training loss is not).
- ``recon``: -E_q[log p(x|z)];  ``kl``: KL(q(z|x) || p(z)) (closed form for the standard
  prior, one-sample Monte Carlo for mixtures).
- ``kl_per_dim``: per latent dimension, KL of q(z_d|x) to the prior's moment-matched marginal
  (exact for N(0, I)), averaged over x. A collapsed dimension sits at ~0.
- ``active_units``: Burda et al. (2016): A_d = Var_x(E_q[z_d]) > δ (δ = 0.01). We follow the
  official yburda/iwae estimator: biased variance (divide by N) and a strict ``>``, but over
  the validation split (all of it, or ``eval.max_examples``) rather than 500 training points.
  δ is on the scale of N(0, I); with a learned mixture prior the latent scale can drift.
- ``mutual_info``: He et al. (2019) ``calc_mi``: E_x E_q[log q(z|x)] - E[log q(z)], log q(z)
  approximated by the mixture of the posteriors of the current evaluation batch, one z per x,
  averaged over batches. The estimate is at most log(batch size) in expectation (one batch can
  exceed it: log q(z|x) is a one-sample term).
- ``nll_iwae``: -log p(x) estimated by the importance-weighted bound with k samples
  (Burda et al. 2016), a lower bound on log p(x) that tightens as k grows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from vae_search.model.gaussian import LOG_2PI, kl_normal, log_mixture
from vae_search.model.vae import VAE


@dataclass
class Evaluation:
    """Validation figures of one epoch (see the module docstring for definitions)."""

    elbo: float
    recon: float
    kl: float
    kl_per_dim: list[float]
    active_units: int
    unit_variance: list[float]
    mutual_info: float

    def to_dict(self) -> dict:
        return asdict(self)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> tuple[int, torch.Tensor]:
    """Count of dimensions whose posterior mean varies across examples by more than δ.

    Args:
        mu: (N, D) posterior means E_q[z|x] of N examples.
        threshold: δ; a unit is active when its biased variance is strictly above it.

    Returns:
        The count and the per-dimension variances A_d.
    """
    var = mu.var(dim=0, unbiased=False)
    return int((var > threshold).sum()), var


MI_NEAR_CEILING = 0.95  # share of log(batch) from which the MI estimate is called saturated


def mutual_info_ceiling(batch_size: int) -> float:
    """The most the He et al. estimate over evaluation batches of ``batch_size`` can show (in
    expectation): log(batch size), 0 for batches of one."""
    return math.log(batch_size) if batch_size > 1 else 0.0


def mutual_info_at_ceiling(value: float, batch_size: int) -> bool:
    """True when an estimate is within ``MI_NEAR_CEILING`` of its ceiling: it then says only
    that I(x; z) is at least about that much (a larger ``eval.batch_size`` leaves room)."""
    ceiling = mutual_info_ceiling(batch_size)
    return ceiling > 0 and math.isfinite(value) and value >= MI_NEAR_CEILING * ceiling


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z_d|x) || N(0, 1)) of each latent dimension, averaged over the batch: (D,).

    Closed form (Kingma & Welling 2014, appendix B), for a standard-normal prior; a collapsed
    dimension sits at ~0. (A model with another prior: ``model.prior.kl_per_dim``.)
    """
    return kl_normal(mu, logvar).mean(0)


def mutual_info_batch(mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """He et al. (2019) I(x; z) estimate on one batch (a 0-dim tensor, no host sync)."""
    b, d = mu.shape
    neg_entropy = (-0.5 * d * LOG_2PI - 0.5 * (1.0 + logvar).sum(-1)).mean()
    log_w = torch.full((b,), -math.log(b), device=mu.device, dtype=mu.dtype)
    log_qz = log_mixture(z, log_w, mu, logvar)
    return neg_entropy - log_qz.mean()


@torch.no_grad()
def evaluate(
    model: VAE, data: torch.Tensor, *, batch_size: int, au_threshold: float = 0.01, seed: int = 0
) -> Evaluation:
    """All per-epoch diagnostics over ``data`` (already on the model's device).

    The z samples come from a generator seeded with ``seed`` so the same model gives the same
    figures, and evaluation never touches the training random stream.
    """
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=data.device).manual_seed(seed)
    n = data.shape[0]
    sums = torch.zeros(3, device=data.device, dtype=torch.float64)  # recon, kl, mi*b
    kl_dims = torch.zeros(model.latent_dim, device=data.device, dtype=torch.float64)
    mus = []
    for start in range(0, n, batch_size):
        x = data[start : start + batch_size]
        out = model(x, generator=gen)
        b = x.shape[0]
        mi = mutual_info_batch(out.mu, out.logvar, out.z) if b > 1 else out.mu.new_zeros(())
        sums += torch.stack([-out.log_px.sum(), out.kl.sum(), mi * b]).double()
        kl_dims += model.prior.kl_per_dim(out.mu, out.logvar).sum(0).double()
        mus.append(out.mu)
    count, var = active_units(torch.cat(mus), au_threshold)
    recon, kl, mi = (sums / n).tolist()
    model.train(was_training)
    return Evaluation(
        elbo=recon + kl, recon=recon, kl=kl, kl_per_dim=(kl_dims / n).tolist(),
        active_units=count, unit_variance=var.tolist(), mutual_info=mi,
    )


# bytes of decoder output (float32) per IWAE pass when eval.iwae_chunk is null: on the CPU,
# passes that stay in cache. 8 MiB is 2,674 MNIST rows (784 outputs) or 2,048 quickstart rows
# (1,024): in benchmarks/bench_iwae.py (1 thread, 2 shared cores) passes of 1,000-2,000 MNIST
# rows ran fastest, 5,000 (about the former 16 MiB) 9-14% slower, 100,000 2-3x slower; the
# quickstart model's k = 50 bound on 400 images took 1.31 s in 2,048-row passes against
# 1.60 s in 4,096 (8 models, medians of 3). On CUDA, bigger passes mean fewer launches
# (256 MiB: about the former fixed default of 100,000 rows for MNIST)
IWAE_PASS_BYTES = {"cpu": 8 * 2**20, "cuda": 256 * 2**20}


def iwae_chunk_for(model: VAE, data: torch.Tensor) -> int:
    """Rows per IWAE pass whose decoder output fits the device's :data:`IWAE_PASS_BYTES`."""
    per_row = math.prod(model.likelihood.param_shape(data[:1])) * 4
    budget = IWAE_PASS_BYTES["cuda" if data.device.type == "cuda" else "cpu"]
    return max(1, budget // per_row)


def iwae_noise(n: int, k: int, latent_dim: int, generator: torch.Generator,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(k, n, D) standard normal draws for n consecutive examples: example i's are the i-th
    ``randn((k, D))`` draw from ``generator``, so they do not depend on how examples are batched."""
    device = generator.device
    return torch.stack([torch.randn((k, latent_dim), generator=generator, device=device, dtype=dtype)
                        for _ in range(n)], dim=1)


@torch.no_grad()
def iwae_nll(model: VAE, data: torch.Tensor, *, k: int, chunk: int | None = None, seed: int = 0) -> float:
    """-log p(x) estimated with k importance samples, averaged over ``data``.

    ``chunk`` bounds examples x samples per decoder pass (None: :func:`iwae_chunk_for`): points
    go in blocks of chunk // k, and when k alone exceeds ``chunk`` the samples are split and
    combined with logsumexp. The estimate does not depend on ``chunk`` (to float rounding):
    example i's samples come from the i-th draw of one generator seeded with ``seed``
    (:func:`iwae_noise`), whatever the blocks.
    """
    was_training = model.training
    model.eval()
    if chunk is None:
        chunk = iwae_chunk_for(model, data)
    gen = torch.Generator(device=data.device).manual_seed(seed)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    total = torch.zeros((), device=data.device, dtype=torch.float64)
    points = max(1, chunk // k)
    per_pass = min(k, max(1, chunk))
    for start in range(0, data.shape[0], points):
        x = data[start : start + points]
        eps = iwae_noise(x.shape[0], k, model.latent_dim, gen, dtype)
        parts = []
        for done in range(0, k, per_pass):
            part = eps[done : done + per_pass]
            parts.append(model.log_importance_weights(x, part.shape[0], eps=part))
        log_w = torch.cat(parts, dim=0)  # (k, b)
        total += (torch.logsumexp(log_w, dim=0) - math.log(k)).double().sum()
    model.train(was_training)
    return -float(total) / data.shape[0]
