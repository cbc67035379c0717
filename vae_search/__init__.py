"""vae-search: hyperparameter search for variational autoencoders that fights posterior collapse.

The layers, bottom up (each knows only the ones above it in this list):

- :mod:`vae_search.config`: the typed run config (data, model, prior, schedule, optim, eval);
- :mod:`vae_search.data`, :mod:`vae_search.model`, :mod:`vae_search.schedules`,
  :mod:`vae_search.metrics`: datasets, networks and priors, β schedules, collapse measures;
- :mod:`vae_search.train`: one run of a config, with an epoch callback; it knows nothing of Optuna;
- :mod:`vae_search.search`: study specs, the Optuna objective, the collapse pruner, storage,
  workers and export;
- :mod:`vae_search.dashboard`: trial pictures and notes, study figures, the report, the server;
- :mod:`vae_search.cli`: the ``vae-search`` command, a thin layer over the above.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vae-search")
except PackageNotFoundError:  # run from a source tree without installing
    __version__ = "0+unknown"
