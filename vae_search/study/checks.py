"""Specs that cannot do what they say: refused or warned about when the file is loaded.

Refused (:func:`refusals`, part of the spec's one :class:`~vae_search.errors.ConfigError`):

- an empty ``space:``: there is nothing to search (``vae-search train`` runs one config);
- a searched parameter that can never take effect: ``prior.components`` while no trial can
  have a mixture prior (``mog`` or ``vamp``).

Warned (:func:`warnings_for`, logged by the command that loads the spec): a pruner that can
never stop a trial before its last epoch, so it costs reports and saves nothing:

- collapse: ``warmup_epochs + patience >= epochs``; its first prune would be at epoch
  ``warmup_epochs + patience``, and after the last epoch nothing is left to save;
- a performance pruner (median, percentile, patient) with ``n_warmup_steps >= epochs``
  (Optuna prunes from step ``n_warmup_steps`` on, the steps being epochs), or with
  ``n_startup_trials >= n_trials`` (it waits for that many finished trials, and the budget is
  spent first).
"""

from __future__ import annotations

from typing import Any

from vae_search.config import RunConfig
from vae_search.study import space as _space
from vae_search.study.pruning import PrunerSpec

MIXTURES = ("mog", "vamp")
# performance pruners whose options are Optuna's percentile-pruner warm-up and start-up
_PERCENTILE_LIKE = ("median", "percentile", "patient")


def refusals(run: RunConfig | None, params: list[_space.Param], space_raw: Any) -> list[str]:
    """Problems that make the spec unusable (see the module docstring)."""
    out = []
    if space_raw is None or space_raw == {}:
        out.append(
            "space: empty; list at least one run-config path to search, e.g. schedule.beta: "
            "{type: float, low: 0.1, high: 10.0, log: true} (to train one config: vae-search train)"
        )
    by_key = {p.key: p for p in params}
    components = by_key.get("prior.components")
    if components is not None and run is not None:
        kinds = _possible_kinds(run, by_key.get("prior.kind"), components)
        if not set(kinds) & set(MIXTURES):
            out.append(
                f"space.prior.components: never takes effect, as every trial's prior is "
                f"{'/'.join(kinds) or 'none'} (components only matter for mog and vamp); add mog "
                "or vamp to prior.kind's choices, or drop prior.components from the space"
            )
    return out


def _possible_kinds(run: RunConfig, kind: _space.Param | None, components: _space.Param) -> list[str]:
    """The prior kinds a trial that samples ``prior.components`` can have."""
    if not isinstance(kind, _space.CategoricalParam):
        return [run.prior.kind]
    allowed = components.when.get("prior.kind")
    return [c for c in kind.choices if allowed is None or c in allowed]


def warnings_for(pruner: PrunerSpec, epochs: int, n_trials: int | None) -> list[str]:
    """Pruners that cannot fire within the run's epochs or the budget (one line each)."""
    out = []
    c = pruner.collapse
    if c.enabled and c.warmup_epochs + c.patience >= epochs:
        out.append(
            f"pruner.collapse: warmup_epochs {c.warmup_epochs} + patience {c.patience} >= "
            f"run.epochs {epochs}, so it can never stop a trial before its last epoch; lower "
            f"them to a sum below {epochs} (or raise epochs)"
        )
    perf = pruner.performance
    if perf.kind in _PERCENTILE_LIKE:
        warm = perf.options.get("n_warmup_steps", 0)
        if warm >= epochs:
            out.append(
                f"pruner.performance: n_warmup_steps {warm} >= run.epochs {epochs}, so the "
                f"{perf.kind} pruner can never stop a trial early; lower it below {epochs}"
            )
        startup = perf.options.get("n_startup_trials", 5)
        if n_trials is not None and startup >= n_trials:
            out.append(
                f"pruner.performance: n_startup_trials {startup} >= n_trials {n_trials}, so the "
                f"{perf.kind} pruner waits for more finished trials than the budget has; lower it"
            )
    return out
