"""Finalists: the search's top configurations re-trained with several seeds, as the enqueued
trials of a linked study ``STUDY.final`` in the same storage, and evaluated with the IWAE bound
at k (default 5000) on the test split (see :mod:`vae_search.study.final`).

:func:`prepare_finalists` creates that study and enqueues one trial per (configuration, seed);
:func:`finalist_spec` is the study spec its workers run (``vae-search worker FILE`` anywhere,
or ``vae-search finalize`` locally): ordinary workers with the usual budget gate, heartbeats,
retries and checkpoint resume, which train the enqueued configs and sample nothing.

Seeds: finalist j of a configuration trains with run seed ``search seed + j + 1`` (j = 0..S-1),
so no finalist repeats the search run, whose seed it was picked on. The data split
(``data.split_seed``) stays the search's: the finalists see the same training set.
Finalists are never pruned (a seed that collapses is part of the configuration's spread); the
collapse constraint is still recorded.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial

from vae_search import records
from vae_search.errors import ConfigError, VaeSearchError
from vae_search.study.final import (
    DEFAULT_K,
    FINALIST,
    FINALIST_CONFIG,
    final_study_name,
    finalist_of,
)
from vae_search.study.spec import StorageSpec, StudySpec
from vae_search.workers.worker import open_study

log = logging.getLogger(__name__)

PLAN_ATTR = "finalize"  # study user attr of STUDY.final: what was asked


def search_config(t: FrozenTrial) -> dict[str, Any]:
    """The run config a search trial trained (read in one place: its storage may change)."""
    cfg = records.trial_config(t)
    if not isinstance(cfg, dict):
        raise VaeSearchError(f"trial {t.number} has no stored run config; it cannot be finalized")
    return copy.deepcopy(cfg)


def check_request(chosen: list[FrozenTrial], study_name: str, seeds: int, k: int, split: str) -> None:
    """One line for each bad request (raised together)."""
    problems = []
    if seeds < 1:
        problems.append(f"--seeds: must be at least 1 (runs per finalist; 3-10 is usual), got {seeds}")
    if k < 1:
        problems.append(f"--k: must be at least 1 (IWAE samples; papers use 5000), got {k}")
    if split not in ("test", "val"):
        problems.append(f"--split: must be test or val, got {split!r}")
    if problems:
        raise ConfigError("; ".join(problems))
    if not chosen:
        raise VaeSearchError(
            f"study {study_name!r} has no completed trial to finalize; run its workers first "
            f"(vae-search status {study_name} shows its trials)"
        )


def finalist_configs(
    chosen: list[FrozenTrial], of: str, seeds: int, k: int, split: str
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(run config, ``finalist`` record) for every configuration and seed, in rank order."""
    out = []
    for rank, t in enumerate(chosen, start=1):
        base = search_config(t)
        for j in range(seeds):
            cfg = copy.deepcopy(base)
            cfg["seed"] = int(base.get("seed", 0)) + j + 1
            cfg.setdefault("eval", {})
            cfg["eval"]["test"] = split == "test"
            if split == "test":
                # the validation bound keeps the search's k (comparable with the search's figure)
                cfg["eval"]["test_iwae_samples"] = k
            else:
                cfg["eval"]["iwae_samples"] = k
                cfg["eval"]["iwae_max_examples"] = None  # the whole split
            cfg["provenance"] = None
            info = {"of": of, "trial": t.number, "rank": rank, "seed_index": j, "seed": cfg["seed"],
                    "k": k, "split": split, "params": t.params,
                    "search_value": t.values[0] if t.values else None}
            out.append((cfg, info))
    return out


def finalist_spec(of: str, runs: list[tuple[dict[str, Any], dict[str, Any]]], k: int, split: str,
                  storage: StorageSpec | None = None) -> StudySpec:
    """The spec of the finalists' study: n_trials is one per run, nothing is sampled."""
    return StudySpec.from_dict(finalist_spec_dict(of, runs, k, split, storage), source=f"finalists of {of}")


