"""Ride out a study database that goes away for a while (a PostgreSQL restart, a failover).

:func:`resilient` wraps a network RDB storage so that a call failing on a *dropped or refused
connection* is retried with exponential backoff and jitter for at most ``max_wait`` seconds,
with one warning per outage, and then becomes one :class:`~vae_search.errors.StorageError`
line. Anything else (an integrity error, bad SQL, a wrong password, ``too many clients``) is
raised at once: waiting would only hide it. SQLAlchemy's ``pool_pre_ping`` (set by
:func:`~vae_search.storage.database.open_storage`) already replaces stale pooled connections, so
after an outage the first call simply connects again.

Which calls may be repeated. A failure is either *not sent* (the connection could not be made:
refused, the server starting up or shutting down; nothing reached the database) or *lost in
flight* (the connection dropped during a statement or its commit: the outcome is unknown).
Reads and upserts (user/system attributes, intermediate values, heartbeats, parameters, whose
duplicate insert Optuna ignores) are retried either way. The others are made safe to repeat:

- ``create_new_trial``: every trial is created with a fresh token in its system attribute
  ``vae_search:create_token`` (through Optuna's ``template_trial``); after a lost call the
  wrapper looks the token up and returns the trial that did get created instead of creating a
  second one. Should Optuna's own retry inside ``RDBStorage._create_new_trial`` (five tries on
  any ``StorageInternalError``) have created two, the extra one is failed at once, so no
  heartbeat-less RUNNING trial is left behind to hold up the study's budget.
- ``set_trial_state_values``: after a lost call the trial is read back; if it already has the
  requested state (and values), the call succeeded. vae-search workers make the contended
  transitions (WAITING -> RUNNING, stale -> FAIL) under the study lock of
  :mod:`vae_search.workers.budget`, so such a state is this worker's own write.
- ``create_new_study`` / ``delete_study``: repeated; a repeat's ``DuplicatedStudyError`` is what
  :func:`~vae_search.storage.database.create_or_load_study` already handles, a repeated delete of
  a gone study is taken as done.

Optuna wraps an ``RDBStorage`` in its ``_CachedStorage`` inside ``create_study`` but passes any
other storage through untouched, so :func:`resilient` builds ``_CachedStorage`` itself and wraps
that: the cache is kept and every call still goes through the retry. The wrapper is also a
``BaseHeartbeat`` that delegates, so heartbeats and stale-trial retries keep working. The grace
period of the heartbeat should exceed the outages to ride out: when the database comes back, a
trial whose heartbeat could not be written during the outage looks stale to the first worker
that checks.

The wrapper also closes a gap of Optuna's heartbeats: a trial whose worker died before its first
heartbeat (a few milliseconds after the trial was created) was never failed, so the study never
reached its budget; such trials now count as stale once they have been seen without a heartbeat
for a grace period (see :meth:`ResilientStorage._never_beaten`).
"""

from __future__ import annotations

import abc
import copy
import datetime
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, RDBStorage, _CachedStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from vae_search.errors import StorageError
from vae_search.storage.urls import redact, server_address

__all__ = ["CREATE_TOKEN_ATTR", "ResilientStorage", "Retrier", "classify", "resilient"]

_log = logging.getLogger(__name__)

T = TypeVar("T")
Failure = Literal["not_sent", "lost"]

CREATE_TOKEN_ATTR = "vae_search:create_token"
FIRST_DELAY = 0.1  # seconds before the first retry; doubled each time up to MAX_DELAY
MAX_DELAY = 2.0  # short, so that heartbeats resume soon after the server is back

# The driver's text for a connection that could not be made: nothing reached the server.
_NOT_SENT = (
    "connection refused",
    "could not connect",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "timeout expired",
    "server is not accepting connections",
)
# ... and for a connection that dropped under a statement: its outcome is unknown.
_LOST = (
    "terminating connection",
    "server closed the connection",
    "connection is closed",
    "the connection is lost",
    "consuming input failed",
    "sending query failed",
    "ssl connection has been closed",
    "connection reset by peer",
    "broken pipe",
    "eof detected",
    "connection has been closed",
    "connection already closed",
)
# Connection failures that no wait will fix: raised at once.
_PERMANENT = (
    "password authentication failed",
    "does not exist",
    "too many clients",
    "remaining connection slots",
    "no pg_hba.conf entry",
    "could not translate host name",
    "failed to resolve host",
    "permission denied",
)
_SHUTDOWN_SQLSTATES = {"57P01", "57P02"}  # admin_shutdown, crash_shutdown: lost in flight
_CANNOT_CONNECT_NOW = "57P03"  # starting up / shutting down: at connect time


