"""The model: networks, likelihoods, priors and the VAE that ties them together."""

from vae_search.model.priors import MoGPrior, Prior, StandardPrior, VampPrior, build_prior
from vae_search.model.vae import VAE, VAEOutput, build_vae, n_params, vae_loss

__all__ = [
    "VAE",
    "MoGPrior",
    "Prior",
    "StandardPrior",
    "VAEOutput",
    "VampPrior",
    "build_prior",
    "build_vae",
    "n_params",
    "vae_loss",
]
