"""Keep your own training loop; use vae-search's collapse measures and pruner from plain Optuna.

Plain PyTorch (a small MLP VAE on synthetic binary data), plain ``optuna.create_study``, and
three names from vae-search's library API:

- :func:`vae_search.active_units` (Burda et al. 2016: dimensions whose posterior mean varies
  over the data by more than δ = 0.01) and :func:`vae_search.kl_per_dimension` (closed-form KL
  of each dimension to N(0, 1)), measured on held-out data after every epoch;
- :class:`vae_search.CollapsePruner`, which reads two user attributes of the trial: its
  ``latent_dim`` and the per-epoch ``active_units`` list, and prunes a trial whose active units
  stay below ``min_active_units`` for ``patience`` epochs after ``warmup_epochs``.

Run it: ``python examples/own_loop.py`` (about a minute on a laptop CPU). A large β makes the
posterior collapse to the prior; those trials are pruned after the warm-up.
"""

from __future__ import annotations

import math

import optuna
import torch
from torch import nn

import vae_search

LATENT = 6


def synthetic_data(n: int, seed: int = 0) -> torch.Tensor:
    """Binary vectors of 64 pixels: 8 random prototypes with 5% of bits flipped."""
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(8, 64, generator=g) < 0.5).float()
    x = protos[torch.randint(8, (n,), generator=g)]
    flip = torch.rand(x.shape, generator=g) < 0.05
    return torch.where(flip, 1 - x, x)


class VAE(nn.Module):
    def __init__(self, hidden: int, latent: int = LATENT):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 64))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x).chunk(2, dim=-1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.dec(z), mu, logvar


def loss_terms(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    logits, mu, logvar = model(x)
    recon = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1).mean()
    kl = vae_search.kl_per_dimension(mu, logvar).sum()
    return recon, kl, mu, logvar


def objective(trial: optuna.Trial, train_x: torch.Tensor, val_x: torch.Tensor, epochs: int) -> float:
    beta = trial.suggest_float("beta", 0.5, 100.0, log=True)
    hidden = trial.suggest_categorical("hidden", [32, 64])
    torch.manual_seed(trial.number)
    model = VAE(hidden)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    trial.set_user_attr("latent_dim", LATENT)  # what the CollapsePruner's threshold reads
    history: list[int] = []
    elbo = math.inf
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in train_x[torch.randperm(len(train_x))].split(64):
            recon, kl, _, _ = loss_terms(model, batch)
            opt.zero_grad()
            (recon + beta * kl).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            recon, kl, mu, logvar = loss_terms(model, val_x)
            au, _ = vae_search.active_units(mu)
        elbo = float(recon + kl)  # -ELBO at β = 1: comparable across β
        history.append(au)
        trial.set_user_attr("active_units", history)  # the whole history, every epoch
        trial.set_user_attr("kl_per_dim", vae_search.kl_per_dimension(mu, logvar).tolist())
        trial.report(elbo, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"epoch {epoch}: {au}/{LATENT} active units")
    return elbo


def run(n_trials: int = 8, epochs: int = 6, seed: int = 0) -> optuna.Study:
    """The whole search: a TPE study whose pruner is vae-search's collapse rule."""
    data = synthetic_data(2400, seed)
    train_x, val_x = data[:2000], data[2000:]
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=vae_search.CollapsePruner(min_active_units=1, patience=1, warmup_epochs=2),
    )
    # two known ends first: β = 1 keeps the latents in use, β = 60 collapses them to the prior
    study.enqueue_trial({"beta": 1.0, "hidden": 64})
    study.enqueue_trial({"beta": 60.0, "hidden": 64})
    study.optimize(lambda t: objective(t, train_x, val_x, epochs), n_trials=n_trials)
    return study


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = run()
    for t in study.trials:
        print(f"trial {t.number}: {t.state.name:8} beta={t.params['beta']:.2f} "
              f"active units {t.user_attrs['active_units']} value {t.value}")
    print("best:", study.best_trial.params, round(study.best_value, 2))
