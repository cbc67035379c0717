"""The study's trial budget, exact even when many workers race for the last trials.

``n_trials`` counts finished trials (COMPLETE and PRUNED; a FAIL is retried, so it does not use
the budget). Optuna's ``MaxTrialsCallback`` checks only after a trial ends, so N workers can
overshoot by N - 1. Here a worker takes the study lock (:mod:`vae_search.storage.locks`), fails
stale trials (their retries become WAITING and are picked up first), counts finished + running
trials, and only then lets Optuna create the next trial; the lock is released as the objective
starts. A worker whose budget is spoken for by running trials waits for them instead of
leaving: one of them may be a killed worker's trial that must be retried.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from vae_search.study.warm_start import is_warm_copy

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def counts(study: optuna.Study) -> dict[TrialState, int]:
    out = dict.fromkeys(TrialState, 0)
    for t in study.get_trials(deepcopy=False):
        out[t.state] += 1
    return out


def remaining(study: optuna.Study, n_trials: int | None) -> tuple[int | None, int]:
    """(trials still to start, trials running); None when the study has no budget."""
    trials = study.get_trials(deepcopy=False)  # one read: this runs before every trial
    running = sum(t.state == TrialState.RUNNING for t in trials)
    if n_trials is None:
        return None, running
    # trials copied in by a warm start ran in another study: they do not use this one's budget
    finished = sum(t.state in FINISHED and not is_warm_copy(t) for t in trials)
    return n_trials - finished - running, running


def waiting(study: optuna.Study) -> int:
    """Trials enqueued and not started (a finalists' study runs only these)."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
