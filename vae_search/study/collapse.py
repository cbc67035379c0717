"""The collapse rule: when a trial counts as collapsed, the pruner that stops it, the constraint.

Contract with the objective, once per epoch ``e`` (1-based)::

    records.write(trial, "latent_dim", D)                    # once
    records.write(trial, "active_units", [au_1, ..., au_e])  # the whole history, ints
    # (read through vae_search.records: the pruner may be handed a view whose system attrs
    # carry the live list; a trial of an older study has both as user attributes)
    trial.report(value, e)
    if trial.should_prune():
        reason = prune_reason(study.pruner, study, frozen_trial)   # "collapse" | "performance" | None

Collapse rule (:class:`CollapsePruner`):

* threshold ``t = max(min_active_units, min_active_fraction * latent_dim)`` over the settings that
  are not null (a fraction without a known ``latent_dim`` is ignored);
* epoch ``e`` is *collapsed* when its active-unit count is strictly below ``t`` (``au < t``; an
  count equal to ``t`` is healthy), so ``min_active_units: 1`` means "prune at zero active units";
* epochs ``1 .. warmup_epochs`` never count;
* the trial is pruned at epoch ``e`` when epochs ``e - patience + 1 .. e`` are all collapsed and all
  after the warm-up. With warmup 2 and patience 2: collapsed at epochs 3 and 4 prunes at epoch 4
  (not 3); a recovery at epoch 4 resets the count.

The pruner also defers to a wrapped performance pruner (median, percentile, ...): it prunes when
either says so. Optuna's samplers filter trials by Hyperband bracket only when
``isinstance(study.pruner, HyperbandPruner)``, so with ``performance.kind: hyperband`` the pruner
is a :class:`CollapseHyperbandPruner`, a subclass of both.

Constraint: with ``pruner.constraint: true`` the objective calls
:func:`record_collapse_constraint` once, just before it returns or raises ``TrialPruned``, with
the last epoch's count. The value ``threshold - active_units`` is > 0 exactly when collapsed; it
is stored with Optuna 5's ``Trial.set_constraint`` (system attribute ``constraints:collapse``),
which TPE, GP and NSGA-II read natively and ``Study.best_trial`` honours.
"""

from __future__ import annotations

from typing import Any, Literal

import optuna
from optuna.pruners import (
    BasePruner,
    HyperbandPruner,
)
from optuna.trial import FrozenTrial

from vae_search import records

COLLAPSE_CONSTRAINT = "collapse"
Reason = Literal["collapse", "performance"]


def collapse_threshold(
    latent_dim: int | None, min_active_units: int | None, min_active_fraction: float | None
) -> float:
    """``max`` of ``min_active_units`` and ``min_active_fraction * latent_dim`` (those set)."""
    parts = [float(min_active_units or 0)]
    if min_active_fraction is not None and latent_dim is not None:
        parts.append(min_active_fraction * latent_dim)
    return max(parts)


def collapse_constraint(active_units: int, threshold: float) -> float:
    """Optuna constraint value: ``threshold - active_units``; > 0 (infeasible) iff collapsed."""
    return float(threshold) - float(active_units)


def record_collapse_constraint(trial: optuna.Trial, active_units: int, threshold: float) -> float:
    """Store the collapse constraint on a live trial (``Trial.set_constraint``); call it once."""
    value = collapse_constraint(active_units, threshold)
    trial.set_constraint(COLLAPSE_CONSTRAINT, value)
    return value


def constraints_func(trial: FrozenTrial) -> list[float]:
    """The recorded collapse constraint as a one-element list (0.0, feasible, if none was set).

    Not handed to samplers (Optuna 5 deprecates ``constraints_func`` and reads
    ``Trial.set_constraint`` values itself); kept for reports and pre-5 style callers.
    """
    return [float(trial.constraints.get(COLLAPSE_CONSTRAINT, 0.0))]


