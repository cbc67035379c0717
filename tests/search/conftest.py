"""Fixtures of the search tests: storage backends, unique study names, a small spec."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.conftest import drop_study

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