def classify(error: BaseException) -> Failure | None:
    """``"not_sent"``, ``"lost"`` or None (not a connection failure) for a storage error.

    Walks the chain Optuna's ``StorageInternalError`` -> SQLAlchemy's error -> the driver's.
    """
    chain: list[BaseException] = []
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        e = getattr(e, "orig", None) or e.__cause__ or e.__context__
    if any(
        isinstance(x, (sa_exc.IntegrityError, sa_exc.ProgrammingError, sa_exc.DataError))
        for x in chain
    ):
        return None
    text = " ".join(str(x) for x in chain).lower()
    if any(p in text for p in _PERMANENT):
        return None
    codes = {getattr(x, "sqlstate", None) or getattr(x, "pgcode", None) for x in chain}
    if _CANNOT_CONNECT_NOW in codes or any(p in text for p in _NOT_SENT):
        return "not_sent"
    if codes & _SHUTDOWN_SQLSTATES or any(p in text for p in _LOST):
        return "lost"
    if any(isinstance(x, sa_exc.DisconnectionError) for x in chain) or any(
        isinstance(x, sa_exc.DBAPIError) and x.connection_invalidated for x in chain
    ):
        return "lost"  # SQLAlchemy judged it a disconnect
    return None


def resilient(storage: BaseStorage, *, max_wait: float = 60.0) -> BaseStorage:
    """``storage`` with its calls retried across connection outages (see the module docstring).

    An ``RDBStorage`` on a database server (PostgreSQL, MySQL) is wrapped, with Optuna's
    ``_CachedStorage`` in between; an ``_CachedStorage`` over one is wrapped as it is. Other
    storages come back unchanged: a SQLite file has no connection to lose, and the gRPC proxy
    client's errors are not SQL ones (run the proxy itself over a resilient storage).

    Args:
        storage: the storage, typically from :func:`~vae_search.storage.database.open_storage`.
        max_wait: seconds one call may wait for the database before a StorageError.
    """
    if isinstance(storage, ResilientStorage):
        return storage
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    if not isinstance(backend, RDBStorage) or backend.engine.dialect.name == "sqlite":
        return storage
    cached = storage if isinstance(storage, _CachedStorage) else _CachedStorage(backend)
    return ResilientStorage(cached, backend.url, max_wait=max_wait)


class Retrier:
    """Runs calls to the database at ``url``, retrying them across connection outages.

    One warning per outage (shared by the threads that use it) and one line when the database
    is back. ``url`` is only used in messages, without its password.
    """

    def __init__(self, url: str, *, max_wait: float = 60.0) -> None:
        parsed = make_url(url)
        self.where = server_address(url) if parsed.host else redact(url)
        self.max_wait = max_wait
        self._password = str(parsed.password) if parsed.password else None
        self._lock = threading.Lock()
        self._outage_since: float | None = None

    def call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        idempotent: bool = True,
        reconcile: Callable[[], tuple[bool, T | None]] | None = None,
    ) -> T:
        """``fn()``, retried on connection failures for at most ``max_wait`` seconds.

        A call that is not ``idempotent`` is repeated after a lost-in-flight failure only once
        ``reconcile()`` (run when the database answers again) says it did not take effect; it
        returns ``(True, result)`` when it did.

        Raises:
            StorageError: the database stayed away for ``max_wait`` seconds, or a call that
                cannot be reconciled was lost in flight.
        """
        start = time.monotonic()
        delay = FIRST_DELAY
        lost = False
        while True:
            try:
                if lost and not idempotent:
                    if reconcile is None:
                        raise StorageError(
                            f"lost the study database at {self.where} during {what}; its"
                            " outcome is unknown, so it was not repeated"
                        )
                    done, result = reconcile()
                    if done:
                        self._recovered()
                        return result  # type: ignore[return-value]
                    lost = False
                result = fn()
                self._recovered()
                return result
            except StorageError:
                raise
            except Exception as e:
                kind = classify(e)
                if kind is None:
                    raise
                lost = lost or kind == "lost"
                waited = time.monotonic() - start
                self._outage(e)
                if waited >= self.max_wait:
                    raise StorageError(
                        f"lost the study database at {self.where} for {waited:.0f} s:"
                        f" {self.reason(e)}; is it running?"
                    ) from e
                time.sleep(min(delay * random.uniform(0.5, 1.0), self.max_wait - waited))
                delay = min(2 * delay, MAX_DELAY)

    def reason(self, error: BaseException) -> str:
        """The driver's one-line message for ``error``, without a password."""
        e: BaseException = error
        while (inner := getattr(e, "orig", None) or e.__cause__) is not None and inner is not e:
            e = inner
        text = redact(" ".join(str(e).split()))[:200]
        return text.replace(self._password, "***") if self._password else text

    def _outage(self, error: BaseException) -> None:
        with self._lock:
            if self._outage_since is not None:
                return
            self._outage_since = time.monotonic()
        _log.warning(
            "lost the study database at %s (%s); retrying for up to %.0f s",
            self.where,
            self.reason(error),
            self.max_wait,
        )

    def _recovered(self) -> None:
        if self._outage_since is None:
            return
        with self._lock:
            since, self._outage_since = self._outage_since, None
        if since is not None:
            _log.info(
                "the study database at %s is back after %.1f s",
                self.where,
                time.monotonic() - since,
            )


