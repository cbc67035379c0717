"""vae-search: hyperparameter search for variational autoencoders that fights posterior collapse.

The layers, bottom up; each imports only the layers below it (``tests/test_layers.py`` keeps
that rule, and forbids import cycles):

- :mod:`vae_search.errors`, :mod:`vae_search.config`: the one exception root; the typed run
  config (data, model, prior, schedule, optim, eval);
- :mod:`vae_search.data`, :mod:`vae_search.model`, :mod:`vae_search.schedules`, then
  :mod:`vae_search.metrics` and :mod:`vae_search.pictures`: datasets, networks and priors, β
  schedules, collapse measures, image grids;
- :mod:`vae_search.train`: one run of a config, with an epoch callback; it knows nothing of Optuna;
- :mod:`vae_search.records`: where a trial's records live (its system attributes
  ``vae_search:*``) and the one reader of them (old studies' inline user attributes too);
- :mod:`vae_search.study`: what a study is (spec, search space, the collapse rule and pruners);
  :mod:`vae_search.storage`: where it lives (database URLs, the RDB storage, surviving a
  restart, the gRPC proxy, the study lock, stale trials, checkpoints);
- :mod:`vae_search.workers`: where trials run (the objective, the worker and its budget, the
  launcher, preflight, progress), telling the layers above through hooks;
  :mod:`vae_search.results`: what a study found (summary, export);
- :mod:`vae_search.dashboard`: trial pictures and notes, study figures, the report, the server;
  it registers its publishers in the workers' hooks;
- :mod:`vae_search.cli`: the ``vae-search`` command, a thin layer that wires the above together.

The library API, for a user who keeps their own training loop or their own model (imported
lazily, so ``import vae_search`` stays cheap; ``examples/own_loop.py`` uses the first three):

- :func:`active_units`, :func:`kl_per_dimension`, :func:`mutual_info`: collapse measures of a
  batch of posteriors (``mu``, ``logvar``);
- :class:`CollapsePruner`: an Optuna pruner that stops trials whose ``active_units`` user
  attribute stays below a threshold;
- :class:`ModelContext`: what a ``model.factory`` function is handed (``model.arch: custom``);
- :class:`RunConfig`, :func:`load_data`, :func:`train`: one run of a config, as ``vae-search
  train`` does it; :class:`StudySpec`: a study file;
- :class:`VaeSearchError`: the root of every error a user can cause.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

_API = {
    "active_units": "vae_search.metrics",
    "kl_per_dimension": "vae_search.metrics",
    "mutual_info": "vae_search.metrics",
    "CollapsePruner": "vae_search.study.collapse",
    "ModelContext": "vae_search.model.factory",
    "RunConfig": "vae_search.config",
    "load_data": "vae_search.data",
    "train": "vae_search.train",
    "StudySpec": "vae_search.study.spec",
    "VaeSearchError": "vae_search.errors",
}
_RENAMED = {"mutual_info": "mutual_info_batch"}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    """Import a library-API name on first use (PEP 562)."""
    if name not in _API:
        raise AttributeError(f"module 'vae_search' has no attribute {name!r}")
    value = getattr(import_module(_API[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])

try:
    __version__ = version("vae-search")
except PackageNotFoundError:  # run from a source tree without installing
    __version__ = "0+unknown"
