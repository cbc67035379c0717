"""What optuna-dashboard and the HTML report show of a study.

* :func:`publish_trial`: per trial, PNG artifacts (curves, KL per dimension, reconstructions,
  prior samples, latent traversals) and a note on how it ended; called from the objective.
* :func:`refresh_study_figures`: per study, the collapse map and active units against the
  objective as plotly figures; called by the worker after each trial.
* :func:`write_report`: one self-contained HTML page (``vae-search report``).
* :func:`serve`: optuna-dashboard over the storage and artifact store (``vae-search dashboard``).

Imports are lazy so that importing this package stays cheap for workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vae_search.dashboard.publish import publish_trial
    from vae_search.dashboard.report import write_report
    from vae_search.dashboard.server import serve
    from vae_search.dashboard.study_figures import refresh_study_figures

__all__ = ["publish_trial", "refresh_study_figures", "serve", "write_report"]

_WHERE = {
    "publish_trial": "vae_search.dashboard.publish",
    "refresh_study_figures": "vae_search.dashboard.study_figures",
    "serve": "vae_search.dashboard.server",
    "write_report": "vae_search.dashboard.report",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
