"""Optuna's gRPC storage proxy: one process holds the database connections for many workers.

Each worker process on PostgreSQL holds up to two connections (see
:mod:`vae_search.storage.database`), so a few hundred workers exhaust the server's
``max_connections``. Workers that use ``--storage grpc://HOST:PORT`` instead talk to one proxy,
which holds at most ``pool_size + 1`` connections whatever the number of workers.

Limits (Optuna's, as of 5.0): the proxy has no heartbeats, so a killed worker's trial stays
RUNNING and is not retried automatically; its budget check cannot take the study lock, so N
workers may overshoot the budget by up to N - 1 trials; the connection is neither authenticated
nor encrypted, so the proxy binds 127.0.0.1 unless told otherwise and warns when it is not.
"""

from __future__ import annotations

import logging
import warnings
from concurrent.futures import ThreadPoolExecutor

import optuna

from vae_search.errors import StorageError, VaeSearchError
from vae_search.storage.database import open_storage
from vae_search.storage.resilient import resilient
from vae_search.storage.urls import is_loopback, redact, resolve_url

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "exposure_warning", "serve_proxy"]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 13000
INSTALL = "pip install 'vae-search[grpc]' (grpcio and protobuf)"


def exposure_warning(host: str) -> str | None:
    """The warning for binding ``host``, or None for a loopback address."""
    if is_loopback(host):
        return None
    return (
        f"the storage proxy on {host} has no authentication or encryption: anyone who reaches"
        " it can read and change every study; keep it on a private network"
    )


def check_grpc() -> None:
    """Raise a one-line StorageError when grpcio / protobuf are missing or too old."""
    try:
        from optuna.storages._grpc.auto_generated import api_pb2, api_pb2_grpc  # noqa: F401
    except ImportError as e:
        raise StorageError(f"the gRPC storage proxy needs {INSTALL}: {e}") from e
    except RuntimeError as e:  # the generated code checks the installed versions
        raise StorageError(f"the gRPC storage proxy needs newer packages: {INSTALL}: {e}") from e


def serve_proxy(
    storage_url: str | None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    threads: int = 10,
    pool_size: int = 4,
) -> None:
    """Serve the storage at ``storage_url`` on ``host:port`` until interrupted.

    The database side is a resilient, cached RDB storage without heartbeats (workers behind a
    proxy have none). Blocks; Ctrl-C (KeyboardInterrupt) stops it.

    Raises:
        StorageError: grpc missing, the storage unusable or itself a gRPC proxy.
        VaeSearchError: the port cannot be bound.
    """
    check_grpc()
    url = resolve_url(storage_url)
    if url.startswith("grpc://"):
        raise StorageError(f"--storage {redact(url)}: the proxy needs a database URL, not a proxy")
    storage = open_storage(url, pool_size=pool_size)
    storage = resilient(storage)
    storage = optuna.storages.get_storage(storage)  # a SQLite RDBStorage gets Optuna's cache
    warning = exposure_warning(host)
    if warning:
        log.warning(warning)
    log.info(
        "storage proxy for %s on %s:%d (%d threads, at most %d database connections)",
        redact(url),
        host,
        port,
        threads,
        pool_size + 1,
    )
    with warnings.catch_warnings():  # "experimental" since Optuna 4.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            optuna.storages.run_grpc_proxy_server(
                storage, host=host, port=port, thread_pool=ThreadPoolExecutor(threads)
            )
        except RuntimeError as e:  # grpc: "Failed to bind to address ..."
            raise VaeSearchError(
                f"cannot serve the storage proxy on {host}:{port} ({e}); is the port in use?"
                " pick another with --port"
            ) from e
