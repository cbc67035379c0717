"""Priors and Gaussian densities against closed forms, brute force and torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from vae_search.model.gaussian import kl_normal, log_mixture, log_normal
from vae_search.model.priors import MoGPrior, StandardPrior, VampPrior


def test_closed_form_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4) * 0.5
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, 3, 4)
    mc = (log_normal(z, mu, logvar) - log_normal(z, torch.zeros(()), torch.zeros(()))).mean(0)
    # closed form KL(N(mu, s^2) || N(0, 1)) per dimension vs its Monte Carlo estimate
    torch.testing.assert_close(kl_normal(mu, logvar), mc, atol=0.02, rtol=0.02)


def test_kl_normal_to_general_gaussian_matches_torch():
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    m, v = torch.randn(3), torch.rand(3) + 0.1
    ref = D.kl_divergence(D.Normal(mu, torch.exp(0.5 * logvar)), D.Normal(m, v.sqrt()))
    torch.testing.assert_close(kl_normal(mu, logvar, m, v), ref)


def test_log_mixture_matches_brute_force_loop():
    torch.manual_seed(1)
    k, d = 4, 3
    log_w = torch.randn(k).log_softmax(-1).double()
    mu, logvar = torch.randn(k, d).double(), torch.randn(k, d).double()
    z = torch.randn(6, d).double()
    got = log_mixture(z, log_w, mu, logvar)
    for i in range(z.shape[0]):
        # p(z) = sum_k w_k prod_d N(z_d; mu_kd, var_kd): joint over d first, then over k
        total = 0.0
        for c in range(k):
            dens = math.exp(log_w[c])
            for j in range(d):
                var = math.exp(logvar[c, j])
                dens *= math.exp(-((z[i, j] - mu[c, j]) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)
            total += dens
        assert got[i].item() == pytest.approx(math.log(total), rel=1e-9)


def test_mog_log_prob_matches_torch_distributions():
    torch.manual_seed(2)
    prior = MoGPrior(latent_dim=5, components=7)
    with torch.no_grad():
        prior.logits.normal_()
        prior.log_scales.normal_(0, 0.3)
    ref = D.MixtureSameFamily(
        D.Categorical(logits=prior.logits),
        D.Independent(D.Normal(prior.means, prior.log_scales.exp()), 1),
    )
    z = torch.randn(10, 5) * 2
    torch.testing.assert_close(prior.log_prob(z), ref.log_prob(z), atol=1e-4, rtol=1e-5)


def test_one_component_at_standard_normal_equals_standard_prior():
    mog = MoGPrior(latent_dim=6, components=1)
    with torch.no_grad():
        mog.means.zero_()
        mog.log_scales.zero_()
    z = torch.randn(20, 6) * 3
    torch.testing.assert_close(mog.log_prob(z), StandardPrior(6).log_prob(z), atol=1e-5, rtol=1e-6)
    # and log p(z) keeps the -1/2 log(2 pi) per dimension: the density at 0 is (2 pi)^(-D/2)
    assert StandardPrior(6).log_prob(torch.zeros(6)).item() == pytest.approx(-3 * math.log(2 * math.pi))


def test_vamp_prior_is_the_mean_of_encoded_pseudo_inputs():
    torch.manual_seed(3)
    enc = torch.nn.Linear(8, 4)

    def encode(x):
        mu, logvar = enc(x).chunk(2, -1)
        return mu, logvar

    prior = VampPrior(latent_dim=2, components=5, shape=(8,), encode=encode, clamp=True)
    z = torch.randn(7, 2)
    mu, logvar = encode(prior.pseudo_inputs.clamp(0, 1))
    ref = torch.stack([log_normal(z, mu[k], logvar[k]).sum(-1) for k in range(5)]).logsumexp(0) - math.log(5)
    torch.testing.assert_close(prior.log_prob(z), ref)


@pytest.mark.parametrize("prior", [StandardPrior(3), MoGPrior(3, 4)])
def test_marginal_moments_match_samples(prior):
    torch.manual_seed(4)
    with torch.no_grad():
        if isinstance(prior, MoGPrior):
            prior.means.mul_(2)
    z = prior.sample(400_000, generator=torch.Generator().manual_seed(0))
    mean, var = prior.marginal_moments()
    torch.testing.assert_close(z.mean(0), mean.detach(), atol=0.02, rtol=0)
    torch.testing.assert_close(z.var(0), var.detach(), atol=0.05, rtol=0.02)


def test_mixture_kl_is_monte_carlo_and_standard_kl_splits_per_dimension():
    torch.manual_seed(5)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3) * 0.3
    std = StandardPrior(3)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(4, 3)
    assert std.kl_terms(mu, logvar, z).shape == (4, 3)
    # per-dimension diagnostic of the standard prior is exactly the closed-form KL
    torch.testing.assert_close(std.kl_per_dim(mu, logvar), std.kl_terms(mu, logvar, z))
    assert MoGPrior(3, 2).kl_terms(mu, logvar, z).shape == (4, 1)  # one group for a mixture
    # a one-component MoG at N(0, I): its one-sample KL is unbiased for the closed form
    mog = MoGPrior(3, 1)
    with torch.no_grad():
        mog.means.zero_()
        mog.log_scales.zero_()
    many = mu + torch.exp(0.5 * logvar) * torch.randn(100_000, 4, 3)
    mc = mog.kl_terms(mu.expand_as(many), logvar.expand_as(many), many)[..., 0].mean(0)
    torch.testing.assert_close(mc, kl_normal(mu, logvar).sum(-1), atol=0.02, rtol=0.0)


def _mixture_fp64(z, log_w, mu, logvar):
    """Reference log p(z) of a diagonal-Gaussian mixture from torch.distributions, in float64."""
    mix = D.MixtureSameFamily(
        D.Categorical(logits=log_w.double()),
        D.Independent(D.Normal(mu.double(), torch.exp(0.5 * logvar.double())), 1),
    )
    return mix.log_prob(z.double())


@pytest.mark.parametrize(
    "logvar, autocast",
    [(-12.0, False), (-8.0, False), (-4.0, True), (-2.0, True)],
    ids=["fp32-v=e^-12", "fp32-v=e^-8", "bf16-v=e^-4", "bf16-v=e^-2"],
)
def test_log_mixture_keeps_true_nats_with_sharp_components(logvar, autocast):
    # sharp components far from 0, z near them: the expanded quadratic form's terms are
    # ~1e7 times its value, as with a VampPrior or the batch posteriors of the MI estimate
    torch.manual_seed(6)
    k, d = 50, 32
    mu = 3.0 * torch.randn(k, d)
    lv = torch.full((k, d), logvar) + 0.1 * torch.randn(k, d)
    log_w = torch.randn(k).log_softmax(-1)
    z = mu[torch.randint(k, (256,))] + torch.exp(0.5 * lv[:1]) * torch.randn(256, d)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):  # what amp does on CUDA
        got = log_mixture(z, log_w, mu, lv)
    assert got.dtype == torch.float32
    # within a thousandth of a nat of the float64 reference (before: up to 7 nats off)
    assert (got.double() - _mixture_fp64(z, log_w, mu, lv)).abs().max().item() < 1e-3


def test_vamp_pseudo_inputs_are_clamped_to_the_unit_interval():
    torch.manual_seed(7)
    enc = torch.nn.Linear(4, 4)

    def encode(x):
        return enc(x).chunk(2, -1)

    prior = VampPrior(latent_dim=2, components=3, shape=(4,), encode=encode, clamp=True)
    with torch.no_grad():  # pseudo-inputs pushed outside [0, 1]
        prior.pseudo_inputs.copy_(torch.tensor([[-1.0, 2.0, 0.5, 0.3]] * 3))
    z = torch.randn(5, 2)
    ref = VampPrior(latent_dim=2, components=3, shape=(4,), encode=encode, clamp=False)
    with torch.no_grad():
        ref.pseudo_inputs.copy_(torch.tensor([[0.0, 1.0, 0.5, 0.3]] * 3))
    # the density is that of the pseudo-inputs clipped to [0, 1] (Hardtanh(0, 1) in the paper)
    torch.testing.assert_close(prior.log_prob(z), ref.log_prob(z))
    prior.log_prob(z).sum().backward()
    grad = prior.pseudo_inputs.grad
    # and no gradient reaches the coordinates held at the bounds
    assert torch.all(grad[:, :2] == 0) and torch.any(grad[:, 2:] != 0)
