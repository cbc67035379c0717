"""The Markdown note of a trial: how it ended (completed, pruned for collapse or performance,
failed) with the figures that explain it."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vae_search.config import RunConfig, ScheduleConfig
from vae_search.metrics import mutual_info_at_ceiling, mutual_info_ceiling
from vae_search.study.collapse import CollapsePruner, collapse_threshold


@dataclass(frozen=True)
class CollapseRule:
    """The collapse pruner's settings, so a note can say the rule a pruned trial broke (see
    :mod:`vae_search.study.collapse`)."""

    min_active_units: int | None
    min_active_fraction: float | None
    patience: int
    warmup_epochs: int

    @classmethod
    def of(cls, pruner: Any) -> CollapseRule | None:
        """The rule of a live :class:`CollapsePruner` (None for any other pruner)."""
        if not isinstance(pruner, CollapsePruner):
            return None
        return cls(**pruner.collapse_settings)

    def threshold(self, latent_dim: int) -> float:
        return collapse_threshold(latent_dim, self.min_active_units, self.min_active_fraction)

    def formula(self, latent_dim: int) -> str:
        """How :meth:`threshold` is made: "max(1, 0.4 × 10)", "0.4 × 10" or "min_active_units"."""
        if self.min_active_fraction is None:
            return "min_active_units"
        share = f"{self.min_active_fraction:g} × {latent_dim}"
        return f"max({self.min_active_units}, {share})" if self.min_active_units else share


def _num(v: Any, digits: int = 2) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "?"


def _at(history: Mapping[str, Any], key: str, epoch: int | None) -> Any:
    """The history value of ``key`` at 1-based ``epoch`` (default: the last one)."""
    vals = history.get(key) or []
    if not vals:
        return None
    i = (epoch - 1) if epoch else len(vals) - 1
    return vals[i] if 0 <= i < len(vals) else vals[-1]


def _trajectory(au: Sequence[int]) -> str:
    if not au:
        return "none recorded"
    shown = list(au) if len(au) <= 12 else [*au[:5], "…", *au[-5:]]
    return " → ".join(str(a) for a in shown)


def beta_reached(
    history: Mapping[str, Any], final: Mapping[str, Any] | None = None
) -> float | None:
    """The β the model last trained with: the final figures' β, else the history's last
    (a warm-up cut short by pruning or by the epoch budget never reaches the target)."""
    if final and isinstance(final.get("beta"), (int, float)):
        return float(final["beta"])
    betas = [b for b in history.get("beta") or [] if isinstance(b, (int, float))]
    return float(betas[-1]) if betas else None


def beta_phrase(schedule: ScheduleConfig, reached: float | None) -> str:
    """β and its schedule in words: "β reached 0.35 of target 2.69, linear at 0.2/epoch"."""
    s = schedule
    if s.kind == "constant":
        return f"β = {s.beta:.3g} (constant)"
    start = f" from {s.beta_start:.3g}" if s.beta_start else ""
    how = {
        "linear": f"linear{start} at {s.rate:.3g}/epoch",
        "sigmoid": f"sigmoid{start} around epoch {s.midpoint:g}",
        "cyclical": f"cyclical{start}, {s.cycles} cycles",
    }.get(s.kind, s.kind)
    if reached is None:
        return f"β target {s.beta:.3g} (no epoch finished), {how}"
    if math.isclose(reached, s.beta, rel_tol=1e-6):
        return f"β reached its target {s.beta:.3g}, {how}"
    return f"β reached {reached:.3g} of target {s.beta:.3g}, {how}"


def settings_line(config: RunConfig, reached: float | None = None) -> str:
    """The settings that matter for collapse, on one line; ``reached``: see :func:`beta_reached`."""
    s, p = config.schedule, config.prior
    prior = p.kind + (f", {p.components} components" if p.kind != "standard" else "")
    sched = beta_phrase(s, reached)
    if s.free_bits:
        sched += f", free bits {s.free_bits:g}"
    return (
        f"latent size {config.model.latent_dim} · prior {prior} · {sched} · "
        f"{config.epochs} epochs · lr {config.optim.lr:g}"
    )


def trial_note(
    number: int,
    config: RunConfig,
    history: Mapping[str, Any],
    au: Sequence[int],
    outcome: str,
    info: Mapping[str, Any],
    value: float | None = None,
    rule: CollapseRule | None = None,
) -> str:
    """Markdown for ``save_note``: a headline saying how the trial ended, its key figures
    (active units per epoch, β, -ELBO at β = 1, KL, mutual information) and its settings.
    ``rule``: the collapse pruner's settings, to state the rule a collapsed trial broke."""
    d = config.model.latent_dim
    lines: list[str] = []
    if outcome == "pruned":
        reason = info.get("prune_reason", "unknown reason")
        epoch = info.get("pruned_epoch")
        active = info.get(
            "pruned_active_units", au[epoch - 1] if epoch and au[epoch - 1 :] else None
        )
        why = {"collapse": "posterior collapse", "performance": "performance"}.get(reason, reason)
        lines.append(f"### Trial {number}: pruned for **{why}** at epoch {epoch}")
        lines.append(f"**{active}/{d} active units** at epoch {epoch}.")
        if reason == "collapse":
            lines.append(_collapse_sentence(config, au, epoch, active, rule))
        elif reason == "performance":
            lines.append(
                "Its validation −ELBO at β = 1 was worse than the performance pruner "
                "allows at this epoch."
            )
        lines.append(_figures(history, epoch, config.eval.batch_size))
    elif outcome == "failed":
        done = len(history.get("elbo") or [])
        lines.append(f"### Trial {number}: failed")
        lines.append(f"Reason: `{info.get('fail_reason', 'not recorded')}`")
        lines.append(
            f"Epochs finished before it: {done}." + (" " + _figures(history, None, config.eval.batch_size) if done else "")
        )
    else:
        final = info.get("final") or {}
        active = final.get("active_units", au[-1] if au else None)
        head = f"### Trial {number}: complete, **{active}/{d} active units**"
        lines.append(head)
        figures = []
        if value is not None:
            figures.append(f"objective **{_num(value, 3)}**")
        if final.get("nll_iwae") is not None:  # None: not computed (objective elbo)
            figures.append(
                f"IWAE NLL bound {_num(final['nll_iwae'])} nats "
                f"(k = {final.get('iwae_samples', '?')})"
            )
        if "elbo" in final:
            figures.append(f"−ELBO {_num(final['elbo'])}")
        if "kl" in final:
            figures.append(f"KL {_num(final['kl'])}")
        if "mutual_info" in final:
            figures.append(f"mutual information {mutual_info_text(final['mutual_info'], config.eval.batch_size)}")
        if figures:
            lines.append(" · ".join(figures))
    lines.append(f"Active units per epoch: {_trajectory(au)}")
    reached = beta_reached(history, info.get("final"))
    lines.append(f"Settings: {settings_line(config, reached)}")
    return "\n\n".join(lines) + "\n"


