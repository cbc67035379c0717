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
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vae-search")
except PackageNotFoundError:  # run from a source tree without installing
    __version__ = "0+unknown"
