"""The study lock: one worker at a time takes the study's next trial (or rewrites its figures).

PostgreSQL ``pg_advisory_lock`` on a short-lived connection, keyed by the study name; SQLite
(one machine) an ``fcntl`` lock on ``<database>.lock``; other storages (the gRPC proxy) none,
where the budget can be overshot by up to workers - 1 (see :mod:`vae_search.workers.budget`).
"""

from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path
from typing import Any, Protocol


class Lock(Protocol):
    def acquire(self) -> None: ...
    def release(self) -> None: ...


class NoLock:
    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass


class FileLock:
    """An exclusive ``flock`` on a file beside the SQLite database."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = None

    def acquire(self) -> None:
        self._fh = open(self.path, "a+")  # noqa: SIM115 - held until release
        fcntl.flock(self._fh, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock keyed by the study name."""

    def __init__(self, url: str, study_name: str):
        import sqlalchemy

        from vae_search.storage.resilient import Retrier

        self._retry = Retrier(url)
        self._engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        self._key = int.from_bytes(
            hashlib.sha1(f"vae-search:{study_name}".encode()).digest()[:8], "big", signed=True
        )
        self._conn = None

    def acquire(self) -> None:
        # retried across a database restart (a lock taken on a lost connection is gone with it)
        self._conn = self._retry.call("taking the study lock", self._lock)

    def _lock(self) -> Any:
        import sqlalchemy

        conn = self._engine.connect()
        try:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
        except BaseException:
            conn.close()
            raise
        return conn

    def release(self) -> None:
        """Unlock and close; a connection lost meanwhile took its session's lock with it.

        After a server restart the unlock fails on the dead connection. The driver does not
        always mark such a connection broken at once (psycopg learns it on the next read), so
        SQLAlchemy's ``close`` would try to roll it back and raise from ``_rollback_impl``:
        such a connection is invalidated instead, and nothing escapes for a connection failure.
        """
        import sqlalchemy

        from vae_search.storage.resilient import classify

        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            conn.close()  # closing the session also frees the lock
        except sqlalchemy.exc.SQLAlchemyError as e:
            lost = classify(e) is not None
            try:
                conn.invalidate()  # the session is gone, or must go: never roll it back
            except sqlalchemy.exc.SQLAlchemyError:
                pass
            if not lost:
                raise


def study_lock(url: str, study_name: str) -> Lock:
    """The lock that fits the storage URL."""
    if url.startswith("sqlite:///"):
        return FileLock(Path(url[len("sqlite:///") :] + ".lock"))
    if url.startswith("postgresql"):
        return AdvisoryLock(url, study_name)
    return NoLock()