class ResilientStorage(BaseStorage, BaseHeartbeat):
    """A storage that retries its inner storage's calls across outages; use :func:`resilient`.

    Args:
        inner: the storage to call (an ``_CachedStorage`` over an ``RDBStorage``, normally).
        url: the database URL, for messages (its password is never shown).
        max_wait: seconds one call may wait for the database before a StorageError.

    Attributes it does not define (``url``, ``engine``, ``upgrade`` ...) are the inner
    RDBStorage's.
    """

    def __init__(self, inner: BaseStorage, url: str, *, max_wait: float = 60.0) -> None:
        self._inner = inner
        self._rdb = inner._backend if isinstance(inner, _CachedStorage) else inner
        self._retry = Retrier(url, max_wait=max_wait)
        self._call = self._retry.call
        self._unbeaten: dict[int, float] = {}  # trial id -> when first seen without heartbeat

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_rdb", "_inner", "_retry", "_call", "_unbeaten"):
            raise AttributeError(name)
        return getattr(self._rdb, name)

    # -- calls that need care -------------------------------------------------------------

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        token = uuid.uuid4().hex
        template = _with_token(template_trial, token)

        def created() -> tuple[bool, int | None]:
            mine = [
                t
                for t in self._inner.get_all_trials(study_id, deepcopy=False)
                if t.system_attrs.get(CREATE_TOKEN_ATTR) == token
            ]
            for extra in mine[1:]:  # a duplicate from Optuna's own inner retry
                _log.warning(
                    "trial %d is a duplicate made while the connection dropped; failing it",
                    extra.number,
                )
                self._inner.set_trial_state_values(extra._trial_id, TrialState.FAIL)
            return (True, mine[0]._trial_id) if mine else (False, None)

        return self._call(
            "create_new_trial",
            lambda: self._inner.create_new_trial(study_id, template),
            idempotent=False,
            reconcile=created,
        )

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        def applied() -> tuple[bool, bool | None]:
            t = self._inner.get_trial(trial_id)
            ok = t.state == state and (values is None or t.values == list(values))
            return (True, True) if ok else (False, None)

        return self._call(
            "set_trial_state_values",
            lambda: self._inner.set_trial_state_values(trial_id, state, values),
            idempotent=False,
            reconcile=applied,
        )

    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        return self._call(
            "create_new_study", lambda: self._inner.create_new_study(directions, study_name)
        )

    def delete_study(self, study_id: int) -> None:
        def delete() -> None:
            try:
                self._inner.delete_study(study_id)
            except KeyError:
                if not attempted:
                    raise
            finally:
                attempted.append(True)

        attempted: list[bool] = []
        self._call("delete_study", delete)

    # Reads and upserts are plain delegations, retried either way: see _RETRIED below.

    def remove_session(self) -> None:
        self._rdb.remove_session()  # _CachedStorage does not pass it on

    # -- heartbeats -----------------------------------------------------------------------

    def record_heartbeat(self, trial_id: int) -> None:
        self._call("record_heartbeat", lambda: self._heartbeat.record_heartbeat(trial_id))

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Optuna's stale trials, plus RUNNING ones that never had a heartbeat (see below)."""
        stale = self._call(
            "_get_stale_trial_ids", lambda: self._heartbeat._get_stale_trial_ids(study_id)
        )
        return stale + [t for t in self._never_beaten(study_id) if t not in stale]

    def _never_beaten(self, study_id: int) -> list[int]:
        """RUNNING trials seen without any heartbeat for a whole grace period.

        Optuna skips a RUNNING trial that has no heartbeat row yet, so a worker killed between
        creating a trial (or taking a WAITING one) and its first heartbeat, a few milliseconds,
        leaves a trial that is never failed, and a study that never reaches its budget. Its
        first heartbeat normally follows at once; this process remembers when it first saw
        each trial without one (its own clock: no skew between machines) and reports those
        still without one after the grace period.
        """
        interval = self.get_heartbeat_interval()
        if interval is None or not isinstance(self._rdb, RDBStorage):
            return []
        grace = self._rdb.grace_period or 2 * interval
        ids = set(
            self._call("_never_beaten", lambda: _running_without_heartbeat(self._rdb, study_id))
        )
        now = time.monotonic()
        for trial_id in list(self._unbeaten):
            if trial_id not in ids:
                del self._unbeaten[trial_id]
        for trial_id in ids:
            self._unbeaten.setdefault(trial_id, now)
        return sorted(t for t, seen in self._unbeaten.items() if now - seen > grace)

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat.get_heartbeat_interval()

    def get_heartbeat_stale_trial_callback(
        self,
    ) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._heartbeat.get_heartbeat_stale_trial_callback()

    @property
    def _heartbeat(self) -> BaseHeartbeat:
        inner = self._inner
        return inner if isinstance(inner, BaseHeartbeat) else _NO_HEARTBEAT


