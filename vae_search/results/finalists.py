"""What the finalists say: per configuration, the final NLL over seeds with a 95% interval,
ranked by the mean, and whether the search's best holds up.

The interval is Student's t on n − 1 degrees of freedom: mean ± t_{0.975, n−1} · sd / √n, with
sd the sample standard deviation (ddof = 1) over the n seeds that completed (no interval for
n = 1). Few seeds are the rule in this field (3-10; Henderson et al. 2018 saw two 5-seed
halves of 10 runs look like different distributions), so the t interval, wide at small n, is
the honest one; a bootstrap over 3-5 values would be too narrow.

"Beyond noise": the search's best (its rank-1 configuration) is flagged when another finalist
has the lowest mean *and* Welch's t-test of the two sets of seeds gives p < 0.05.

Results live where plain Optuna reads them: each finalist run is a trial of ``STUDY.final``
(value: the NLL bound; user attributes ``finalist`` and ``final``), and the table is the
study's user attribute ``finalists`` (``optuna.load_study(...).user_attrs["finalists"]``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from vae_search import records
from vae_search.study.final import FINALIST, final_study_name

INTERVAL = "95% Student t interval on n − 1 degrees of freedom over seeds"
SUMMARY_ATTR = "finalists"  # study user attr of STUDY.final: the table
ALPHA = 0.05


def load_final_study(study: optuna.Study) -> optuna.Study | None:
    """The search study's finalists' study in the same storage, or None when there is none."""
    name = final_study_name(study.study_name)
    try:
        return optuna.load_study(study_name=name, storage=study._storage)
    except KeyError:
        return None


def t_interval(values: list[float], level: float = 0.95) -> tuple[float, float | None, float | None, float | None]:
    """(mean, sd, low, high) of ``values``: sd with ddof = 1, the Student t interval on
    n − 1 degrees of freedom (sd and interval None for a single value)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, None, None, None
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, df=len(x) - 1)) * sd / math.sqrt(len(x))
    return mean, sd, mean - half, mean + half


@dataclass
class FinalistRow:
    """One configuration's finalists."""

    trial: int  # the search trial
    search_rank: int
    search_value: float | None
    params: dict[str, Any]
    seeds: list[int]
    values: list[float]  # per seed, in seed order
    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None
    active_units: float | None  # mean over seeds
    kl: float | None
    perplexity: float | None
    rank: int = 0  # by the mean


def _mean(xs: list[Any]) -> float | None:
    xs = [float(x) for x in xs if isinstance(x, (int, float)) and math.isfinite(x)]
    return float(np.mean(xs)) if xs else None


def _figures(t: FrozenTrial, split: str) -> dict[str, Any]:
    final = records.trial_final(t)
    return (final.get("test") or {}) if split == "test" else final


def finalist_rows(final: optuna.Study) -> list[FinalistRow]:
    """The completed finalist runs grouped by configuration, ranked by mean (best first)."""
    groups: dict[int, list[FrozenTrial]] = {}
    for t in final.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        info = records.record(t, FINALIST)
        if isinstance(info, dict) and t.value is not None and math.isfinite(t.value):
            groups.setdefault(int(info["trial"]), []).append(t)
    rows = []
    for number, trials in groups.items():
        trials.sort(key=lambda t: records.record(t, FINALIST)["seed"])
        info = records.record(trials[0], FINALIST)
        split = info.get("split", "test")
        values = [float(t.value) for t in trials]
        mean, sd, low, high = t_interval(values)
        figs = [_figures(t, split) for t in trials]
        rows.append(FinalistRow(
            trial=number, search_rank=int(info["rank"]), search_value=info.get("search_value"),
            params=dict(info.get("params") or {}), seeds=[records.record(t, FINALIST)["seed"] for t in trials],
            values=values, n=len(values), mean=mean, sd=sd, low=low, high=high,
            active_units=_mean([f.get("active_units") for f in figs]),
            kl=_mean([f.get("kl") for f in figs]),
            perplexity=_mean([f.get("perplexity") for f in figs]),
        ))
    rows.sort(key=lambda r: (r.mean, r.search_rank))
    for i, r in enumerate(rows):
        r.rank = i + 1
    return rows


