"""Pruning collapsed trials, and the ``pruner:`` section of a study spec.

Contract with the objective, once per epoch ``e`` (1-based)::

    trial.set_user_attr("latent_dim", D)                     # once
    trial.set_user_attr("active_units", [au_1, ..., au_e])   # the whole history, ints
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

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import optuna
from optuna.pruners import (
    BasePruner,
    HyperbandPruner,
    MedianPruner,
    NopPruner,
    PatientPruner,
    PercentilePruner,
    SuccessiveHalvingPruner,
    ThresholdPruner,
)
from optuna.trial import FrozenTrial

if TYPE_CHECKING:
    from vae_search.search.spec import StudySpec

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
        history = trial.user_attrs.get("active_units")
        if not isinstance(history, list) or not history:
            return False
        epoch, patience = len(history), self._collapse_patience
        if epoch - patience < self._collapse_warmup:  # the window must lie after the warm-up
            return False
        threshold = self.threshold(trial.user_attrs.get("latent_dim"))
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


# -- the ``pruner:`` section of a study spec ---------------------------------------------------
PerformanceKind = Literal[
    "none", "median", "percentile", "successive_halving", "hyperband", "patient", "threshold"
]


@dataclass
class CollapseSpec:
    """``pruner.collapse``: the collapse rule's settings (see the module docstring)."""

    enabled: bool = True
    min_active_units: int | None = 1
    min_active_fraction: float | None = None
    patience: int = 2
    warmup_epochs: int = 2

    def problems(self) -> list[str]:
        out = []
        if self.patience < 1:
            out.append(f"patience: must be at least 1, got {self.patience}")
        if self.warmup_epochs < 0:
            out.append(f"warmup_epochs: must be >= 0, got {self.warmup_epochs}")
        if self.min_active_units is not None and self.min_active_units < 0:
            out.append(f"min_active_units: must be >= 0 or null, got {self.min_active_units}")
        fraction = self.min_active_fraction
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            out.append(f"min_active_fraction: must be in [0, 1] or null, got {fraction}")
        if self.enabled and not (self.min_active_units or fraction):
            out.append(
                "min_active_units: set it or min_active_fraction above 0 (or enabled: false)"
            )
        return out

    def args(self) -> tuple[int | None, float | None, int, int]:
        return (self.min_active_units, self.min_active_fraction, self.patience, self.warmup_epochs)

    def threshold(self, latent_dim: int | None) -> float:
        return collapse_threshold(latent_dim, self.min_active_units, self.min_active_fraction)


@dataclass
class PerformanceSpec:
    """``pruner.performance``: an Optuna pruner; ``options`` are its keyword arguments.

    ``patient`` is ``PatientPruner(MedianPruner(**rest), patience, min_delta)``. ``hyperband``
    defaults ``max_resource`` to the run's ``epochs``.
    """

    kind: PerformanceKind = "median"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PrunerSpec:
    """``pruner:``: collapse rule, performance pruner and the collapse constraint switch."""

    collapse: CollapseSpec = field(default_factory=CollapseSpec)
    performance: PerformanceSpec = field(default_factory=PerformanceSpec)
    constraint: bool = True


def _patient(patience: int | None = None, min_delta: float = 0.0, **median: Any) -> BasePruner:
    if patience is None:
        raise TypeError("needs options.patience (epochs without improvement)")
    with warnings.catch_warnings():  # "experimental" in Optuna since 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return PatientPruner(MedianPruner(**median), patience=patience, min_delta=min_delta)


_PERFORMANCE: dict[str, Callable[..., BasePruner]] = {
    "none": NopPruner,
    "median": MedianPruner,
    "percentile": PercentilePruner,
    "successive_halving": SuccessiveHalvingPruner,
    "hyperband": HyperbandPruner,
    "patient": _patient,
    "threshold": ThresholdPruner,
}


def build_pruner(spec: StudySpec) -> BasePruner:
    """The study's pruner: collapse rule (if enabled) around the performance pruner."""
    return make_pruner(spec.pruner, epochs=spec.base_run().epochs)


def make_pruner(spec: PrunerSpec, epochs: int) -> BasePruner:
    """:func:`build_pruner` from the ``pruner:`` section and the run's epoch count."""
    perf, collapse = spec.performance, spec.collapse
    if perf.kind == "hyperband" and collapse.enabled:
        return CollapseHyperbandPruner(*collapse.args(), **_options(perf, epochs))
    inner = make_performance_pruner(perf, epochs)
    if not collapse.enabled:
        return inner
    return CollapsePruner(*collapse.args(), wrapped=None if perf.kind == "none" else inner)


def make_performance_pruner(spec: PerformanceSpec, epochs: int) -> BasePruner:
    """The plain Optuna pruner of ``pruner.performance`` (raises TypeError/ValueError on bad
    options)."""
    return _PERFORMANCE[spec.kind](**_options(spec, epochs))


def _options(spec: PerformanceSpec, epochs: int) -> dict[str, Any]:
    options = dict(spec.options)
    if spec.kind == "hyperband":
        options.setdefault("max_resource", epochs)
    if spec.kind == "none" and options:
        raise TypeError(f"takes no options, got {sorted(options)}")
    return options
