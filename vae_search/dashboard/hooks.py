"""The dashboard's side of a worker: what it registers in the worker's hooks.

:func:`dashboard_hooks` is what the CLI hands :func:`~vae_search.workers.worker.run_worker`:
each ended trial gets its note and its pictures' records at once, and the job that draws the
pictures, which the worker runs after the trial is told
(:func:`~vae_search.dashboard.trial.publish.plan_trial`), and the study's figures are redrawn
as trials finish (:func:`~vae_search.dashboard.study.study_figures.refresh_study_figures`).
"""

from __future__ import annotations

import optuna

from vae_search.workers.hooks import DeferredJob, TrialEnd, WorkerHooks


def publish_ended_trial(end: TrialEnd) -> DeferredJob:
    """A note and pictures for the dashboard (image pictures only for image data); returns the
    job that draws the pictures."""
    from vae_search.dashboard.trial.publish import plan_trial

    model = end.model if end.config.images else None
    return plan_trial(
        end.trial, end.store, config=end.config, history=end.history, model=model,
        data=end.data if model is not None else None, outcome=end.outcome, detail=end.detail,
    )


def refresh_figures(study: optuna.Study, min_interval: float) -> None:
    """The study's collapse map and active-units figure, redrawn at most every ``min_interval``."""
    from vae_search.dashboard.study.study_figures import refresh_study_figures

    refresh_study_figures(study, min_interval)


def dashboard_hooks() -> WorkerHooks:
    """The hooks that keep optuna-dashboard's pages of a study up to date."""
    return WorkerHooks(trial_ended=[publish_ended_trial], study_changed=[refresh_figures])
