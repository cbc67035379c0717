"""What a study looks like: trials by state, why trials were pruned, the best trial.

Read-only over any storage; the basis of ``vae-search status`` and ``export``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from vae_search import records
from vae_search.results.pareto import finished_with_values, pareto_front
from vae_search.study.collapse import is_collapsed
from vae_search.study.objectives import is_multi_objective, primary_value
from vae_search.study.references import read_references
from vae_search.study.warm_start import is_warm_copy


def completed(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials with a finite value, best first (by the first objective in a
    multi-objective study)."""
    if is_multi_objective(study):
        sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MINIMIZE else -1.0
        return sorted(finished_with_values(study), key=lambda t: (sign * t.values[0], t.number))
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
        and not is_warm_copy(t)  # another study's result, given to the sampler only
    ]
    return sorted(done, key=lambda t: (t.value, t.number))


def best_trials(study: optuna.Study, include_collapsed: bool = False) -> list[FrozenTrial]:
    """The study's best trials, best first, as ``status``, ``report`` and ``export`` rank them:
    completed trials that kept their active units (as Optuna's ``best_trial`` skips infeasible
    ones), or all completed ones when every one collapsed or ``include_collapsed``.

    In a multi-objective study: the Pareto front (:func:`vae_search.results.pareto.pareto_front`),
    by the first objective."""
    if is_multi_objective(study):
        return pareto_front(study, include_collapsed)
    trials = completed(study)
    if include_collapsed:
        return trials
    return [t for t in trials if not is_collapsed(t)] or trials


@dataclass
class StudySummary:
    name: str
    states: dict[str, int]
    pruned_collapse: int
    pruned_performance: int
    best: dict[str, Any] | None
    running: list[dict[str, Any]]
    collapse_epochs_saved: int = 0  # epochs the collapse-pruned trials did not train
    collapse_epochs_planned: int = 0  # ... of the epochs those trials were configured for
    objectives: list[str] | None = None
    pareto: list[dict[str, Any]] | None = None
    references: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "study": self.name,
            "states": self.states,
            "pruned": {
                "collapse": self.pruned_collapse,
                "performance": self.pruned_performance,
                "collapse_epochs_saved": self.collapse_epochs_saved,
                "collapse_epochs_planned": self.collapse_epochs_planned,
            },
            "best": self.best,
            "running": self.running,
        }
        if self.references:  # published figures named by the spec
            out["references"] = self.references
        if self.pareto is not None:  # multi-objective: the front, by the first objective
            out["objectives"] = self.objectives
            out["pareto"] = self.pareto
        return out


def trial_info(t: FrozenTrial) -> dict[str, Any]:
    final = records.trial_final(t)
    au = records.active_units_history(t)
    return {
        "number": t.number,
        "value": primary_value(t),
        "values": list(t.values) if t.values else None,
        "params": t.params,
        "active_units": final.get("active_units", au[-1] if au else None),
        "latent_dim": records.latent_dim(t),
        "collapsed": is_collapsed(t),
    }


def summarize(study: optuna.Study) -> StudySummary:
    trials = study.get_trials(deepcopy=False)
    states = {s.name: 0 for s in TrialState}
    for t in trials:
        states[t.state.name] += 1
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    by_collapse = [t for t in pruned if records.prune_reason(t) == "collapse"]
    collapse = len(by_collapse)
    planned = [trial_epochs(t) or 0 for t in by_collapse]
    saved = sum(max(0, e - epochs_trained(t)) for t, e in zip(by_collapse, planned) if e)
    best_list = best_trials(study)
    multi = is_multi_objective(study)
    running = [
        {
            "number": t.number,
            # reported every epoch (the attrs lag); multi-objective trials report nothing
            "epoch": len(t.intermediate_values) or len(records.active_units_history(t)),
            "epochs": trial_epochs(t),
            "params": t.params,
        }
        for t in trials
        if t.state == TrialState.RUNNING
    ]
    return StudySummary(
        name=study.study_name,
        states=states,
        pruned_collapse=collapse,
        pruned_performance=len(pruned) - collapse,
        best=trial_info(best_list[0]) if best_list else None,
        running=running,
        collapse_epochs_saved=saved,
        collapse_epochs_planned=sum(planned),
        objectives=list(study.metric_names or []) or [d.name.lower() for d in study.directions]
        if multi else None,
        pareto=[trial_info(t) for t in best_list] if multi else None,
        references=read_references(study),
    )


def epochs_trained(t: FrozenTrial) -> int:
    """The epochs a (pruned) trial trained: its ``pruned_epoch``, else its last reported step,
    else the length of its active-unit history."""
    if records.record(t, records.PRUNED_EPOCH):
        return int(records.record(t, records.PRUNED_EPOCH))
    if t.intermediate_values:
        return max(t.intermediate_values)
    return len(records.active_units_history(t))


def trial_epochs(t: FrozenTrial) -> int | None:
    """The epochs a trial was configured for (its compact ``epochs`` attribute, or the inline
    ``config`` of studies written before it existed)."""
    return records.trial_epochs(t)
