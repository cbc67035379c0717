"""Shared fixtures: a small, fast run config on generated data."""

from __future__ import annotations

import os

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

    from vae_search.search.storage import open_storage

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
