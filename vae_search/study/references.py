"""Published figures to put beside a study's own: the ``references:`` section of a spec.

Each entry names one figure, with what it measures and how::

    references:
      - {name: "IWAE paper, VAE 1 layer", value: 86.76, metric: nll, split: test, k: 5000,
         epochs: 3280, source: "Burda et al. 2016, arXiv 1509.00519, table 1"}

``metric`` is what the value is (``nll``: −log p(x) bound in nats; ``elbo``; ``active_units``;
``kl``), ``split`` where it was measured, ``k`` the importance samples of an NLL estimate,
``epochs`` how long the model trained (optional). A worker stores the list in the study's user
attribute ``references`` (plain Optuna reads it), with the study's own split, k and epochs, so
``status``, the report and the charts can say when a comparison is not like for like.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import optuna

REFERENCES_ATTR = "references"  # study user attr


@dataclass
class ReferenceSpec:
    """One published figure (see the module docstring)."""

    name: str = ""
    value: float | None = None
    metric: Literal["nll", "elbo", "active_units", "kl"] = "nll"
    split: Literal["test", "val", "train"] = "test"
    k: int | None = None
    epochs: int | None = None
    source: str = ""

    def problems(self) -> list[str]:
        out = []
        if not self.name:
            out.append("name: required (what the figure is, e.g. 'IWAE paper, VAE')")
        if self.value is None:
            out.append("value: required (the published number, e.g. 86.76)")
        if self.k is not None and self.k < 1:
            out.append(f"k: must be at least 1 (importance samples), got {self.k}")
        return out


def differences(ref: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """Where a reference's conditions differ from the study's (``ours``: split, k, epochs)."""
    out = []
    if ref.get("split") and ours.get("split") and ref["split"] != ours["split"]:
        out.append(f"split {ref['split']} vs ours {ours['split']}")
    if ref.get("metric") == "nll" and ref.get("k") and ours.get("k") and ref["k"] != ours["k"]:
        out.append(f"k {ref['k']} vs ours {ours['k']}")
    if ref.get("epochs") and ours.get("epochs") and ref["epochs"] != ours["epochs"]:
        out.append(f"epochs {ref['epochs']} vs ours {ours['epochs']}")
    return out


def store_references(study: optuna.Study, refs: list[ReferenceSpec], ours: dict[str, Any]) -> None:
    """Write the spec's references (with the study's own split, k, epochs) into the study's
    user attributes, unless they are stored already."""
    value = {"ours": ours, "figures": [asdict(r) for r in refs]}
    if not refs and REFERENCES_ATTR not in study.user_attrs:
        return
    if study.user_attrs.get(REFERENCES_ATTR) != value:
        study.set_user_attr(REFERENCES_ATTR, value)


def read_references(study: optuna.Study) -> list[dict[str, Any]]:
    """The study's references, each with ``differs``: the conditions that are not ours."""
    stored = study.user_attrs.get(REFERENCES_ATTR) or {}
    ours = stored.get("ours") or {}
    return [{**r, "differs": differences(r, ours)} for r in stored.get("figures") or []]


def reference_line(r: dict[str, Any]) -> str:
    """One line: 'IWAE paper, VAE: 86.76 nats (test nll, k = 5000; differs: k 5000 vs ours 500)'."""
    how = ", ".join(p for p in (f"{r.get('split')} {r.get('metric')}",
                                f"k = {r['k']}" if r.get("k") else "",
                                f"{r['epochs']} epochs" if r.get("epochs") else "") if p)
    differs = f"; differs: {', '.join(r['differs'])}" if r.get("differs") else ""
    source = f" [{r['source']}]" if r.get("source") else ""
    return f"{r['name']}: {r['value']:g} ({how}{differs}){source}"
