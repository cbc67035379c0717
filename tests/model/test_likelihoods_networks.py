"""Likelihoods against torch's own losses; networks give data-shaped outputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import distributions as D

from vae_search.config import RunConfig
from vae_search.model import build_vae
from vae_search.model.likelihoods import Bernoulli, Gaussian


def test_bernoulli_is_minus_bce_with_logits():
    x = torch.bernoulli(torch.rand(5, 1, 4, 4))
    logits = torch.randn(5, 1, 4, 4) * 5
    ref = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(Bernoulli(3).log_prob(x, logits), ref)


def test_bernoulli_stays_finite_for_extreme_logits():
    x = torch.tensor([[1.0, 0.0]])
    assert torch.isfinite(Bernoulli(1).log_prob(x, torch.tensor([[-200.0, 200.0]]))).all()


def test_gaussian_matches_torch_normal():
    x, mean = torch.randn(3, 6), torch.randn(3, 6)
    lik = Gaussian(1, sigma=0.3, learn_sigma=True)
    torch.testing.assert_close(lik.log_prob(x, mean), D.Normal(mean, 0.3).log_prob(x).sum(-1))
    assert any(p is lik.log_sigma for p in lik.parameters())
    assert not list(Gaussian(1, sigma=0.3, learn_sigma=False).parameters())


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 13, 17)])
def test_decoder_output_has_the_data_shape(arch, shape):
    cfg = RunConfig.from_dict({"model": {"arch": arch, "latent_dim": 3}})
    model = build_vae(cfg, shape)
    x = torch.rand(2, *shape)
    assert model(x).out.shape == x.shape
    assert model.log_importance_weights(x, 4).shape == (4, 2)


def test_empty_hidden_list_is_a_linear_vae():
    cfg = RunConfig.from_dict({"model": {"hidden": [], "latent_dim": 2}})
    model = build_vae(cfg, (5,))
    assert [type(m).__name__ for m in model.encoder.net] == ["Linear"]
    assert [type(m).__name__ for m in model.decoder.net] == ["Linear"]


@pytest.mark.parametrize("prior", ["standard", "vamp"])
def test_densities_stay_float32_under_bfloat16_autocast(prior):
    # what amp: true does on CUDA, on the CPU: the networks run in bfloat16, the densities not
    cfg = RunConfig.from_dict({"model": {"hidden": [32], "latent_dim": 4},
                               "prior": {"kind": prior, "components": 3}})
    torch.manual_seed(0)
    model = build_vae(cfg, (12,))
    x = torch.rand(16, 12).bernoulli()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, generator=torch.Generator().manual_seed(1))
    for name in ("mu", "logvar", "z", "out", "log_px", "kl_terms"):
        assert getattr(out, name).dtype == torch.float32, name
    # and a float64 model stays float64 (the exactness tests rely on it)
    assert model.double()(x.double()).log_px.dtype == torch.float64
