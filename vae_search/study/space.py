"""The search space: which run-config fields a trial samples, and from what.

Each entry of a study's ``space:`` mapping is keyed by a dotted :class:`~vae_search.config.RunConfig`
path (``schedule.beta``) that is also the Optuna parameter name, so the dashboard shows the run
config's own names. Three kinds, mirroring Optuna's distributions::

    schedule.beta: {type: float, low: 0.1, high: 10.0, log: true}        # also: step
    model.latent_dim: {type: int, low: 2, high: 64, log: true}           # also: step
    prior.kind: {type: categorical, choices: [standard, mog, vamp]}
    prior.components: {type: int, low: 2, high: 50, when: {prior.kind: [mog, vamp]}}

``when`` makes a parameter conditional: it is suggested only when every named parameter (an
earlier categorical of the space) took one of the listed values; otherwise the run config keeps
the value from ``run:``. Optuna's categorical choices must be scalars (None, bool, int, float,
str), so a list choice such as ``[512, 256]`` is stored as the label ``"512-256"`` (``"[]"`` for
the empty list) and decoded back when the run config is built.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from vae_search._typed import from_dict
from vae_search.config import RunConfig, merge


@dataclass
class FloatParam:
    """A float field sampled from [low, high] (log scale or on a ``step`` grid if asked)."""

    type: Literal["float"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    when: dict[str, Any] = field(default_factory=dict)
    key: str = field(default="", init=False)

    def problems(self) -> list[str]:
        return _bounds_problems(self)

    def distribution(self) -> BaseDistribution:
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)  # type: ignore[arg-type]

    def candidates(self) -> list[tuple[str, Any]]:
        return [("low", self.low), ("high", self.high)]

    def suggest(self, trial: optuna.Trial) -> Any:
        assert self.low is not None and self.high is not None
        return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)


@dataclass
class IntParam:
    """An integer field sampled from [low, high] (log scale or on a ``step`` grid if asked)."""

    type: Literal["int"]
    low: int | None = None
    high: int | None = None
    log: bool = False
    step: int = 1
    when: dict[str, Any] = field(default_factory=dict)
    key: str = field(default="", init=False)

    def problems(self) -> list[str]:
        return _bounds_problems(self)

    def distribution(self) -> BaseDistribution:
        return IntDistribution(self.low, self.high, log=self.log, step=self.step)  # type: ignore[arg-type]

    def candidates(self) -> list[tuple[str, Any]]:
        return [("low", self.low), ("high", self.high)]

    def suggest(self, trial: optuna.Trial) -> Any:
        assert self.low is not None and self.high is not None
        return trial.suggest_int(self.key, self.low, self.high, log=self.log, step=self.step)


@dataclass
class CategoricalParam:
    """A field sampled from ``choices``; list choices travel through Optuna as string labels."""

    type: Literal["categorical"]
    choices: list[Any] = field(default_factory=list)
    when: dict[str, Any] = field(default_factory=dict)
    key: str = field(default="", init=False)

    def problems(self) -> list[str]:
        if not self.choices:
            return ["choices: must list at least one value"]
        labels = [encode_choice(c) for c in self.choices]
        dupes = sorted({lab for lab in labels if labels.count(lab) > 1}, key=str)
        if dupes:
            return [f"choices: duplicate choice(s) {', '.join(repr(d) for d in dupes)}"]
        return []

    def labels(self) -> list[Any]:
        return [encode_choice(c) for c in self.choices]

    def decode(self, label: Any) -> Any:
        """The run-config value of an Optuna parameter value (a label)."""
        for choice in self.choices:
            if encode_choice(choice) == label:
                return choice
        raise KeyError(f"{self.key}: {label!r} is not a label of {self.labels()}")

    def distribution(self) -> BaseDistribution:
        return CategoricalDistribution(self.labels())

    def candidates(self) -> list[tuple[str, Any]]:
        return [(f"choices[{i}]", c) for i, c in enumerate(self.choices)]

    def suggest(self, trial: optuna.Trial) -> Any:
        return self.decode(trial.suggest_categorical(self.key, self.labels()))


Param = FloatParam | IntParam | CategoricalParam
_KINDS: dict[str, type[Any]] = {
    "float": FloatParam,
    "int": IntParam,
    "categorical": CategoricalParam,
}


def encode_choice(value: Any) -> Any:
    """Optuna-safe label of a categorical choice: scalars as is, lists as ``"512-256"``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, str)) for v in value):
        return "-".join(str(v) for v in value) if value else "[]"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _bounds_problems(p: FloatParam | IntParam) -> list[str]:
    out = [f"{name}: required" for name in ("low", "high") if getattr(p, name) is None]
    if not out:
        try:  # Optuna's own checks: low <= high, log needs low > 0, not both log and step
            p.distribution()
        except ValueError as e:
            out.append(f"low: {e}")
    return out


def active(param: Param, chosen: dict[str, Any]) -> bool:
    """Whether ``param`` is sampled, given the run-config values chosen so far in this trial."""
    return all(k in chosen and chosen[k] in values for k, values in param.when.items())


