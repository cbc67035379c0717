"""The training loss: -log p(x|z) + β KL, with free bits, against a sum written out by hand."""

from __future__ import annotations

import pytest
import torch

from vae_search.model.vae import VAEOutput, vae_loss


def output(kl_terms: torch.Tensor, latent_dim: int) -> VAEOutput:
    b = kl_terms.shape[0]
    return VAEOutput(
        out=torch.zeros(b, 1), mu=torch.zeros(b, latent_dim), logvar=torch.zeros(b, latent_dim),
        z=torch.zeros(b, latent_dim), log_px=torch.tensor([-3.0, -5.0, -4.0])[:b],
        kl_terms=kl_terms,
    )


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_free_bits_floor_each_dimension_of_a_factorised_kl(beta):
    # per-dimension KL averaged over the batch: 0.05, 0.6, 0.2, 1.5 nats
    kl = torch.tensor([[0.0, 0.6, 0.1, 1.0], [0.1, 0.6, 0.3, 2.0], [0.05, 0.6, 0.2, 1.5]], requires_grad=True)
    lam = 0.25
    loss = vae_loss(output(kl, 4), beta, free_bits=lam)
    # Kingma et al. (2016), eq. 15: recon + β Σ_j max(λ, E_batch KL_j), written out
    by_hand = 4.0 + beta * (max(lam, 0.05) + max(lam, 0.6) + max(lam, 0.2) + max(lam, 1.5))
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    loss.backward()
    # dimensions under the floor get no gradient; the others get β / B per example
    torch.testing.assert_close(kl.grad[:, [0, 2]], torch.zeros(3, 2))
    torch.testing.assert_close(kl.grad[:, [1, 3]], torch.full((3, 2), beta / 3))
    # without free bits it is the plain β-weighted ELBO
    assert vae_loss(output(kl, 4), beta).item() == pytest.approx(4.0 + beta * 2.35, rel=1e-6)


def test_free_bits_of_a_mixture_prior_floor_its_one_group_at_lambda_times_the_latent_size():
    kl = torch.tensor([[1.0], [1.4], [1.3]], requires_grad=True)  # mean 1.233 nats, 8 latents
    loss = vae_loss(output(kl, 8), 1.0, free_bits=0.25)
    # one group of λ D = 2 nats: the floor holds, and no gradient flows to the KL
    assert loss.item() == pytest.approx(4.0 + 2.0, rel=1e-6)
    loss.backward()
    assert torch.all(kl.grad == 0)
    assert vae_loss(output(kl, 4), 1.0, free_bits=0.25).item() == pytest.approx(4.0 + 1.2333, rel=1e-4)
