"""Opening a study's database: the RDB storage, its connection settings, and creating studies
safely; every database error becomes one line.

SQLite: a 60 s busy timeout and WAL journal mode (set once on the file; WAL is persistent). Fine
for a few workers on one machine, never on NFS. PostgreSQL: ``pool_pre_ping``, a 10 s connect
timeout and a pool of ``pool_size`` + 1 overflow connections, so one worker process holds at most
``pool_size + 1`` (default 2: the trial loop and the heartbeat thread), plus one short-lived
connection while it holds the budget lock: N workers need up to ``3 N`` below the server's
``max_connections`` (100 by default, a few reserved).

Every error is one :class:`StorageError` line, and no message this module raises or logs shows a
password: URLs go through :func:`~vae_search.storage.urls.redact`.
"""

from __future__ import annotations

import logging
import random
import re
import sqlite3
import time
import warnings
from contextlib import closing
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from vae_search.errors import StorageError
from vae_search.storage.urls import CHECK_HINT, normalise, redact, server_address

_log = logging.getLogger(__name__)


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = 2,
    pool_size: int = 1,
) -> BaseStorage:
    """Open (creating tables if needed) the storage at ``url``.

    Args:
        url: a storage URL (see :func:`resolve_url`; normalised again here).
        heartbeat_interval: seconds between a running trial's heartbeats (None: off).
        grace_period: seconds without a heartbeat before a trial is failed (None: 2 x interval).
        max_retry: how often a heartbeat-stale trial is re-queued (None: no limit).
        pool_size: PostgreSQL connections kept per process (one more may overflow).

    Raises:
        StorageError: one line saying what is wrong and what to do; never a password.
    """
    url = normalise(url)
    if url.startswith("grpc://"):
        return _open_grpc(url)
    parsed = make_url(url)
    heartbeat: dict[str, Any] = {}
    if heartbeat_interval is not None:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            callback = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        heartbeat = {
            "heartbeat_interval": heartbeat_interval,
            "grace_period": grace_period,
            "heartbeat_stale_trial_callback": callback,
        }
    if parsed.drivername == "sqlite":
        _prepare_sqlite(parsed)
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {
            "pool_pre_ping": True,
            "pool_size": pool_size,
            "max_overflow": 1,
            "connect_args": {"connect_timeout": 10},
        }
    _log.debug("opening study storage %s", redact(url))  # an error after it would be line 2
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
        except (sa_exc.IntegrityError, sa_exc.ProgrammingError, sa_exc.OperationalError) as e:
            # Several workers creating the tables of a fresh database at once collide on
            # the catalog ("already exists") or the schema-version row; the winner's tables are there.
            if attempt == 4 or not _is_creation_race(e):
                raise translate(e, url) from e
            _log.debug("table creation raced (%s); retrying", type(e).__name__)
            time.sleep(0.1 + random.random() * 0.4)
        except Exception as e:
            raise translate(e, url) from e
    raise AssertionError("unreachable")


def require_database(url: str) -> None:
    """Raise a StorageError when ``url`` is a SQLite file that does not exist.

    For the commands that only read a study (``status``, ``export``, ``report``,
    ``dashboard``): opening the storage would create an empty database file and then report
    that it holds no study.
    """
    url = normalise(url)
    if url.startswith("grpc://"):
        return
    parsed = make_url(url)
    db = parsed.database
    if parsed.drivername.startswith("sqlite") and db and db != ":memory:" and not db.startswith("file:"):
        if not Path(db).is_file():
            raise StorageError(
                f"no study database at {db}: run a study first (vae-search run SPEC) or point "
                f"--storage / VAE_SEARCH_STORAGE at its database"
            )


def _is_creation_race(error: Exception) -> bool:
    text = str(getattr(error, "orig", error))
    return isinstance(error, sa_exc.IntegrityError) or "already exists" in text


def _prepare_sqlite(parsed: URL) -> None:
    db = parsed.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return
    parent = Path(db).parent
    if not parent.is_dir():
        raise StorageError(
            f"cannot create SQLite database {db}: directory {parent} does not exist"
            f" (create it: mkdir -p {parent})"
        )
    # Switching to WAL needs a moment alone with the file: racing workers may get "database is
    # locked" at once (the busy timeout does not cover it), so retry for up to ~10 s.
    for attempt in range(50):
        try:
            with closing(sqlite3.connect(db, timeout=60)) as conn:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if mode.lower() != "wal":
                    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                _log.warning("SQLite database %s stays in %s journal mode (not WAL)", db, mode)
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == 49:
                raise StorageError(f"cannot open SQLite database {db}: {e}") from e
            time.sleep(0.1 + random.random() * 0.2)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open SQLite database {db}: {e}") from e


GRPC_WAIT = 10.0  # seconds a worker waits for the storage proxy to answer at start


