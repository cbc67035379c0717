"""The examples a user copies from: the own-training-loop example runs with plain Optuna and
vae-search's collapse measures and pruner, and prunes exactly the trials the rule names."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import optuna
import torch

EXAMPLES = Path(__file__).parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_own_loop_prunes_collapsed_trials_by_the_rule():
    own = load("own_loop")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = own.run(n_trials=3, epochs=4)
    states = {t.state for t in study.trials}
    assert optuna.trial.TrialState.PRUNED in states and optuna.trial.TrialState.COMPLETE in states
    for t in study.trials:
        au = t.user_attrs["active_units"]
        # the rule by hand: pruned at the first epoch after the warm-up (2) with 0 active units
        first = next((e for e, a in enumerate(au, 1) if e > 2 and a < 1), None)
        if t.state == optuna.trial.TrialState.PRUNED:
            assert first == len(au)
        else:
            assert first is None and len(au) == 4


def test_the_library_functions_the_example_uses_match_a_brute_force_count():
    import vae_search

    mu = torch.tensor([[0.0, 1.0, 0.0], [0.0, -1.0, 0.15], [0.0, 1.0, -0.15]])
    logvar = torch.zeros(3, 3)
    count, var = vae_search.active_units(mu)
    # biased variances by hand: 0, 8/9, 0.015 -> dimensions 2 and 3 are above 0.01
    assert count == 2 and torch.allclose(var, torch.tensor([0.0, 8 / 9, 0.015]), atol=1e-6)
    # KL to N(0, 1) with unit variance is mu^2 / 2, averaged over the batch
    assert torch.allclose(vae_search.kl_per_dimension(mu, logvar), (mu**2 / 2).mean(0))
