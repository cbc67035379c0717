"""Collapse diagnostics and likelihood estimates against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from vae_search.config import RunConfig
from vae_search.metrics import (
    IWAE_PASS_BYTES,
    active_units,
    evaluate,
    iwae_chunk_for,
    iwae_nll,
    mutual_info_batch,
)
from vae_search.model import build_vae


def linear_gaussian_vae(p: int = 4, d: int = 2, sigma: float = 0.5, seed: int = 0):
    """A linear-Gaussian VAE whose encoder is the exact posterior, and its true p(x).

    Decoder x = W z + b + sigma * noise with orthogonal columns in W, so the exact posterior
    N(S W^T (x - b) / sigma^2, S), S = (I + W^T W / sigma^2)^-1, is diagonal and the encoder can
    represent it; the marginal is p(x) = N(b, W W^T + sigma^2 I).
    """
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(p, p, generator=g, dtype=torch.float64))
    w = q[:, :d] * torch.tensor([2.0, 0.5], dtype=torch.float64)[:d]
    b = torch.randn(p, generator=g, dtype=torch.float64)
    s = torch.linalg.inv(torch.eye(d, dtype=torch.float64) + w.T @ w / sigma**2)
    cfg = RunConfig.from_dict(
        {"model": {"hidden": [], "latent_dim": d, "likelihood": "gaussian", "sigma": sigma}}
    )
    model = build_vae(cfg, (p,)).double()
    with torch.no_grad():
        enc, dec = model.encoder.net[0], model.decoder.net[0]
        enc.weight.zero_()
        enc.weight[:d] = s @ w.T / sigma**2
        enc.bias[:d] = -(s @ w.T @ b) / sigma**2
        enc.bias[d:] = torch.log(torch.diagonal(s))
        dec.weight.copy_(w)
        dec.bias.copy_(b)
    marginal = D.MultivariateNormal(b, w @ w.T + sigma**2 * torch.eye(p, dtype=torch.float64))
    return model, marginal


def test_iwae_and_elbo_are_exact_with_the_true_posterior():
    model, marginal = linear_gaussian_vae()
    x = marginal.sample(torch.Size([2000]))
    true_nll = -marginal.log_prob(x).mean().item()
    # every importance weight equals p(x) when q is the exact posterior: the estimate is exact
    assert iwae_nll(model, x, k=1) == pytest.approx(true_nll, abs=1e-6)
    assert iwae_nll(model, x, k=7, chunk=5) == pytest.approx(true_nll, abs=1e-6)
    # the one-sample -ELBO equals -log p(x) in expectation
    assert evaluate(model, x, batch_size=500).elbo == pytest.approx(true_nll, abs=0.05)


def test_iwae_tightens_with_k_and_bounds_the_elbo_for_a_wrong_posterior():
    model, marginal = linear_gaussian_vae(seed=1)
    with torch.no_grad():
        model.encoder.net[0].bias[:2] += 0.7  # shift the posterior mean: q is no longer exact
        model.encoder.net[0].bias[2:] += 0.5
    x = marginal.sample(torch.Size([3000]))
    true_nll = -marginal.log_prob(x).mean().item()
    elbo = evaluate(model, x, batch_size=1000).elbo
    nll = {k: iwae_nll(model, x, k=k, seed=3) for k in (1, 5, 50, 500)}
    # -ELBO >= NLL_k1 ~ -ELBO, then non-increasing in k and never below the true NLL
    assert nll[1] == pytest.approx(elbo, abs=0.1)
    assert elbo > true_nll + 0.2
    assert nll[1] > nll[5] > nll[50] > nll[500] >= true_nll - 1e-3
    assert nll[500] - true_nll < 0.25 * (nll[1] - true_nll)
    # splitting the 50 samples into passes of 7 (chunk < k) or taking 2 points a pass
    # (chunk 120) is still the 50-sample bound, not a mean of 7-sample ones (1 nat looser
    # here), and with the same samples the same number
    for chunk in (7, 120):
        assert iwae_nll(model, x, k=50, chunk=chunk, seed=3) == pytest.approx(nll[50], rel=1e-12)
    assert iwae_nll(model, x, k=7, seed=3) > nll[50] + 0.5


def direct_iwae_nll(model, x: torch.Tensor, k: int, seed: int) -> float:
    """The bound in one pass over all examples and samples, log q from torch.distributions, in
    float64: example i's noise is the i-th (k, D) draw of a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.stack([torch.randn((k, model.latent_dim), generator=g) for _ in range(len(x))], dim=1)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        sd = torch.exp(0.5 * logvar)
        z = mu + sd * eps  # (k, n, D)
        log_px = model.likelihood.log_prob(x, model.decode(z, x)).double()
        log_pz = D.Normal(0.0, 1.0).log_prob(z.double()).sum(-1)
        log_q = D.Normal(mu.double(), sd.double()).log_prob(z.double()).sum(-1)
        log_w = log_px + log_pz - log_q
    return -float((torch.logsumexp(log_w, 0) - math.log(k)).mean())


