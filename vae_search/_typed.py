"""Build typed dataclasses from plain dicts, reporting every problem at once.

Used by the run config and the study spec: both are YAML mapped onto nested dataclasses. Each
problem is a dotted key plus what is allowed ("model.prior: 'gauss' is not one of 'standard',
'mog', 'vamp'"); unknown keys are rejected, like nanoGPT's configurator.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

T = TypeVar("T")

_MISSING = object()


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin is list:
        (inner,) = get_args(tp)
        return "a list" if inner is Any else f"a list of {_describe(inner)}"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(value: Any, tp: Any, key: str, problems: list[str]) -> Any:
    """Return ``value`` checked against ``tp``; append to ``problems`` and return _MISSING if bad."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in get_args(tp) and not isinstance(value, bool):
            return value
        problems.append(f"{key}: {value!r} is not {_describe(tp)}")
        return _MISSING
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            problems.append(f"{key}: must be {_describe(tp)}, got null")
            return _MISSING
        for arg in (a for a in args if a is not type(None)):
            trial: list[str] = []
            out = _convert(value, arg, key, trial)
            if not trial:
                return out
        problems.append(f"{key}: {value!r} is not {_describe(tp)}")
        return _MISSING
    if origin is list:
        (inner,) = get_args(tp)
        if not isinstance(value, (list, tuple)):
            problems.append(f"{key}: {value!r} is not {_describe(tp)}")
            return _MISSING
        items = [_convert(v, inner, f"{key}[{i}]", problems) for i, v in enumerate(value)]
        return _MISSING if any(i is _MISSING for i in items) else items
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{key}: {value!r} is not a mapping")
            return _MISSING
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, problems)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    problems.append(f"{key}: {value!r} is not {_describe(tp)}")
    return _MISSING


def _build(cls: type[T], data: Any, prefix: str, problems: list[str]) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{prefix or 'top level'}: expected a mapping, got {data!r}")
        return _MISSING
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    for unknown in sorted(set(data) - set(fields)):
        where = f"{prefix}.{unknown}" if prefix else str(unknown)
        problems.append(f"{where}: unknown key (allowed: {', '.join(sorted(fields))})")
    kwargs: dict[str, Any] = {}
    failed: set[str] = set()
    for name in fields:
        if name not in data:
            continue
        where = f"{prefix}.{name}" if prefix else name
        out = _convert(data[name], hints[name], where, problems)
        if out is _MISSING:
            failed.add(name)
        else:
            kwargs[name] = out
    try:
        obj = cls(**kwargs)
    except TypeError as e:  # a required field was missing
        problems.append(f"{prefix or 'top level'}: {e}")
        return _MISSING
    check = getattr(obj, "problems", None)
    if check is not None:
        # A field that failed its type check holds its default here: a rule about it would
        # contradict the type error already reported ("low: required" after "low: 'a' is ...").
        found = [p for p in check() if _field_of(p) not in failed]
        problems.extend(f"{prefix}.{p}" if prefix else p for p in found)
    return obj


def _field_of(problem: str) -> str:
    """The field a ``problems()`` entry is about: ``"options.seed: ..."`` -> ``"options"``."""
    match = re.match(r"\w+", problem)
    return match.group(0) if match else ""


def from_dict(cls: type[T], data: Any, prefix: str = "") -> tuple[T | None, list[str]]:
    """Build ``cls`` from ``data``; return the object (None if broken) and every problem found.

    A dataclass may define ``problems() -> list[str]`` for cross-field checks; each entry is
    ``"key: message"`` relative to that dataclass.
    """
    problems: list[str] = []
    obj = _build(cls, data, prefix, problems)
    if obj is _MISSING or problems:
        return None, problems
    return obj, problems


def to_dict(obj: Any) -> Any:
    """Plain, YAML-safe dict of a (nested) dataclass."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
