"""The package's layers keep their promise: a module imports only its own package and the
layers below it, and no modules import each other in a cycle.

The layers, bottom up (packages on one line are peers and do not import each other):

    errors, _typed
    config
    data, model, schedules
    metrics, pictures
    train
    study, storage
    workers, results
    dashboard
    cli
    __main__, and the package's own ``__init__`` (its curated public face)

Every ``import`` counts, those inside functions (lazy) and under ``TYPE_CHECKING`` too: a lazy
upward import is still a lower layer that knows a higher one.

The rule is checked on the real tree, and on a copy of it with a planted violation, so the test
is known to fail when the rule is broken. The planted upward import is::

    # appended to vae_search/study/spec.py
    from vae_search.dashboard import hooks

and the planted cycle makes ``vae_search/schedules.py`` import ``vae_search.metrics``, which
imports ``vae_search.model``, which is made to import ``vae_search.schedules`` (also an upward
import, reported both ways).
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

import vae_search

PACKAGE = Path(vae_search.__file__).parent

LAYERS: list[tuple[str, ...]] = [
    ("errors", "_typed"),
    ("config",),
    ("data", "model", "schedules"),
    ("metrics", "pictures"),
    ("train",),
    ("records",),
    ("study", "storage"),
    ("workers", "results"),
    ("dashboard",),
    ("cli",),
    ("__main__", "__init__"),
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports (a ``from pkg import name`` of a submodule
    counts as that submodule)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "vae_search")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "vae_search":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return {m for m in found if m in known}


def layer_of(module: str) -> str:
    """``vae_search.study.spec`` -> ``study``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def graph(root: Path) -> dict[str, set[str]]:
    mods = modules(root)
    known = set(mods)
    return {name: imports(path, known) - {name} for name, path in mods.items()}


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    """Each import of a module's own layer's peers or of a layer above, as a sentence."""
    out = []
    for src, targets in sorted(g.items()):
        a = layer_of(src)
        for dst in sorted(targets):
            b = layer_of(dst)
            if b == "__init__" and a != "__init__":
                out.append(f"{src} imports the package root (import from the module instead)")
            elif a != b and (a not in RANK or b not in RANK):
                out.append(f"{src} -> {dst}: layer {a if a not in RANK else b!r} is not in LAYERS")
            elif a != b and RANK[b] >= RANK[a]:
                out.append(f"{src} (layer {a}) imports {dst} (layer {b}, not below it)")
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_top_level_module_has_a_layer() -> None:
    # a new top-level module or package must be placed in LAYERS, or the rule says nothing of it
    tops = {layer_of(m) for m in modules(PACKAGE)}
    assert tops <= set(RANK), f"not placed in LAYERS: {sorted(tops - set(RANK))}"


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert upward_imports(graph(PACKAGE)) == []


def test_no_import_cycles() -> None:
    assert cycles(graph(PACKAGE)) == []


def test_no_folder_holds_more_than_twelve_modules() -> None:
    # the bound: a folder a newcomer can take in at a glance
    for folder in [PACKAGE, *[p for p in PACKAGE.rglob("*") if p.is_dir()]]:
        n = len([p for p in folder.glob("*.py") if p.name != "__init__.py"])
        assert n <= 12, f"{folder.relative_to(PACKAGE.parent)} holds {n} modules"


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A copy of the package, to plant violations in."""
    copy = tmp_path / "vae_search"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_a_planted_upward_import_is_reported(planted: Path) -> None:
    spec = planted / "study" / "spec.py"
    spec.write_text(spec.read_text() + "\nfrom vae_search.dashboard import hooks\n")
    found = upward_imports(graph(planted))
    # exactly the planted line, named by both modules and their layers
    assert found == [
        "vae_search.study.spec (layer study) imports vae_search.dashboard.hooks "
        "(layer dashboard, not below it)"
    ]


def test_a_lazy_upward_import_is_reported_too(planted: Path) -> None:
    worker = planted / "workers" / "worker.py"
    worker.write_text(
        worker.read_text() + "\n\ndef _late():\n    from vae_search.dashboard.trial import publish\n"
    )
    assert any("vae_search.workers.worker" in line for line in upward_imports(graph(planted)))


def test_a_planted_cycle_is_reported(planted: Path) -> None:
    for name, line in (
        ("schedules.py", "import vae_search.metrics"),
        ("model/vae.py", "import vae_search.schedules"),
    ):
        path = planted / name
        path.write_text(path.read_text() + f"\n{line}\n")
    found = cycles(graph(planted))
    # schedules -> metrics -> model.vae -> schedules (metrics imports model.vae already)
    assert any({"vae_search.schedules", "vae_search.metrics", "vae_search.model.vae"} <= set(c)
               for c in found), found
