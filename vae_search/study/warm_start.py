"""Warm start: give a new study's sampler an earlier study's finished trials.

``warm_start: {study: NAME, storage: URL, top: N}`` in a spec (``storage`` defaults to the new
study's own). Once, when a worker first opens the new study, the earlier study's ``top`` best
COMPLETE trials (its own ranking: the first objective, trials that kept their active units
first) are copied in with ``study.add_trials`` as COMPLETE trials, with values recomputed for
the *new* objective from their ``final`` figures (so a ``[distortion, rate]`` study can start
from an ``nll_iwae`` one).

Why ``add_trials`` and not ``enqueue_trial``: enqueuing re-runs the parameters, paying for every
training again and throwing the known values away; adding the finished trials hands the
sampler (TPE, GP, NSGA-II, bruteforce) the values at no cost. The copies are marked with the
record ``warm_start`` (``{study, trial}``: the system attribute ``vae_search:warm_start``, read
through :mod:`vae_search.records`, so ``optuna best-trial`` prints a copy as narrow as any
trial), do not count against ``n_trials``, and are never ranked as the new study's results
(``status``, ``export``, the front and ``finalize`` skip them).

Spaces: a copied parameter must be in the new space and its value inside the new distribution.
A parameter the new space does not have is dropped from the copies and reported (one warning,
and the study's user attribute ``warm_start``); a trial whose value lies outside the new range
(or whose figures lack the new objective) is skipped whole and reported.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState, create_trial

from vae_search import records
from vae_search.study.collapse import is_collapsed
from vae_search.study.objectives import objective_values

log = logging.getLogger(__name__)

WARM_ATTR = records.WARM_START  # a copy's record (its origin); study user attr: what was copied


@dataclass
class WarmStartSpec:
    """``warm_start:``: the earlier study, its storage (null: this study's) and how many of its
    best trials to copy."""

    study: str = ""
    storage: str | None = None
    top: int = 20

    def problems(self) -> list[str]:
        out = []
        if not self.study:
            out.append("study: required (the earlier study's name)")
        if self.top < 1:
            out.append(f"top: must be at least 1, got {self.top}")
        return out


def is_warm_copy(t: FrozenTrial) -> bool:
    """A trial copied in by a warm start (not a result of this study); an older study's copies
    carry the mark as a user attribute."""
    return records.has_record(t, records.WARM_START)


def _ranked(source: optuna.Study) -> list[FrozenTrial]:
    done = [t for t in source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values and all(math.isfinite(v) for v in t.values) and not is_warm_copy(t)]
    sign = 1.0 if source.directions[0] == optuna.study.StudyDirection.MINIMIZE else -1.0
    return sorted(done, key=lambda t: (is_collapsed(t), sign * t.values[0], t.number))


def warm_trials(
    source: optuna.Study, distributions: dict[str, Any], objective: str | list[str], top: int
) -> tuple[list[FrozenTrial], dict[str, Any]]:
    """The copies to add to the new study, and what was left out and why.

    Args:
        source: the earlier study.
        distributions: the new space, parameter name -> Optuna distribution.
        objective: the new study's ``objective:``.
        top: how many of the source's best trials to copy.
    """
    copies, outside, skipped = [], {}, []
    for t in _ranked(source)[:top]:
        final = records.trial_final(t)
        try:
            values = objective_values(final, objective)
        except (KeyError, TypeError, ValueError):
            skipped.append({"trial": t.number, "why": "its final figures lack the new objective"})
            continue
        params, dists, bad = {}, {}, None
        for name, value in t.params.items():
            dist = distributions.get(name)
            if dist is None:
                outside.setdefault(name, []).append(t.number)
                continue
            try:
                ok = dist._contains(dist.to_internal_repr(value))
            except (ValueError, TypeError):
                ok = False
            if not ok:
                bad = f"{name} = {value!r} is outside the new space"
                break
            params[name], dists[name] = value, dist
        if bad is not None:
            skipped.append({"trial": t.number, "why": bad})
            continue
        kept = {k: records.record(t, k) for k in ("final", "latent_dim", "active_units", "config")
                if records.has_record(t, k)}
        kept[records.WARM_START] = {"study": source.study_name, "trial": t.number}
        copies.append(create_trial(values=values, params=params, distributions=dists,
                                   system_attrs={records.key(k): v for k, v in kept.items()}))
    report = {"from": source.study_name, "added": len(copies),
              "outside_params": {k: sorted(v) for k, v in outside.items()}, "skipped_trials": skipped}
    return copies, report


def report_lines(report: dict[str, Any]) -> list[str]:
    """What a warm start left out, in words."""
    lines = [f"warm start: {report['added']} trial(s) of {report['from']!r} given to the sampler"]
    for name, trials in report["outside_params"].items():
        lines.append(f"warm start: parameter {name} is not in this study's space; skipped "
                     f"(in trials {', '.join(map(str, trials))} of {report['from']!r})")
    for s in report["skipped_trials"]:
        lines.append(f"warm start: trial {s['trial']} of {report['from']!r} skipped: {s['why']}")
    return lines


def apply_warm_start(study: optuna.Study, source: optuna.Study, distributions: dict[str, Any],
                     objective: str | list[str], top: int) -> dict[str, Any] | None:
    """Copy the source's trials into ``study`` once (call it under the study lock); return the
    report, or None when the study was warm-started already."""
    if WARM_ATTR in study.user_attrs:
        return None
    copies, report = warm_trials(source, distributions, objective, top)
    study.add_trials(copies)
    study.set_user_attr(WARM_ATTR, report)
    for line in report_lines(report):
        (log.warning if "skipped" in line else log.info)(line)
    return report
