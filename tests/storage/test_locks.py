"""The study lock on PostgreSQL survives a connection that the server dropped under it."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy

from vae_search.storage.locks import AdvisoryLock


def _terminate(url: str, pid: int) -> None:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    finally:
        engine.dispose()


def _held_by_another(url: str, key: int) -> bool:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            got = conn.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            if got:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            return not got
    finally:
        engine.dispose()


@pytest.mark.parametrize("driver_noticed", [True, False])
def test_release_after_the_server_dropped_the_lock_connection(pg_url, monkeypatch, driver_noticed):
    """A restart kills the lock's session while a worker waits out the outage; release then
    must neither raise nor leave the lock held. ``driver_noticed=False`` is the race seen in a
    restart: psycopg has not yet marked the dead connection broken, so SQLAlchemy does not
    invalidate it and a plain ``close`` would roll back on it and raise from ``_rollback_impl``."""
    lock = AdvisoryLock(pg_url, f"lock-test-{uuid.uuid4().hex[:8]}")
    lock.acquire()
    assert _held_by_another(pg_url, lock._key)
    pid = lock._conn.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar()
    _terminate(pg_url, pid)
    if not driver_noticed:
        monkeypatch.setattr(lock._engine.dialect, "is_disconnect", lambda *a, **k: False)
    lock.release()  # no exception
    assert lock._conn is None
    assert not _held_by_another(pg_url, lock._key)  # the session, and its lock, are gone
    lock.acquire()  # and the lock can be taken again at once
    lock.release()
    assert not _held_by_another(pg_url, lock._key)


def test_release_of_a_healthy_lock_frees_it(pg_url):
    lock = AdvisoryLock(pg_url, f"lock-test-{uuid.uuid4().hex[:8]}")
    lock.acquire()
    assert _held_by_another(pg_url, lock._key)
    lock.release()
    assert not _held_by_another(pg_url, lock._key)