def _collapse_sentence(
    config: RunConfig,
    au: Sequence[int],
    epoch: int | None,
    active: Any,
    rule: CollapseRule | None,
) -> str:
    """The collapse rule with its numbers: "Pruned at epoch 5: 3/10 active units (variance
    of E[z_d] > 0.01), below the threshold 4 (= max(1, 0.4 × 10)) for 2 epochs ..."."""
    d = config.model.latent_dim
    unit = f"variance of E[z_d] over the validation data > {config.eval.au_threshold:g}"
    if rule is None:  # a plain Optuna pruner, or a note built away from the study
        return f"Too few latent units still carried information: {active}/{d} ({unit})."
    p = rule.patience
    window = ""
    if epoch and len(au) >= epoch >= p:
        counts = " → ".join(str(a) for a in au[epoch - p : epoch])
        window = f" (epoch{'s' if p > 1 else ''} {_span(epoch - p + 1, epoch)}: {counts})"
    warmup = (
        f"after a {rule.warmup_epochs}-epoch warm-up" if rule.warmup_epochs else "with no warm-up"
    )
    # hard-wrapped: Markdown joins the lines into one paragraph, and a page that shows the
    # note as written (or Optuna's own note view) does not scroll sideways
    return textwrap.fill(
        f"Pruned at epoch {epoch}: {active}/{d} active units ({unit}), below the threshold "
        f"{rule.threshold(d):g} (= {rule.formula(d)}) for {p} epoch{'s' if p > 1 else ''}"
        f"{window} {warmup}.",
        width=NOTE_WIDTH, break_long_words=False, break_on_hyphens=False,
    )


NOTE_WIDTH = 80  # characters per line of a wrapped note sentence


def _span(first: int, last: int) -> str:
    return str(last) if first == last else f"{first}–{last}"


def _figures(history: Mapping[str, Any], epoch: int | None, eval_batch: int) -> str:
    where = f"at epoch {epoch}" if epoch else "at the last epoch"
    return (
        f"{where.capitalize()}: β {_num(_at(history, 'beta', epoch), 3)}, validation −ELBO "
        f"(β = 1) {_num(_at(history, 'elbo', epoch))} nats, KL {_num(_at(history, 'kl', epoch))}"
        f" nats, mutual information {mutual_info_text(_at(history, 'mutual_info', epoch), eval_batch)}."
    )


def mutual_info_text(value: Any, eval_batch: int) -> str:
    """The He et al. (2019) I(x; z) estimate as a reader should take it.

    The estimate averages over one evaluation batch of ``b`` examples, so it lies in
    ``[0, log b]`` up to sampling noise: a negative value is noise around 0 (a collapsed
    encoder carries no information), and a value near ``log b`` says only that I(x; z) is at
    least about that much (the estimator cannot tell more; a larger ``eval.batch_size`` leaves
    room).
    """
    if not isinstance(value, (int, float)):
        return "? nats"
    if value < 0:
        return f"≈ 0 nats (the estimate {value:.2f} is noise around 0)"
    if mutual_info_at_ceiling(value, eval_batch):
        return (f"{value:.2f} nats, at the estimator's ceiling log {eval_batch} = "
                f"{mutual_info_ceiling(eval_batch):.2f} (it cannot tell more; raise "
                "eval.batch_size for room)")
    return f"{value:.2f} nats"
