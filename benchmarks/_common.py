"""Shared pieces of the search benchmarks: load a spec with overrides, run studies, count."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml

from vae_search.config import merge
from vae_search.study.spec import StudySpec

SPECS = Path(__file__).parent / "specs"


def spec_with(path: Path, tmp: Path, **over: Any) -> StudySpec:
    data = merge(yaml.safe_load(path.read_text()), over)
    out = tmp / f"{data['study']}.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return StudySpec.from_file(out)


def quiet() -> None:
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")


def epochs_run(study: optuna.Study) -> int:
    return sum(len(t.intermediate_values) for t in study.trials)  # one report per epoch run


def emit(rows: list[dict], row: dict) -> None:
    """Keep a result row and print it as one JSON line (results show as they come)."""
    rows.append(row)
    print(json.dumps(row), flush=True)


def save_rows(path: str | None, rows: list[dict]) -> None:
    """Write all rows to ``path`` as a JSON list (``--json``; None: nothing)."""
    if path:
        Path(path).write_text(json.dumps(rows, indent=2))
