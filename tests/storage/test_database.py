"""Storage: URL resolution, redaction, each backend end to end, and every error message.

``TestBackends`` runs once per backend: SQLite in tmp_path, and PostgreSQL when
VAE_SEARCH_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from vae_search.errors import StorageError
from vae_search.storage import (
    DEFAULT_URL,
    ENV_VAR,
    create_or_load_study,
    open_storage,
    redact,
    resolve_url,
    server_address,
)
from vae_search.storage.database import translate

SECRET = "s3cret-pw"

WORKER = textwrap.dedent(
    """
    import sys, time
    from vae_search.storage import create_or_load_study, open_storage
    url, name, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    time.sleep(max(0.0, start - time.time()))
    study = create_or_load_study(open_storage(url, heartbeat_interval=5), name)
    print(study._study_id)
    """
)


def run_workers(url: str, name: str, n: int = 4) -> list[str]:
    """Start ``n`` processes that open the storage and create-or-load ``name`` at one instant."""
    start = str(time.time() + 3.0)  # after every interpreter has imported optuna
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, name, start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    return [out.strip() for out, _ in outs]


def with_password(url: str, password: str = SECRET, **parts: object) -> str:
    return make_url(url).set(password=password, **parts).render_as_string(hide_password=False)


def where(pg_url: str) -> str:
    url = make_url(pg_url)
    return f"{url.host}:{url.port or 5432}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_no_secret(
    error: BaseException, caplog: pytest.LogCaptureFixture, secret: str = SECRET
) -> None:
    assert secret not in str(error)
    assert secret not in caplog.text


def real_or_fake_password(pg_url: str) -> str:
    """The URL's own password (a password-checking server needs it), else SECRET (trust)."""
    return make_url(pg_url).password or SECRET


# -- URLs ----------------------------------------------------------------------------------------
def test_resolve_order_cli_then_env_then_default(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    # The default is vae_search.db in the current directory, made absolute.
    assert DEFAULT_URL == "sqlite:///vae_search.db"
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'vae_search.db'}"
    monkeypatch.setenv(ENV_VAR, "sqlite:///env.db")
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'env.db'}"
    assert resolve_url("sqlite:////abs/cli.db") == "sqlite:////abs/cli.db"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("grpc://localhost:13000", "grpc://localhost:13000"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
    ],
)
def test_accepted_forms_are_normalised(given: str, expected: str) -> None:
    assert resolve_url(given) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"mysql://u:{SECRET}@h/db", "unsupported storage URL 'mysql://u:***@h/db' (mysql)"),
        (f"postgresql://u:{SECRET}@h:notaport/db", "malformed storage URL"),
        (f"nonsense u:{SECRET}@x", "malformed storage URL"),
        (f"postgresql://u:{SECRET}@h", "names no database"),
        ("grpc://hostonly", "expected grpc://HOST:PORT"),
    ],
)
def test_rejected_urls_name_the_accepted_forms(url: str, message: str) -> None:
    with pytest.raises(StorageError) as info:
        resolve_url(url)
    assert message in str(info.value)
    assert SECRET not in str(info.value)
    if "grpc" not in url:
        assert "accepted: sqlite:///PATH, postgresql://" in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql+psycopg://bob:{SECRET}@h:5432/db", "postgresql+psycopg://bob:***@h:5432/db"),
        ("postgresql+psycopg://bob@h/db", "postgresql+psycopg://bob@h/db"),
        # Unparsable (a raw "@" and "/" in the password): everything up to the last "@" goes.
        (f"postgresql://bob:{SECRET}/x@y@h:5432/db", "postgresql://bob:***@h:5432/db"),
        (f"bob:{SECRET}@h/db", "bob:***@h/db"),
        (f"postgresql://h/db?user=bob&password={SECRET}", "password=***"),
    ],
)
def test_redact_hides_the_password(url: str, expected: str) -> None:
    assert expected in redact(url)
    assert SECRET not in redact(url)


