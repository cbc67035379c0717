"""What optuna-dashboard and the HTML report show of a study.

* :mod:`~vae_search.dashboard.trial` (:func:`publish_trial`): per trial, PNG artifacts (curves,
  KL per dimension, reconstructions, prior samples, latent traversals; text pictures for text
  trials) and a note on how it ended;
* :mod:`~vae_search.dashboard.study` (:func:`refresh_study_figures`): per study, plotly figures:
  the collapse map, active units against the objective, the rate-distortion plane, reference
  lines;
* :mod:`~vae_search.dashboard.hooks`: both registered in the workers' hooks by the CLI.
* :func:`write_report`: one self-contained HTML page (``vae-search report``).
* :func:`serve`: optuna-dashboard over the storage and artifact store (``vae-search dashboard``).

Imports are lazy so that importing this package stays cheap for workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vae_search.dashboard.report import write_report
    from vae_search.dashboard.server import serve
    from vae_search.dashboard.study.study_figures import refresh_study_figures
    from vae_search.dashboard.trial.publish import publish_trial

__all__ = ["publish_trial", "refresh_study_figures", "serve", "write_report"]

_WHERE = {
    "publish_trial": "vae_search.dashboard.trial.publish",
    "refresh_study_figures": "vae_search.dashboard.study.study_figures",
    "serve": "vae_search.dashboard.server",
    "write_report": "vae_search.dashboard.report",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
