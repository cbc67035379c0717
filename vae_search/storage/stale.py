"""Fail the trials of dead workers and re-queue them, with no window in which a retry is lost.

Optuna's :func:`optuna.storages.fail_stale_trials` fails a trial whose heartbeat stopped, and
then, in a second step, calls the storage's ``RetryHeartbeatStaleTrialCallback`` to enqueue
its retry. A worker killed between the two steps leaves a failed trial that nobody retries.

Here the two steps are made recoverable: a stale trial is first marked (system attribute
``vae_search:stale``, set to its own number while it is still RUNNING), then failed; and every
sweep re-runs the retry callback for each marked failed trial that no trial retries yet (a
retry names its originals in its ``retry_history`` system attribute). The callback keeps its
own ``max_retry`` limit, so a trial that has used its retries stays failed.

Workers call :func:`fail_stale_trials` under the study lock (:mod:`vae_search.workers.budget`),
just before asking for a trial, so two workers never enqueue the same retry. Optuna's own
``fail_stale_trials``, which ``study.optimize`` runs right after, then finds nothing left to
fail, except a trial that went stale in the milliseconds between the two calls.
"""

from __future__ import annotations

import copy
import logging
import warnings

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

log = logging.getLogger(__name__)

STALE_ATTR = "vae_search:stale"


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Fail the stale trials of ``study`` and enqueue the retries still missing.

    Returns the numbers of the trials whose retry this call enqueued.
    """
    storage = study._storage
    if not is_heartbeat_enabled(storage):
        return []
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        try:
            # the mark holds the trial's own number: its retry inherits the system attrs,
            # and must not pass for a stale trial should it fail for a reason of its own
            storage.set_trial_system_attr(trial_id, STALE_ATTR, storage.get_trial_number_from_id(trial_id))
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            pass  # its own worker finished it after all, or another worker failed it first
    callback = storage.get_heartbeat_stale_trial_callback()
    if callback is None:
        return []
    limit = getattr(callback, "_max_retry", None)  # the callback would refuse past it
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    orphans = [
        t for t in trials
        if t.state == TrialState.FAIL
        and t.system_attrs.get(STALE_ATTR) == t.number
        and t.number not in retried
        and (limit is None or len(t.system_attrs.get("retry_history", ())) < limit)
    ]
    with warnings.catch_warnings():  # the retry callback is "experimental" since Optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for t in orphans:
            log.info("trial %d: its worker stopped beating; re-queued", t.number)
            callback(study, copy.deepcopy(t))
    return [t.number for t in orphans]
