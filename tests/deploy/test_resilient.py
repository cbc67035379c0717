"""The resilient storage wrapper: which errors it waits out, and that nothing runs twice."""

from __future__ import annotations

import logging
import time
import warnings

import optuna
import psycopg
import pytest
import sqlalchemy
from optuna.exceptions import StorageInternalError
from optuna.storages import InMemoryStorage
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.study import StudyDirection
from optuna.trial import TrialState
from sqlalchemy import exc as sa_exc

from vae_search.errors import StorageError
from vae_search.storage import open_storage
from vae_search.storage import resilient as resilient_mod
from vae_search.storage.resilient import (
    CREATE_TOKEN_ATTR,
    ResilientStorage,
    Retrier,
    classify,
    resilient,
)

URL = "postgresql+psycopg://vae:s3cret-pw@db.example:5432/studies"


def refused() -> Exception:
    """A real 'connection refused' as Optuna raises it (StorageInternalError over SQLAlchemy's)."""
    engine = sqlalchemy.create_engine("postgresql+psycopg://u:s3cret-pw@127.0.0.1:1/x")
    try:
        engine.connect()
    except sa_exc.OperationalError as e:
        try:
            raise StorageInternalError("An exception is raised during the commit.") from e
        except StorageInternalError as wrapped:
            return wrapped
    finally:
        engine.dispose()
    raise AssertionError("port 1 accepted a connection")


def dropped() -> Exception:
    """The error of a statement whose connection a server shutdown cut."""
    orig = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    try:
        raise StorageInternalError("commit failed") from sa_exc.OperationalError(
            "UPDATE trials", {}, orig, connection_invalidated=True
        )
    except StorageInternalError as e:
        return e


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(resilient_mod, "FIRST_DELAY", 0.01)
    monkeypatch.setattr(resilient_mod, "MAX_DELAY", 0.05)


def test_connection_failures_are_told_apart_from_other_errors():
    # a refused connection never reached the server; a shutdown cut one in flight
    assert classify(refused()) == "not_sent"
    assert classify(dropped()) == "lost"
    # errors no wait will fix are not retried
    for text in (
        'password authentication failed for user "vae"',
        "sorry, too many clients already",
        'database "x" does not exist',
    ):
        err = sa_exc.OperationalError("connect", {}, psycopg.OperationalError(text))
        assert classify(err) is None, text
    assert (
        classify(sa_exc.IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("dup"))) is None
    )
    assert (
        classify(sa_exc.ProgrammingError("SELEC", {}, psycopg.errors.SyntaxError("syntax"))) is None
    )
    assert classify(KeyError("Record does not exist.")) is None


def test_an_outage_is_waited_out_with_one_warning(caplog):
    retry = Retrier(URL, max_wait=5)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) <= 3:
            raise refused()
        return "ok"

    with caplog.at_level(logging.INFO, logger="vae_search.storage.resilient"):
        assert retry.call("get_trial", flaky) == "ok"
    warnings_ = [r for r in caplog.records if r.levelno == logging.WARNING]
    # one warning for the outage (not one per attempt), then one line when it is over
    assert len(warnings_) == 1 and "db.example:5432" in warnings_[0].getMessage()
    assert any("is back after" in r.getMessage() for r in caplog.records)
    assert "s3cret-pw" not in caplog.text


def test_a_long_outage_ends_in_one_line_without_the_password():
    retry = Retrier(URL, max_wait=0.3)
    t0 = time.monotonic()
    with pytest.raises(StorageError) as info:
        retry.call("get_trial", lambda: (_ for _ in ()).throw(refused()))
    # it gave up after max_wait, naming the host and the cause, never the password
    assert time.monotonic() - t0 < 2
    msg = str(info.value)
    assert msg.startswith("lost the study database at db.example:5432 for 0 s:")
    assert "Connection refused" in msg and msg.endswith("is it running?")
    assert "s3cret-pw" not in msg and "\n" not in msg


def test_other_errors_are_raised_at_once():
    retry = Retrier(URL, max_wait=5)
    calls = []

    def bad() -> None:
        calls.append(1)
        raise sa_exc.IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("dup"))

    with pytest.raises(sa_exc.IntegrityError):
        retry.call("set_trial_param", bad)
    assert len(calls) == 1


class LossyStorage(InMemoryStorage):
    """Commits a write, then loses the reply (``lose`` times), as a dropped connection does."""

    def __init__(self, lose: int = 1, duplicate: bool = False) -> None:
        super().__init__()
        self.lose = lose
        self.duplicate = duplicate

    def create_new_trial(self, study_id, template_trial=None):
        trial_id = super().create_new_trial(study_id, template_trial)
        if self.duplicate:  # Optuna's own inner retry made a second one
            self.duplicate = False
            super().create_new_trial(study_id, template_trial)
        if self.lose:
            self.lose -= 1
            raise dropped()
        return trial_id

    def set_trial_state_values(self, trial_id, state, values=None):
        done = super().set_trial_state_values(trial_id, state, values)
        if self.lose:
            self.lose -= 1
            raise dropped()
        return done


