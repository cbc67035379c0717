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
    """One objective: its label (figures' axes), its direction, the key of the trial's
    ``final`` figures that holds its value, and its short name (a multi-objective study's
    Optuna metric name: ``optuna best-trials`` prints it in every row)."""

    label: str
    direction: Literal["minimize", "maximize"]
    key: str
    short: str


OBJECTIVES: dict[str, ObjectiveKind] = {
    "nll_iwae": ObjectiveKind("validation IWAE NLL bound, nats", "minimize", "nll_iwae", "val IWAE NLL"),
    "elbo": ObjectiveKind("validation −ELBO, nats", "minimize", "elbo", "val -ELBO"),
    "distortion": ObjectiveKind("distortion D, validation, nats", "minimize", "recon", "val D"),
    "rate": ObjectiveKind("rate R = KL, validation, nats", "minimize", "kl", "val R"),
    "active_units": ObjectiveKind("active units, validation", "maximize", "active_units", "val AU"),
}
LABEL_OF_SHORT = {o.short: o.label for o in OBJECTIVES.values()}
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
    if names and names[0]:
        return LABEL_OF_SHORT.get(names[0], names[0])
    return "objective value"


def metric_names(objective: str | Sequence[str]) -> list[str]:
    """The Optuna metric names of a study with ``objective:``: the short names of a
    multi-objective study's objectives (optuna-dashboard's charts and its Pareto chart say
    "Objective 0", "Objective 1" otherwise); none for a single objective, whose ``optuna
    best-trial`` then prints the value as a number, not a {name: value} table cell (the
    figures' axes still read the label, see :func:`objective_label`). A name that is not an
    objective (a finalists' study's) is kept as it is."""
    names = objective_names(objective)
    if len(names) == 1 and names[0] in OBJECTIVES:
        return []
    return [OBJECTIVES[n].short if n in OBJECTIVES else n for n in names]


def name_objective(study: optuna.Study, objective: str | Sequence[str]) -> None:
    """Name the study's metrics (:func:`metric_names`); a study already named, or with no
    names to give, is only read."""
    names = metric_names(objective)
    if not names or study.metric_names:
        return
    with warnings.catch_warnings():  # set_metric_names is "experimental" since Optuna 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(names)