def finalist_spec_dict(of: str, runs: list[tuple[dict[str, Any], dict[str, Any]]], k: int, split: str,
                       storage: StorageSpec | None = None) -> dict[str, Any]:
    """:func:`finalist_spec` as the YAML-ready mapping ``vae-search worker FILE`` reads."""
    return {
        "study": final_study_name(of),
        "objective": "nll_iwae",
        "n_trials": len(runs),
        "sampler": {"kind": "random", "seed": 0},
        "pruner": {"collapse": {"enabled": False}, "performance": {"kind": "none"}, "constraint": True},
        "storage": dataclasses.asdict(storage or StorageSpec()),
        "run": runs[0][0],  # every trial trains its own enqueued config; this one is preflighted
        "space": {},
        "finalize": {"of": of, "k": k, "split": split},
    }


def enqueued_finalist(cfg: dict[str, Any], info: dict[str, Any]) -> FrozenTrial:
    """A WAITING trial that runs ``cfg``, as ``study.enqueue_trial({})`` makes one, with the run
    config and ``finalist`` record as system attributes (plain Optuna prints user attributes:
    the whole config there made ``optuna best-trial`` thousands of characters wide) and the
    one short user attribute ``finalist_of``."""
    return optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING,
        system_attrs={"fixed_params": {}, records.key(FINALIST_CONFIG): cfg, records.key(FINALIST): info},
        user_attrs={records.FINALIST_OF: finalist_of(info)},
    )


def prepare_finalists(
    search: optuna.Study,
    chosen: list[FrozenTrial],
    url: str,
    *,
    seeds: int,
    k: int = DEFAULT_K,
    split: str = "test",
    storage: StorageSpec | None = None,
    spec_out: Path | None = None,
) -> StudySpec:
    """Create ``STUDY.final`` in ``url`` and enqueue one trial per (configuration, seed), or
    find it already holding exactly these runs (then the ones left are run: a resume). Write the
    finalists' spec to ``spec_out`` when given. Return the spec.

    Raises:
        ConfigError: ``seeds`` or ``k`` below 1, or an unknown split.
        VaeSearchError: nothing completed to finalize, or ``STUDY.final`` holds other runs.
    """
    check_request(chosen, search.study_name, seeds, k, split)
    runs = finalist_configs(chosen, search.study_name, seeds, k, split)
    raw = finalist_spec_dict(search.study_name, runs, k, split, storage)
    spec = StudySpec.from_dict(raw, source=f"finalists of {search.study_name}")
    final, _ = open_study(spec, url)
    want = [(info["trial"], info["seed"]) for _, info in runs]
    have = set(
        (records.record(t, FINALIST)["trial"], records.record(t, FINALIST)["seed"])
        for t in final.get_trials(deepcopy=False)
        if isinstance(records.record(t, FINALIST), dict) and not records.has_record(t, records.RETRY_OF)
        and not records.has_record(t, records.REQUEUED_FROM)
    )
    if have and have != set(want):
        raise VaeSearchError(
            f"study {final.study_name!r} already holds other finalists ({len(have)} runs of trials "
            f"{sorted({n for n, _ in have})}); delete it first: optuna delete-study --study-name "
            f"'{final.study_name}' --storage URL"
        )
    if not have:
        final.set_user_attr(PLAN_ATTR, {"of": search.study_name, "trials": [t.number for t in chosen],
                                        "seeds": seeds, "k": k, "split": split})
        final.add_trials([enqueued_finalist(cfg, info) for cfg, info in runs])
        log.info("enqueued %d finalist runs (%d configurations x %d seeds) in %s",
                 len(runs), len(chosen), seeds, final.study_name)
    else:
        log.info("%s already holds these finalists: running the ones left", final.study_name)
    if spec_out is not None:
        spec_out.parent.mkdir(parents=True, exist_ok=True)
        spec_out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return spec
