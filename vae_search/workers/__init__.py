"""Where trials run: a worker joins a study and trains one run config per trial.

- :mod:`~vae_search.workers.objective`: the Optuna objective (sample, train, report, prune);
- :mod:`~vae_search.workers.worker`: a worker's loop, its budget gate and stopping on signals;
- :mod:`~vae_search.workers.budget`: the study's exact trial budget;
- :mod:`~vae_search.workers.hooks`: what a worker tells the layers above (a trial ended, the
  study changed);
- :mod:`~vae_search.workers.preflight`: what every trial needs, checked before the study is
  touched;
- :mod:`~vae_search.workers.launch`: N local worker processes, pinned to GPUs or CPU cores;
- :mod:`~vae_search.workers.progress`: the progress line for people watching a terminal;
- :mod:`~vae_search.workers.context`: which worker and trial a log line comes from.
"""
