"""The ``pruner:`` section of a study spec, and the pruner it builds: the collapse rule
(:mod:`vae_search.study.collapse`) around one of Optuna's performance pruners.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

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

from vae_search.study.collapse import CollapseHyperbandPruner, CollapsePruner, collapse_threshold

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