def test_a_raw_at_sign_in_the_password_is_refused_before_any_connection() -> None:
    # "p@" + SECRET: a parser would take SECRET + "@127.0.0.1" for the host and print it
    url = f"postgresql://vae:p@{SECRET}@127.0.0.1:1/db"
    with pytest.raises(StorageError) as info:
        resolve_url(url)
    assert str(info.value) == (
        "malformed storage URL 'postgresql+psycopg://vae:***@127.0.0.1:1/db': a raw '@' in the"
        " user name or password; write it as %40"
    )
    # and a library caller who skips resolve_url still gets the server, not the password's tail
    error = RuntimeError('connection to server at "127.0.0.1", port 1 failed: Connection refused')
    message = str(translate(error, url))
    assert "postgres at 127.0.0.1:1: connection refused" in message and SECRET not in message
    assert resolve_url(f"postgresql://vae:p%40{SECRET}@127.0.0.1:1/db")  # the encoded form is fine


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("postgresql://u:pw@h:6000/db", "h:6000"),
        ("postgresql://u@h/db?sslmode=require", "h:5432"),
        ("postgresql://u:pw@[::1]:6000/db", "[::1]:6000"),
        ("postgresql://u@[::1]/db", "[::1]:5432"),
        ("postgresql:///db", "localhost:5432"),
    ],
)
def test_server_address_names_host_and_port(url: str, address: str) -> None:
    assert server_address(url) == address


# -- every backend -------------------------------------------------------------------------------
class TestBackends:
    def test_round_trip(self, storage_url: str, study_name: str) -> None:
        study = create_or_load_study(open_storage(storage_url), study_name)
        trial = study.ask()
        trial.suggest_float("schedule.beta", 0.1, 10.0, log=True)
        trial.set_user_attr("active_units", [3, 4])
        trial.report(91.5, 1)
        study.tell(trial, 90.25)
        # A second storage object (another worker) reads back what the first wrote.
        again = create_or_load_study(open_storage(storage_url), study_name)
        (back,) = again.trials
        assert again._study_id == study._study_id
        assert back.params == trial.params and back.value == 90.25
        assert back.user_attrs == {"active_units": [3, 4]}
        assert back.intermediate_values == {1: 91.5}
        assert again.direction == optuna.study.StudyDirection.MINIMIZE

    def test_concurrent_workers_create_exactly_one_study(
        self, storage_url: str, study_name: str
    ) -> None:
        open_storage(storage_url)  # tables exist; the fresh-database race is tested below
        ids = run_workers(storage_url, study_name, n=4)
        # All four processes got the same study, and the storage holds just one of that name.
        assert len(set(ids)) == 1
        names = optuna.get_all_study_names(storage=open_storage(storage_url))
        assert names.count(study_name) == 1

    def test_existing_study_with_another_direction_is_an_error(
        self, storage_url: str, study_name: str
    ) -> None:
        storage = open_storage(storage_url)
        optuna.create_study(storage=storage, study_name=study_name, direction="maximize")
        with pytest.raises(StorageError, match="exists with direction"):
            create_or_load_study(storage, study_name)

    def test_heartbeat_fails_and_requeues_a_stale_trial(
        self, storage_url: str, study_name: str
    ) -> None:
        storage = open_storage(storage_url, heartbeat_interval=1, grace_period=2, max_retry=1)
        study = create_or_load_study(storage, study_name)
        with warnings.catch_warnings():  # "heartbeats are meant for optimize()", "experimental"
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
            storage.record_heartbeat(trial._trial_id)  # then the worker "dies"
            time.sleep(3.5)
            optuna.storages.fail_stale_trials(study)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        # The stale trial failed and a copy with the same params waits to be run again.
        assert states == [TrialState.FAIL, TrialState.WAITING]
        assert study.trials[1].params == study.trials[0].params

    def test_connection_settings(self, storage_url: str) -> None:
        storage = open_storage(storage_url)
        if storage_url.startswith("sqlite"):
            path = make_url(storage_url).database
            with sqlite3.connect(path) as conn:
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert storage.engine_kwargs["connect_args"] == {"timeout": 60}
        else:
            # At most pool_size + max_overflow = 2 connections per worker process.
            assert (storage.engine.pool.size(), storage.engine.pool._max_overflow) == (1, 1)
            assert storage.engine_kwargs["pool_pre_ping"] is True


