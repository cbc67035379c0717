"""Where a study lives: its database, the artifact store beside it, and what keeps both safe.

- :mod:`~vae_search.storage.urls`: which database a command uses; passwords never printed;
- :mod:`~vae_search.storage.database`: opening the RDB storage, creating studies, one-line errors;
- :mod:`~vae_search.storage.resilient`: riding out a database restart (retries, de-duplication);
- :mod:`~vae_search.storage.proxy`: Optuna's gRPC storage proxy for many workers;
- :mod:`~vae_search.storage.locks`: the study lock (PostgreSQL advisory lock, SQLite file lock);
- :mod:`~vae_search.storage.stale`: failing and re-queueing dead workers' trials;
- :mod:`~vae_search.storage.checkpoints`: per-epoch checkpoints in the artifact store;
- :mod:`~vae_search.storage.timing`: opt-in accounting of storage time (benchmarks).

It knows Optuna's storages and nothing of training, search spaces or the dashboard.
"""

from __future__ import annotations

from vae_search.storage.database import create_or_load_study, open_storage
from vae_search.storage.urls import DEFAULT_URL, ENV_VAR, redact, resolve_url, server_address

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "create_or_load_study",
    "open_storage",
    "redact",
    "resolve_url",
    "server_address",
]