def verdict(rows: list[FinalistRow]) -> dict[str, Any] | None:
    """Does the search's best (search rank 1) stay the best? None without rows."""
    if not rows:
        return None
    best = rows[0]
    searched = min(rows, key=lambda r: r.search_rank)
    out: dict[str, Any] = {"search_best": searched.trial, "finalists_best": best.trial,
                           "p_value": None, "differs": False}
    if best.trial == searched.trial:
        out["text"] = f"the search's best (trial {searched.trial}) is also the finalists' best"
        return out
    if best.n >= 2 and searched.n >= 2:
        from scipy import stats

        p = float(stats.ttest_ind(best.values, searched.values, equal_var=False).pvalue)
        out["p_value"] = p
        out["differs"] = bool(p < ALPHA)
    if out["differs"]:
        out["text"] = (f"the search's best (trial {searched.trial}) is NOT the finalists' best: trial "
                       f"{best.trial} is lower beyond noise (Welch t-test p = {out['p_value']:.3g})")
    else:
        p_text = f", Welch t-test p = {out['p_value']:.3g}" if out["p_value"] is not None else ""
        out["text"] = (f"trial {best.trial} has a lower mean than the search's best (trial "
                       f"{searched.trial}), within noise{p_text}")
    return out


def summarize_finalists(final: optuna.Study) -> dict[str, Any]:
    """The finalists' table as plain data (what is stored and printed)."""
    rows = finalist_rows(final)
    first = next((records.record(t, FINALIST) for t in final.get_trials(deepcopy=False)
                  if isinstance(records.record(t, FINALIST), dict)), {}) or {}
    return {
        "study": final.study_name,
        "of": first.get("of"),
        "split": first.get("split", "test"),
        "k": first.get("k"),
        "interval": INTERVAL,
        "rows": [asdict(r) for r in rows],
        "verdict": verdict(rows),
    }


def store_finalists(final: optuna.Study) -> dict[str, Any]:
    """Compute the table and store it as the study's ``finalists`` user attribute."""
    table = summarize_finalists(final)
    final.set_user_attr(SUMMARY_ATTR, table)
    return table


def format_finalists(table: dict[str, Any]) -> str:
    """The table as text, best first."""
    rows = table["rows"]
    if not rows:
        return f"{table['study']}: no finalist run has completed yet"
    lines = [f"finalists of {table['of']} ({table['study']}): {table['split']} NLL, IWAE k = "
             f"{table['k']}, nats; {table['interval']}",
             f"  {'rank':>4} {'trial':>5} {'search':>6} {'n':>2} {'mean':>9} {'sd':>7} "
             f"{'95% interval':>21} {'AU':>5} {'KL':>7}"]
    for r in rows:
        iv = f"[{r['low']:.2f}, {r['high']:.2f}]" if r["low"] is not None else "n = 1: none"
        sd = f"{r['sd']:.3f}" if r["sd"] is not None else "-"
        au = f"{r['active_units']:.1f}" if r["active_units"] is not None else "-"
        kl = f"{r['kl']:.2f}" if r["kl"] is not None else "-"
        lines.append(f"  {r['rank']:>4} {r['trial']:>5} {r['search_rank']:>6} {r['n']:>2} "
                     f"{r['mean']:>9.3f} {sd:>7} {iv:>21} {au:>5} {kl:>7}"
                     + (f"  ppl {r['perplexity']:.1f}" if r["perplexity"] is not None else ""))
    if table.get("verdict"):
        lines.append("  " + table["verdict"]["text"])
    return "\n".join(lines)


def choose_finalists(study: optuna.Study, top: int) -> list[FrozenTrial]:
    """The study's ``top`` configurations by its own ranking (``status``'s: completed trials
    that kept their active units), or the first ``top`` of its Pareto front by the first
    objective in a multi-objective study."""
    from vae_search.results.summary import best_trials

    return best_trials(study)[:top]