def _open_grpc(url: str) -> BaseStorage:
    """A client of the storage proxy at ``url``, once the proxy answers (``GRPC_WAIT``)."""
    wait = GRPC_WAIT
    host, _, port = url[len("grpc://") :].rstrip("/").rpartition(":")
    try:
        with warnings.catch_warnings():  # "experimental" since Optuna 4.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            proxy = optuna.storages.GrpcStorageProxy(host=host, port=int(port))
    except ImportError as e:
        raise StorageError(
            f"{redact(url)}: the gRPC storage proxy needs grpcio (pip install grpcio)"
        ) from e
    try:
        proxy.wait_server_ready(timeout=wait)
    except ConnectionError as e:  # otherwise the first call fails with a page of gRPC detail
        proxy.close()
        raise StorageError(
            f"no storage proxy answers at {host}:{port} within {wait:g} s — is "
            f"`vae-search storage-proxy` running there? {CHECK_HINT}"
        ) from e
    return proxy


def translate(error: BaseException, url: str) -> StorageError:
    """One-line StorageError for a failure to use the storage at ``url`` (no password)."""
    safe = redact(url)
    try:
        parsed: URL | None = make_url(url)
    except Exception:
        parsed = None
    orig = _root(error)
    text = " ".join(str(orig).split())
    if parsed is not None and parsed.password:
        text = text.replace(str(parsed.password), "***")
    where = server_address(url)
    host, _, port = where.rpartition(":")

    def quoted(pattern: str) -> str:
        m = re.search(pattern, text)
        return m.group(1) if m else "?"

    if "optuna storage upgrade" in text:
        hint = " (with the real password)" if parsed is not None and parsed.password else ""
        return StorageError(
            f"the study database {safe} has an older Optuna schema; upgrade it with:"
            f" optuna storage upgrade --storage '{safe}'{hint}"
        )
    if "no longer compatible with the table schema" in text:
        return StorageError(f"{safe}: {text}")
    if parsed is not None and parsed.drivername.startswith("sqlite"):
        if "database is locked" in text:
            return StorageError(
                f"SQLite database {parsed.database} is locked by another process; with many"
                " workers use PostgreSQL"
            )
        return StorageError(f"cannot open SQLite database {parsed.database}: {text}")
    if "password authentication failed" in text:
        user = quoted(r'for user "([^"]*)"')
        return StorageError(f"password authentication failed for user {user} at {where}: {CHECK_HINT}")
    if re.search(r'role "[^"]*" does not exist', text):
        role = quoted(r'role "([^"]*)" does not exist')
        return StorageError(f"postgres at {where}: role {role} does not exist: {CHECK_HINT}")
    if re.search(r'database "[^"]*" does not exist', text):
        name = quoted(r'database "([^"]*)" does not exist')
        return StorageError(
            f"postgres at {where}: database {name} does not exist"
            f" (create it: createdb -h {host} -p {port} {name})"
        )
    for needle, what in (
        ("Connection refused", "connection refused — is the server running?"),
        ("timeout expired", "timeout — is the server running?"),
        ("timed out", "timeout — is the server running?"),
        ("failed to resolve host", "unknown host — is the host name right?"),
        ("could not translate host name", "unknown host — is the host name right?"),
    ):
        if needle in text:
            return StorageError(f"could not connect to postgres at {where}: {what} {CHECK_HINT}")
    if "too many clients" in text or "remaining connection slots" in text:
        return StorageError(
            f"postgres at {where} has no free connections (max_connections): run fewer workers"
            " or raise max_connections"
        )
    if "permission denied" in text:
        user = parsed.username if parsed is not None else "?"
        return StorageError(
            f"postgres at {where}: user {user} may not create or use the study tables ({text});"
            f" grant it (GRANT ALL ON SCHEMA public TO {user}) or use another database"
        )
    if "no pg_hba.conf entry" in text:
        return StorageError(f"postgres at {where} refuses this host/user/database (pg_hba.conf)")
    return StorageError(f"storage {safe}: {type(orig).__name__}: {text}")


def _root(error: BaseException) -> BaseException:
    """The innermost cause: the driver's own error under SQLAlchemy's and Optuna's wrappers."""
    seen = {id(error)}
    while True:
        inner = getattr(error, "orig", None) or error.__cause__
        if inner is None or id(inner) in seen:
            return error
        seen.add(id(inner))
        error = inner


def create_or_load_study(
    storage: BaseStorage | str,
    name: str,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    directions: list[str] | None = None,
) -> optuna.Study:
    """Create the study ``name`` (minimising, or with ``directions`` for a multi-objective
    study), or load it if it exists; safe for racing workers.

    Raises:
        StorageError: the storage fails, or ``name`` exists with other directions.
    """
    want = directions or ["minimize"]
    url = storage if isinstance(storage, str) else getattr(storage, "url", type(storage).__name__)
    try:
        try:
            study = optuna.create_study(
                storage=storage,
                study_name=name,
                sampler=sampler,
                pruner=pruner,
                directions=want,
                load_if_exists=True,
            )
        except (optuna.exceptions.DuplicatedStudyError, sa_exc.IntegrityError):
            # Lost a race to another worker between the existence check and the insert.
            study = optuna.load_study(
                study_name=name, storage=storage, sampler=sampler, pruner=pruner
            )
    except StorageError:
        raise
    except Exception as e:
        raise translate(e, url) from e
    have = [d.name.lower() for d in study.directions]
    if have != want:
        raise StorageError(
            f"study {name!r} in {redact(url)} exists with direction(s) {have}, the spec asks for"
            f" {want}; use another study name"
        )
    return study
