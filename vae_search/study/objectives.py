"""The objectives a study optimises, their directions, and the names Optuna and the dashboard
show for them.

``nll_iwae`` is the validation IWAE NLL bound with the spec's k, ``elbo`` the validation -ELBO at
β = 1: both comparable across β, never the β-weighted training loss. A multi-objective study
(``objective: [distortion, rate]``) adds the two sides of the ELBO (Alemi et al. 2018):
``distortion`` D = E_q[-log p(x|z)] and ``rate`` R = KL(q(z|x) ‖ p(z)), both on the validation
split in nats, so that D + R is the -ELBO at β = 1; and ``active_units`` (maximised).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from vae_search import records


@dataclass(frozen=True)
class ObjectiveKind:
    """One objective: its label, its direction, and the key of the trial's ``final`` figures
    that holds its value."""

    label: str
    direction: Literal["minimize", "maximize"]
    key: str


OBJECTIVES: dict[str, ObjectiveKind] = {
    "nll_iwae": ObjectiveKind("validation IWAE NLL bound, nats", "minimize", "nll_iwae"),
    "elbo": ObjectiveKind("validation −ELBO, nats", "minimize", "elbo"),
    "distortion": ObjectiveKind("distortion D, validation, nats", "minimize", "recon"),
    "rate": ObjectiveKind("rate R = KL, validation, nats", "minimize", "kl"),
    "active_units": ObjectiveKind("active units, validation", "maximize", "active_units"),
}
# objectives a single-objective study may name (the others only make sense beside another)
SINGLE = ("nll_iwae", "elbo")
OBJECTIVE_LABELS = {k: OBJECTIVES[k].label for k in SINGLE}


def objective_names(objective: str | Sequence[str]) -> list[str]:
    """``objective:`` of a spec as a list of names (a one-element list for a plain name)."""
    if isinstance(objective, str):
        return [objective]
    return list(objective) if isinstance(objective, (list, tuple)) else []


def objective_problems(objective: str | Sequence[str]) -> list[str]:
    """What is wrong with an ``objective:`` value (empty: nothing)."""
    names = objective_names(objective)
    one_of = ", ".join(map(repr, SINGLE))
    if isinstance(objective, str):
        if objective in SINGLE:
            return []
        if objective in OBJECTIVES:
            return [f"objective: {objective} alone is not comparable across β; use {one_of}, "
                    "or a list such as [distortion, rate]"]
        return [f"objective: {objective!r} is not one of {one_of} (unknown objective; a "
                f"multi-objective study takes a list of {', '.join(OBJECTIVES)})"]
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        return [f"objective: unknown objective {', '.join(map(repr, unknown))}; use a list of "
                f"{', '.join(OBJECTIVES)}, such as [distortion, rate]"]
    if not names:
        return ["objective: the list is empty; name one to three objectives"]
    if len(set(names)) != len(names):
        return [f"objective: {names} names an objective twice"]
    if len(names) > 3:
        return [f"objective: {len(names)} objectives; at most 3 (Optuna's Pareto chart draws 2 or 3)"]
    if len(names) == 1:
        return objective_problems(names[0])
    return []


def directions(objective: str | Sequence[str]) -> list[str]:
    """Optuna ``directions`` for ``objective:``."""
    return [OBJECTIVES[n].direction for n in objective_names(objective)]


def objective_values(final: Mapping[str, Any], objective: str | Sequence[str]) -> list[float]:
    """The trial's values, in the order of ``objective:``, from its ``final`` figures."""
    return [float(final[OBJECTIVES[n].key]) for n in objective_names(objective)]


def is_multi_objective(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def primary_value(t: FrozenTrial) -> float | None:
    """The trial's value, or its first objective's in a multi-objective study (None if none):
    what figures with one value axis show. ``FrozenTrial.value`` raises for several values."""
    return t.values[0] if t.values else None


def objective_label(study: optuna.Study) -> str:
    """Name of the (first) objective, guessed from the trials' ``final`` figures, else the
    study's metric name."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        final = records.trial_final(t)
        value = primary_value(t)
        for key, label in OBJECTIVE_LABELS.items():
            if (
                value is not None
                and isinstance(final.get(key), (int, float))
                and math.isclose(final[key], value, rel_tol=1e-9)
            ):
                return label
    names = study.metric_names
    return names[0] if names and names[0] else "objective value"


def name_objective(study: optuna.Study, objective: str | Sequence[str]) -> None:
    """Name the study's metrics with the figures' labels (optuna-dashboard's own charts, its
    Pareto chart included, say "Objective 0" otherwise); a study already named is only read."""
    if study.metric_names:
        return
    with warnings.catch_warnings():  # set_metric_names is "experimental" since Optuna 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([
            OBJECTIVES[n].label if n in OBJECTIVES else n for n in objective_names(objective)
        ])