def sample(trial: optuna.Trial, params: list[Param]) -> dict[str, Any]:
    """Suggest every active parameter in order; return ``{dotted key: run-config value}``."""
    chosen: dict[str, Any] = {}
    for p in params:
        if active(p, chosen):
            chosen[p.key] = p.suggest(trial)
    return chosen


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """``{"model.latent_dim": 8}`` -> ``{"model": {"latent_dim": 8}}``."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def field_problem(key: str) -> str | None:
    """None if ``key`` is a dotted path to a leaf field of RunConfig (or to any key below a
    free mapping such as ``model.options``), else what is wrong."""
    cls: Any = RunConfig
    parts = key.split(".")
    for i, part in enumerate(parts):
        names = {f.name: f for f in dataclasses.fields(cls)}
        if part not in names:
            where = ".".join(parts[:i]) or "the run config"
            return f"not a run config field ({where} has: {', '.join(sorted(names))})"
        tp = typing.get_type_hints(cls)[part]
        last = i == len(parts) - 1
        if typing.get_origin(tp) is dict and not last:
            return None  # a free mapping (model.options): any key below it is the user's
        if dataclasses.is_dataclass(tp) and last:
            return "names a section, not a field; name one of its fields"
        if not dataclasses.is_dataclass(tp) and not last:
            return f"{'.'.join(parts[: i + 1])} is a field, not a section"
        cls = tp
    return None


def parse_space(
    raw: Any, base: dict[str, Any] | None, prefix: str = "space"
) -> tuple[list[Param], list[str]]:
    """Parse and check a ``space:`` mapping against the base run config (as a dict).

    Every problem is reported: unknown keys, bad ranges, bad ``when`` conditions, and every
    candidate value (each categorical choice, each numeric bound) that would not make a valid
    RunConfig when merged over ``base`` (skipped when ``base`` is None).
    """
    if raw is None:
        return [], []
    if not isinstance(raw, dict):
        return [], [f"{prefix}: expected a mapping of run config paths, got {raw!r}"]
    params: list[Param] = []
    problems: list[str] = []
    for key, entry in raw.items():
        where = f"{prefix}.{key}"
        bad_key = field_problem(str(key))
        if bad_key:
            problems.append(f"{where}: {bad_key}")
            continue
        kind = entry.get("type") if isinstance(entry, dict) else None
        if not isinstance(kind, str) or kind not in _KINDS:  # a list or mapping is unhashable
            problems.append(f"{where}.type: {kind!r} is not one of 'float', 'int', 'categorical'")
            continue
        param, found = from_dict(_KINDS[kind], entry, where)
        problems.extend(found)
        if param is None:
            continue
        param.key = str(key)
        before = len(problems)
        param.when = _check_when(param, params, where, problems)
        if len(problems) == before and base is not None:
            problems.extend(_candidate_problems(param, params, base, where))
        params.append(param)
    return params, problems


def _check_when(
    param: Param, earlier: list[Param], where: str, problems: list[str]
) -> dict[str, Any]:
    by_key = {p.key: p for p in earlier}
    out: dict[str, Any] = {}
    for cond_key, values in param.when.items():
        ref = by_key.get(cond_key)
        if not isinstance(ref, CategoricalParam):
            problems.append(
                f"{where}.when.{cond_key}: must name an earlier categorical entry of the space"
                f" (earlier categoricals: {', '.join(k for k, p in by_key.items() if isinstance(p, CategoricalParam)) or 'none'})"
            )
            continue
        listed = (
            values if isinstance(values, list) and not _is_list_choice(ref, values) else [values]
        )
        if not listed:  # would never match, so the parameter would silently never be searched
            problems.append(
                f"{where}.when.{cond_key}: list at least one value of {cond_key}'s choices"
                f" {ref.choices}, got []"
            )
            continue
        for i, v in enumerate(listed):
            if v not in ref.choices:
                problems.append(
                    f"{where}.when.{cond_key}[{i}]: {v!r} is not one of the choices {ref.choices}"
                )
        out[cond_key] = listed
    return out


def _is_list_choice(ref: CategoricalParam, values: list[Any]) -> bool:
    """``when: {model.hidden: [512, 256]}`` is one list choice, not two scalar values."""
    return values in ref.choices


def _candidate_problems(
    param: Param, earlier: list[Param], base: dict[str, Any], where: str
) -> list[str]:
    by_key = {p.key: p for p in earlier}
    # Hold every condition (and its own conditions) at its first allowed value.
    cond: dict[str, Any] = {}
    todo = list(param.when.items())
    while todo:
        k, values = todo.pop()
        cond.setdefault(k, values[0])
        todo.extend(by_key[k].when.items())
    out = []
    for label, value in param.candidates():
        _, found = from_dict(RunConfig, merge(base, nest({**cond, param.key: value})))
        for problem in found:
            own = (
                problem.startswith(param.key)
                and problem[len(param.key) : len(param.key) + 1] in ":[."
            )
            rest = problem[len(param.key) :] if own else f": {problem}"
            out.append(f"{where}.{label}{rest}")
    return out