@pytest.mark.parametrize("k", [1, 50, 500])
def test_the_iwae_bound_is_the_same_for_every_chunk(k):
    # the MNIST model's size (784-400-z MLP, Bernoulli), untrained, on random binary images
    torch.manual_seed(0)
    cfg = RunConfig.from_dict({"model": {"arch": "mlp", "hidden": [400], "latent_dim": 8,
                                         "likelihood": "bernoulli"}})
    model = build_vae(cfg, (1, 28, 28))
    x = (torch.rand(23, 1, 28, 28, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    direct = direct_iwae_nll(model, x, k, seed=4)
    # samples split (7 or k - 1 rows a pass), one example a pass (k, k + 1 rows), several
    # (3k + 1 rows, or 7 at k = 1), all at once
    for chunk in sorted({7, max(1, k - 1), k, k + 1, 3 * k + 1, 10**7}):
        assert iwae_nll(model, x, k=k, chunk=chunk, seed=4) == pytest.approx(direct, rel=1e-6), chunk
    # another seed draws other samples (the check above is not vacuous)
    assert iwae_nll(model, x, k=k, seed=5) != pytest.approx(direct, rel=1e-6)


@pytest.mark.parametrize("shape,likelihood", [((1, 28, 28), "bernoulli"), ((12,), "gaussian")])
def test_the_default_chunk_keeps_a_pass_within_the_memory_budget(shape, likelihood):
    cfg = RunConfig.from_dict({"model": {"arch": "mlp", "hidden": [16], "latent_dim": 3, "likelihood": likelihood}})
    model = build_vae(cfg, shape)
    x = torch.rand(2, *shape)
    rows = iwae_chunk_for(model, x)
    with torch.no_grad():
        out = model.decode(torch.zeros(rows, 3))  # what one pass of `rows` rows decodes
    per_row = out[0].numel() * out.element_size()
    assert out.numel() * out.element_size() <= IWAE_PASS_BYTES["cpu"] < (rows + 1) * per_row
    # and the bound is the one of an explicit chunk
    assert iwae_nll(model, x, k=5, seed=1) == pytest.approx(iwae_nll(model, x, k=5, chunk=3, seed=1), rel=1e-6)


def test_active_units_of_a_hand_built_encoder():
    n = 1000
    x = torch.randn(n, 4, dtype=torch.float64)
    x = (x - x.mean(0)) / x.std(0, unbiased=False)  # exactly unit (biased) variance per column
    scales = torch.tensor([0.0, 0.05, 0.2, 1.0], dtype=torch.float64)
    count, var = active_units(x * scales, threshold=0.01)
    # A_d = s_d^2: 0, 0.0025, 0.04, 1 -> two units above 0.01
    torch.testing.assert_close(var, scales**2)
    assert count == 2
    assert active_units(x * scales, threshold=0.001)[0] == 3
    # strictly above: a unit whose variance is the threshold exactly (in binary) is inactive
    exact = torch.tensor([[-0.5, 1.0], [0.5, -1.0]], dtype=torch.float64)  # variances 0.25, 1
    assert active_units(exact, threshold=0.25)[0] == 1


def test_mutual_information_of_a_gaussian_channel():
    # z = x + noise, x ~ N(0, I_2), noise ~ N(0, I): I(x; z) = D/2 log(1 + 1/sigma^2) = log 2
    torch.manual_seed(0)
    mi = []
    for _ in range(20):
        mu = torch.randn(1000, 2, dtype=torch.float64)
        logvar = torch.zeros_like(mu)
        z = mu + torch.randn_like(mu)
        mi.append(mutual_info_batch(mu, logvar, z).item())
    assert sum(mi) / len(mi) == pytest.approx(math.log(2.0), abs=0.03)
    # an encoder that ignores x carries no information (up to the sampling noise of E[log q(z)])
    mu = torch.zeros(1000, 2, dtype=torch.float64)
    z = torch.randn_like(mu)
    assert mutual_info_batch(mu, torch.zeros_like(mu), z).item() == pytest.approx(0.0, abs=0.1)


def test_evaluate_is_deterministic_and_leaves_the_training_stream_alone():
    model, marginal = linear_gaussian_vae()
    x = marginal.sample(torch.Size([300]))
    torch.manual_seed(7)
    a = evaluate(model, x, batch_size=100, seed=1)
    after = torch.rand(1)
    torch.manual_seed(7)
    b = evaluate(model, x, batch_size=100, seed=1)
    assert a == b
    assert torch.equal(after, torch.rand(1))
    assert len(a.kl_per_dim) == 2 and a.active_units == 2