@pytest.mark.postgres
def test_fresh_postgres_database_survives_racing_table_creation(pg_url: str) -> None:
    import psycopg

    db = f"vs_test_{uuid.uuid4().hex[:10]}"
    url = make_url(pg_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        fresh = url.set(database=db).render_as_string(hide_password=False)
        # Four workers create Optuna's tables in an empty database at the same instant.
        assert len(set(run_workers(fresh, "race", n=4))) == 1
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def test_fresh_sqlite_file_survives_racing_table_creation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert len(set(run_workers(url, "race", n=4))) == 1


# -- error messages ------------------------------------------------------------------------------
@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_unreachable_postgres(debug_logs) -> None:
    port = free_port()
    with pytest.raises(StorageError) as info:
        open_storage(f"postgresql://bob:{SECRET}@127.0.0.1:{port}/db")
    assert str(info.value) == (
        f"could not connect to postgres at 127.0.0.1:{port}: connection refused — is the server"
        f" running? check --storage or {ENV_VAR}"
    )
    assert_no_secret(info.value, debug_logs)


def test_timeout_message() -> None:
    error = RuntimeError(
        'connection failed: connection to server at "10.1.2.3", port 5433 failed: timeout expired'
    )
    message = str(translate(error, f"postgresql+psycopg://bob:{SECRET}@10.1.2.3:5433/db"))
    assert message == (
        "could not connect to postgres at 10.1.2.3:5433: timeout — is the server running?"
        f" check --storage or {ENV_VAR}"
    )


def test_missing_postgres_database(pg_url: str, debug_logs) -> None:
    name = f"vs_missing_{uuid.uuid4().hex[:8]}"
    password = real_or_fake_password(pg_url)
    with pytest.raises(StorageError) as info:
        open_storage(with_password(pg_url, password, database=name))
    assert str(info.value).startswith(
        f"postgres at {where(pg_url)}: database {name} does not exist"
    )
    assert f"createdb -h {make_url(pg_url).host}" in str(info.value)
    assert_no_secret(info.value, debug_logs, password)


def test_missing_postgres_role(pg_url: str, debug_logs) -> None:
    role = f"vs_norole_{uuid.uuid4().hex[:8]}"
    with pytest.raises(StorageError) as info:
        open_storage(with_password(pg_url, username=role))
    # A trusting server says the role is missing; a password-checking one does not tell.
    assert str(info.value) in (
        f"postgres at {where(pg_url)}: role {role} does not exist: check --storage or {ENV_VAR}",
        f"password authentication failed for user {role} at {where(pg_url)}: check --storage"
        f" or {ENV_VAR}",
    )
    assert_no_secret(info.value, debug_logs)


def test_wrong_postgres_password(pg_url: str, debug_logs) -> None:
    import psycopg

    admin = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    role = f"vs_test_pw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        # .ci/run makes the server check passwords for members of this group (pg_hba.conf)
        group = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'vs_password_checked'").fetchone()
        member = " IN ROLE vs_password_checked" if group else ""
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'secret-xyz'{member}")
    try:
        url = with_password(pg_url, username=role)  # SECRET, not secret-xyz
        try:
            dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
            psycopg.connect(dsn).close()
        except psycopg.OperationalError:
            pass
        else:
            pytest.skip("the server's pg_hba.conf trusts this host, so any password is accepted "
                        "(.ci/run adds a scram-sha-256 line for the role vs_password_checked)")
        with pytest.raises(StorageError) as info:
            open_storage(url)
        assert str(info.value) == (
            f"password authentication failed for user {role} at {where(pg_url)}:"
            f" check --storage or {ENV_VAR}"
        )
        assert_no_secret(info.value, debug_logs)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_password_failure_message_from_the_server_text() -> None:
    # Verbatim psycopg 3 text from a PostgreSQL 15 server with scram-sha-256 authentication.
    error = RuntimeError(
        'connection failed: connection to server at "127.0.0.1", port 5499 failed: FATAL:  '
        'password authentication failed for user "vs_test_pw"'
    )
    message = str(translate(error, f"postgresql+psycopg://vs_test_pw:{SECRET}@127.0.0.1:5499/x"))
    assert message == (
        "password authentication failed for user vs_test_pw at 127.0.0.1:5499:"
        f" check --storage or {ENV_VAR}"
    )


def test_sqlite_directory_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(StorageError) as info:
        open_storage(f"sqlite:///{missing / 'x.db'}")
    assert str(info.value) == (
        f"cannot create SQLite database {missing / 'x.db'}: directory {missing} does not exist"
        f" (create it: mkdir -p {missing})"
    )


def test_old_schema_names_the_upgrade_command(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    open_storage(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:  # pretend an older Optuna made this file
        conn.execute("UPDATE alembic_version SET version_num = 'v3.0.0.d'")
    with pytest.raises(StorageError) as info:
        open_storage(f"sqlite:///{path}")
    assert f"optuna storage upgrade --storage 'sqlite:///{path}'" in str(info.value)


def test_old_schema_message_redacts_the_url() -> None:
    error = RuntimeError(
        "The runtime optuna version 5.0.0 is no longer compatible with the table schema (set up"
        " by optuna 4.0.0). Please execute `$ optuna storage upgrade --storage $STORAGE_URL` for"
        " upgrading the storage."
    )
    message = str(translate(error, f"postgresql+psycopg://bob:{SECRET}@h:5432/db"))
    assert "optuna storage upgrade --storage 'postgresql+psycopg://bob:***@h:5432/db'" in message
    assert SECRET not in message
