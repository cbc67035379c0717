"""Shared fixtures: a small, fast run config on generated data."""

from __future__ import annotations

import pytest

from vae_search.config import RunConfig


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