def test_a_trial_whose_creation_reply_was_lost_is_not_created_twice():
    inner = LossyStorage()
    storage = ResilientStorage(inner, URL, max_wait=5)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], "s")
    trial_id = storage.create_new_trial(study_id)
    trials = inner.get_all_trials(study_id)
    # the committed trial was found by its token and returned; no second one was made
    assert [t._trial_id for t in trials] == [trial_id]
    assert trials[0].state == TrialState.RUNNING and CREATE_TOKEN_ATTR in trials[0].system_attrs


def test_a_duplicate_from_an_inner_retry_is_failed():
    inner = LossyStorage(duplicate=True)
    storage = ResilientStorage(inner, URL, max_wait=5)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], "s")
    trial_id = storage.create_new_trial(study_id)
    states = {t._trial_id: t.state for t in inner.get_all_trials(study_id)}
    # the first is the trial; the duplicate is failed, so no heartbeat-less RUNNING one is left
    assert states == {trial_id: TrialState.RUNNING, trial_id + 1: TrialState.FAIL}


def test_a_state_change_whose_reply_was_lost_is_not_repeated():
    inner = LossyStorage(lose=0)
    storage = ResilientStorage(inner, URL, max_wait=5)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], "s")
    trial_id = storage.create_new_trial(study_id)
    inner.lose = 1
    # a repeat would raise UpdateFinishedTrialError: the read-back sees it done instead
    assert storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [1.5]) is True
    assert inner.get_trial(trial_id).values == [1.5]


def test_a_retry_template_gets_a_fresh_token():
    inner = LossyStorage(lose=0)
    storage = ResilientStorage(inner, URL, max_wait=5)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], "s")
    first = inner.get_trial(storage.create_new_trial(study_id))
    second = inner.get_trial(storage.create_new_trial(study_id, template_trial=first))
    # a retry copies its original's system attributes; its token must still be its own
    assert second.system_attrs[CREATE_TOKEN_ATTR] != first.system_attrs[CREATE_TOKEN_ATTR]


def test_only_database_servers_are_wrapped(tmp_path):
    sqlite = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    # a SQLite file has no connection to lose; other storages are left as they are
    assert resilient(sqlite) is sqlite
    memory = InMemoryStorage()
    assert resilient(memory) is memory


@pytest.mark.postgres
def test_heartbeats_and_stale_trial_retries_work_through_the_wrapper(pg_url, pg_study):
    storage = resilient(open_storage(pg_url, heartbeat_interval=1, grace_period=1))
    assert isinstance(storage, ResilientStorage) and is_heartbeat_enabled(storage)
    assert storage.url == pg_url  # the RDBStorage's attributes show through

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        time.sleep(1.2)  # long enough for a second heartbeat
        return x

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(study_name=pg_study, storage=storage)
        # Optuna keeps the wrapper (it only wraps a bare RDBStorage in its cache)
        assert study._storage is storage
        study.optimize(objective, n_trials=1)
        # the heartbeat thread wrote through the wrapper
        with storage.engine.connect() as c:
            beats = c.execute(
                sqlalchemy.text("SELECT count(*) FROM trial_heartbeats WHERE trial_id = :t"),
                {"t": study.trials[0]._trial_id},
            )
            assert beats.scalar_one() == 1
        # a trial left RUNNING by a dead worker: its heartbeat stops, a later check fails it
        trial_id = storage.create_new_trial(study._study_id)
        storage.set_trial_param(trial_id, "x", 0.25, optuna.distributions.FloatDistribution(0, 1))
        storage.record_heartbeat(trial_id)
        time.sleep(2.5)
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    # the retry has the stale trial's parameters and points back to it
    assert trials[2].params == {"x": 0.25}
    assert trials[2].system_attrs["failed_trial"] == 1
    storage.remove_session()


@pytest.mark.postgres
def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_retried(pg_url, pg_study):
    storage = resilient(open_storage(pg_url, heartbeat_interval=1, grace_period=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(study_name=pg_study, storage=storage)
        # created, then its worker died: RUNNING, and no heartbeat was ever written
        trial_id = storage.create_new_trial(study._study_id)
        storage.set_trial_param(trial_id, "x", 0.5, optuna.distributions.FloatDistribution(0, 1))
        optuna.storages.fail_stale_trials(study)
        # a heartbeat-less trial is not stale at first sight: its first heartbeat may be coming
        assert study.trials[0].state == TrialState.RUNNING
        time.sleep(1.5)
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    # after a grace period without any heartbeat it is failed and retried with its parameters
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[1].params == {"x": 0.5} and trials[1].system_attrs["failed_trial"] == 0
    storage.remove_session()