# Calls that are safe to repeat whatever happened to the first try: reads, and writes that are
# upserts (attributes, intermediate values) or whose duplicate Optuna ignores (parameters).
_RETRIED = (
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "set_trial_param",
    "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id",
    "get_trial_param",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial",
    "get_all_trials",
    "get_n_trials",
    "get_best_trial",
    "get_trial_params",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
)


def _retried(name: str) -> Callable[..., Any]:
    def call(self: ResilientStorage, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, lambda: getattr(self._inner, name)(*args, **kwargs))

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"The inner storage's ``{name}``, retried across connection outages."
    return call


for _name in _RETRIED:
    setattr(ResilientStorage, _name, _retried(_name))
abc.update_abstractmethods(ResilientStorage)


class _NoHeartbeat(BaseHeartbeat):
    """Heartbeats off, for an inner storage without them."""

    def record_heartbeat(self, trial_id: int) -> None:
        pass

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return []

    def get_heartbeat_interval(self) -> int | None:
        return None

    def get_heartbeat_stale_trial_callback(self) -> None:
        return None


_NO_HEARTBEAT = _NoHeartbeat()


def _running_without_heartbeat(rdb: RDBStorage, study_id: int) -> list[int]:
    from optuna.storages._rdb import models

    query = (
        sqlalchemy.select(models.TrialModel.trial_id)
        .outerjoin(
            models.TrialHeartbeatModel,
            models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id,
        )
        .where(
            models.TrialModel.study_id == study_id,
            models.TrialModel.state == TrialState.RUNNING,
            models.TrialHeartbeatModel.trial_id.is_(None),
        )
    )
    with rdb.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def _with_token(template: FrozenTrial | None, token: str) -> FrozenTrial:
    """``template`` (or a new RUNNING trial, as Optuna makes one) carrying ``token``."""
    if template is None:
        return FrozenTrial(
            number=-1,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=datetime.datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={},
            system_attrs={CREATE_TOKEN_ATTR: token},
            intermediate_values={},
            trial_id=-1,
        )
    out = copy.copy(template)  # a retry's template carries its original's token: replace it
    out._system_attrs = {**template.system_attrs, CREATE_TOKEN_ATTR: token}
    return out