class CollapsePruner(BasePruner):
    """Prune trials whose active units stay below a threshold (see the module docstring).

    Args:
        min_active_units: healthy trials keep at least this many active units (null: unused).
        min_active_fraction: ... or this share of ``latent_dim`` (null: unused).
        patience: consecutive collapsed epochs (after the warm-up) that trigger pruning, >= 1.
        warmup_epochs: leading epochs that never count, >= 0.
        wrapped: a performance pruner consulted as well (None: collapse only).
    """

    def __init__(
        self,
        min_active_units: int | None = 1,
        min_active_fraction: float | None = None,
        patience: int = 2,
        warmup_epochs: int = 2,
        wrapped: BasePruner | None = None,
    ) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1, but got {patience=}.")
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, but got {warmup_epochs=}.")
        if min_active_units is not None and min_active_units < 0:
            raise ValueError(f"min_active_units must be >= 0, but got {min_active_units=}.")
        if min_active_fraction is not None and not 0.0 <= min_active_fraction <= 1.0:
            raise ValueError(f"min_active_fraction must be in [0, 1], got {min_active_fraction=}.")
        self._collapse_min_units = min_active_units
        self._collapse_min_fraction = min_active_fraction
        self._collapse_patience = patience
        self._collapse_warmup = warmup_epochs
        self._wrapped = wrapped
        self._verdicts: dict[tuple[str, int], tuple[int | None, Reason]] = {}

    @property
    def collapse_settings(self) -> dict[str, Any]:
        """The rule as given: ``min_active_units``, ``min_active_fraction``, ``patience``,
        ``warmup_epochs`` (what a trial's note quotes)."""
        return {
            "min_active_units": self._collapse_min_units,
            "min_active_fraction": self._collapse_min_fraction,
            "patience": self._collapse_patience,
            "warmup_epochs": self._collapse_warmup,
        }

    def threshold(self, latent_dim: int | None) -> float:
        """Active units strictly below this count as collapsed."""
        return collapse_threshold(latent_dim, self._collapse_min_units, self._collapse_min_fraction)

    def is_collapsed(self, trial: FrozenTrial) -> bool:
        """Whether the collapse rule prunes ``trial`` at its latest epoch."""
        history = records.record(trial, records.ACTIVE_UNITS)
        if not isinstance(history, list) or not history:
            return False
        epoch, patience = len(history), self._collapse_patience
        if epoch - patience < self._collapse_warmup:  # the window must lie after the warm-up
            return False
        threshold = self.threshold(records.latent_dim(trial))
        return all(au < threshold for au in history[-patience:])

    def performance_prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """The wrapped pruner's verdict (False without one)."""
        return self._wrapped is not None and bool(self._wrapped.prune(study, trial))

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        reason = self._decide(study, trial)
        if reason is not None:
            self._verdicts[(study.study_name, trial.number)] = (trial.last_step, reason)
        return reason is not None

    def reason(self, study: optuna.Study, trial: FrozenTrial) -> Reason | None:
        """Why :meth:`prune` pruned ``trial`` at its latest step: ``"collapse"`` (the collapse
        rule holds) or ``"performance"`` (the wrapped pruner said so); None if not pruned.

        The verdict of the ``prune`` call is remembered, because pruners such as Hyperband
        record rung values on the trial and would not decide the same way twice.
        """
        step, reason = self._verdicts.get((study.study_name, trial.number), (None, None))
        if reason is not None and step == trial.last_step:
            return reason
        return self._decide(study, trial)

    def _decide(self, study: optuna.Study, trial: FrozenTrial) -> Reason | None:
        if self.is_collapsed(trial):
            return "collapse"
        return "performance" if self.performance_prune(study, trial) else None


class CollapseHyperbandPruner(CollapsePruner, HyperbandPruner):
    """Collapse rule + Hyperband in one object, so ``isinstance(p, HyperbandPruner)`` holds and
    Optuna's samplers keep filtering trials by bracket. Hyperband arguments as in Optuna."""

    def __init__(
        self,
        min_active_units: int | None = 1,
        min_active_fraction: float | None = None,
        patience: int = 2,
        warmup_epochs: int = 2,
        *,
        min_resource: int = 1,
        max_resource: str | int = "auto",
        reduction_factor: int = 3,
        bootstrap_count: int = 0,
    ) -> None:
        HyperbandPruner.__init__(
            self, min_resource, max_resource, reduction_factor, bootstrap_count
        )
        CollapsePruner.__init__(
            self, min_active_units, min_active_fraction, patience, warmup_epochs, None
        )

    def performance_prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return bool(HyperbandPruner.prune(self, study, trial))


def prune_reason(pruner: BasePruner, study: optuna.Study, trial: FrozenTrial) -> Reason | None:
    """Why ``pruner`` prunes ``trial``; None for a plain Optuna pruner (then: performance)."""
    return pruner.reason(study, trial) if isinstance(pruner, CollapsePruner) else None


def is_collapsed(t: FrozenTrial) -> bool:
    """Collapsed: its recorded collapse constraint is violated, or (without one) it ended with
    no active unit, or it was pruned for collapse."""
    if records.prune_reason(t) == "collapse":
        return True
    value = t.constraints.get(COLLAPSE_CONSTRAINT) if hasattr(t, "constraints") else None
    if value is not None:
        return value > 0
    final = records.trial_final(t)
    return final.get("active_units", 1) == 0
