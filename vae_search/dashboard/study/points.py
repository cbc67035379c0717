"""What the study figures and the report show of each finished trial, read from its
parameters and user attributes.

β is the one the model reached (the last β of its schedule), not the target: a warm-up cut
short by pruning or by the epoch budget stops below it. A parameter the study did not search
is read from the trial's ``config``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from vae_search import records
from vae_search.dashboard.trial.notes import beta_reached
from vae_search.study.objectives import primary_value


@dataclass
class TrialPoint:
    """What the figures show of one finished trial."""

    number: int
    state: str
    value: float | None
    beta: float | None  # reached: the last β it trained with
    target_beta: float | None
    rate: float | None
    schedule: str | None
    latent_dim: int | None
    prior: str
    active_units: int | None
    prune_reason: str | None

    @property
    def ending(self) -> str | None:
        """The outline key: why it was pruned, ``failed``, or None (completed)."""
        return "failed" if self.state == "FAIL" else self.prune_reason

    @property
    def active_fraction(self) -> float | None:
        if self.active_units is None or not self.latent_dim:
            return None
        return self.active_units / self.latent_dim

    def hover(self) -> str:
        au = f"{self.active_units}/{self.latent_dim}" if self.active_units is not None else "?"
        end = self.state.lower() + (f" ({self.prune_reason})" if self.prune_reason else "")
        value = f"{self.value:.3f}" if self.value is not None else "none"
        rate = f", rate {_g(self.rate)}" if self.schedule in (None, "linear") else ""
        return (
            f"trial {self.number}: {end}<br>active units {au}<br>{self.beta_text()}{rate}, "
            f"prior {self.prior}<br>objective {value}"
        )

    def beta_text(self) -> str:
        """'β reached 0.35 (target 2.69)'; 'β 33.1 (constant)'."""
        if self.schedule == "constant":
            return f"β = {_g(self.target_beta)} (constant)"
        return f"β reached {_g(self.beta)} (target {_g(self.target_beta)})"


def _g(v: float | None) -> str:
    return f"{v:.3g}" if v is not None else "?"


def setting(t: FrozenTrial, dotted: str) -> Any:
    """The trial's value of a dotted run-config key: its parameter, else its ``config``."""
    if dotted in t.params:
        return t.params[dotted]
    node: Any = records.trial_config(t) or {}
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def final_active_units(t: FrozenTrial) -> int | None:
    """Active units at the end: the final figure, else the pruned epoch's, else the last."""
    final = records.trial_final(t)
    if "active_units" in final:
        return int(final["active_units"])
    pruned = records.record(t, records.PRUNED_ACTIVE_UNITS)
    if pruned is not None:
        return int(pruned)
    au = records.active_units_history(t)
    return int(au[-1]) if au else None


def trial_points(study: optuna.Study) -> list[TrialPoint]:
    """Every finished trial with a config (running and waiting ones are left out)."""
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    points = []
    for t in study.get_trials(deepcopy=False, states=done):
        if not records.has_record(t, records.CONFIG) and not t.params:
            continue
        value = primary_value(t) if t.state == TrialState.COMPLETE else None
        latent = setting(t, "model.latent_dim") or records.latent_dim(t)
        history = records.trial_history(t)
        history = history if isinstance(history, dict) else {}
        points.append(
            TrialPoint(
                number=t.number,
                state=t.state.name,
                value=value if value is not None and math.isfinite(value) else None,
                beta=beta_reached(history, records.record(t, records.FINAL)),
                target_beta=_float(setting(t, "schedule.beta")),
                rate=_float(setting(t, "schedule.rate")),
                schedule=setting(t, "schedule.kind"),
                latent_dim=int(latent) if latent is not None else None,
                prior=str(setting(t, "prior.kind") or "?"),
                active_units=final_active_units(t),
                prune_reason=records.prune_reason(t)
                if t.state == TrialState.PRUNED
                else None,
            )
        )
    return points


def _float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
