"""The objectives a study minimises, and the names Optuna and the dashboard show for them.

``nll_iwae`` is the validation IWAE NLL bound with the spec's k, ``elbo`` the validation -ELBO at
β = 1: both comparable across β, never the β-weighted training loss.
"""

from __future__ import annotations

import math
import warnings

import optuna
from optuna.trial import TrialState

from vae_search import records

OBJECTIVE_LABELS = {"nll_iwae": "validation IWAE NLL bound, nats", "elbo": "validation −ELBO, nats"}


def objective_label(study: optuna.Study) -> str:
    """Name of the objective, guessed from the best trial's ``final`` figures."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        final = records.trial_final(t)
        for key, label in OBJECTIVE_LABELS.items():
            if (
                t.value is not None
                and isinstance(final.get(key), (int, float))
                and math.isclose(final[key], t.value, rel_tol=1e-9)
            ):
                return label
    return "objective value"


def name_objective(study: optuna.Study, objective: str) -> None:
    """Name the study's metric with the figures' label (optuna-dashboard's own charts say
    "Objective 0" otherwise); a study already named is only read, never written again."""
    if study.metric_names:
        return
    with warnings.catch_warnings():  # set_metric_names is "experimental" since Optuna 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([OBJECTIVE_LABELS.get(objective, objective)])
