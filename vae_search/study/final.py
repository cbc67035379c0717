"""The ``finalize:`` section of a finalists' study spec, written by ``vae-search finalize``.

A finalists' study (``STUDY.final`` beside the search ``STUDY``, in the same storage) holds
one enqueued trial per (finalist, seed): its record ``finalist_config`` (the system attribute
``vae_search:finalist_config``, read through :mod:`vae_search.records`) is the whole run config
to train (the search trial's, with the seed and the final evaluation set), its record
``finalist`` says which search trial, rank and seed it is, and its one user attribute
``finalist_of`` says the same in a few words, for plain Optuna. Its workers are ordinary workers: the same
budget gate, heartbeats, retries and checkpoint resume; they train the enqueued configs and
never sample new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vae_search import records

DEFAULT_K = 5000  # IWAE k of the final evaluation: yburda/iwae and the VampPrior paper use 5000
FINALIST_CONFIG = records.FINALIST_CONFIG  # trial record: the run config to train
FINALIST = records.FINALIST  # trial record: which search trial, rank and seed


@dataclass
class FinalizeSpec:
    """``finalize:``: whose finalists these are and how they are evaluated.

    Attributes:
        of: the search study's name.
        k: IWAE samples of the final NLL estimate.
        split: ``test`` (the default and the point), or ``val`` for a check on the search's
            own split.
    """

    of: str = ""
    k: int = DEFAULT_K
    split: Literal["test", "val"] = "test"

    def problems(self) -> list[str]:
        out = []
        if not self.of:
            out.append("of: required (the search study's name)")
        if self.k < 1:
            out.append(f"k: must be at least 1 (IWAE samples), got {self.k}")
        return out


def final_study_name(study_name: str) -> str:
    """The finalists' study linked to search study ``study_name`` (same storage)."""
    return f"{study_name}.final"


def final_label(spec: FinalizeSpec) -> str:
    """The finalists' study's metric name (short: ``optuna best-trial`` prints it in every row)."""
    return f"{'test' if spec.split == 'test' else 'val'} IWAE NLL (k={spec.k})"


def finalist_of(info: dict) -> str:
    """A finalist run's user attribute ``finalist_of``: which search trial and seed, in words."""
    return f"trial {info['trial']}, seed {info['seed']}"


def final_value(final: dict, split: str) -> float:
    """A finalist run's value: the IWAE NLL bound on ``split`` from its final figures."""
    return float(final["test"]["nll_iwae"] if split == "test" else final["nll_iwae"])
