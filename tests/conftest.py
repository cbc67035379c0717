"""Shared fixtures: a small, fast run config on generated data; storage backends, unique study
names and a small study spec."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from vae_search.config import RunConfig

PG_ENV = "VAE_SEARCH_TEST_POSTGRES_URL"
PG_SKIP = f"set {PG_ENV}=postgresql+psycopg://user@host:5432/db to run the PostgreSQL tests"


@pytest.fixture
def pg_url() -> str:
    """The PostgreSQL URL under test, or skip naming the variable that turns the tests on."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(PG_SKIP)
    return url


def drop_study(url: str, name: str) -> None:
    """Delete study ``name`` if it exists (a fixture's clean-up: reruns never collide)."""
    import warnings

    import optuna

    from vae_search.storage import open_storage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = open_storage(url)
        try:
            optuna.delete_study(study_name=name, storage=storage)
        except KeyError:
            pass
        finally:
            storage.remove_session()
            storage.engine.dispose()


def small_config(**over) -> RunConfig:
    base = {
        "data": {"name": "shapes", "size": 1200, "image_size": 16},
        "model": {"hidden": [64], "latent_dim": 4},
        "schedule": {"kind": "linear", "beta": 1.0, "rate": 0.5},
        "eval": {"iwae_samples": 10, "iwae_max_examples": 100},
        "epochs": 3,
        "batch_size": 64,
        "device": "cpu",
        "threads": 1,
        "images": False,
    }
    from vae_search.config import merge

    return RunConfig.from_dict(merge(base, over))


@pytest.fixture
def small_cfg() -> RunConfig:
    return small_config()


optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage backend in turn: SQLite in tmp_path, then PostgreSQL (if configured)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studies.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def study_name(storage_url: str) -> Iterator[str]:
    """A fresh study name, deleted from the storage afterwards (reruns never collide)."""
    name = f"vs-test-{uuid.uuid4().hex[:12]}"
    yield name
    drop_study(storage_url, name)


@pytest.fixture
def spec_dict() -> Callable[..., dict[str, Any]]:
    """Factory of a small valid study spec (a dict); keyword arguments replace top-level keys."""
    return _spec_dict


def _spec_dict(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "study": "unit",
        "run": {"data": {"name": "shapes", "size": 200, "image_size": 8}, "epochs": 4},
        "space": {
            "schedule.beta": {"type": "float", "low": 0.1, "high": 10.0, "log": True},
            "model.latent_dim": {"type": "int", "low": 2, "high": 16},
            "prior.kind": {"type": "categorical", "choices": ["standard", "mog", "vamp"]},
            "prior.components": {
                "type": "int",
                "low": 2,
                "high": 20,
                "when": {"prior.kind": ["mog", "vamp"]},
            },
            "model.hidden": {"type": "categorical", "choices": [[256], [512, 256], []]},
        },
    }
    base.update(over)
    return base
