"""Specs that cannot do what they say: refused with one line, or warned about, at load."""

from __future__ import annotations

import logging
import os

import pytest
import yaml
from click.testing import CliRunner

from vae_search.cli import main
from vae_search.errors import ConfigError
from vae_search.study.spec import StudySpec


def _write(tmp_path, data) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def _refused(tmp_path, data, *needles):
    """The spec through `vae-search create-study`: one line naming the problem, exit 2."""
    db = tmp_path / "st.db"
    res = CliRunner().invoke(main, ["create-study", _write(tmp_path, data), "--storage", f"sqlite:///{db}"])
    assert res.exit_code == 2, res.output
    text = res.output.strip()
    # one line, no traceback, naming the file and the problem; no study (no database) created
    assert "\n" not in text and "Traceback" not in text, text
    assert "s.yaml" in text
    for n in needles:
        assert n in text, text
    assert not db.exists()
    return text


def test_a_spec_with_no_search_space_is_refused(tmp_path, spec_dict):
    _refused(tmp_path, spec_dict(space={}), "space: empty", "vae-search train")
    data = spec_dict()
    del data["space"]
    _refused(tmp_path, data, "space: empty")


@pytest.mark.parametrize("space_kind", [
    None,                                                   # prior.kind fixed by run: standard
    {"type": "categorical", "choices": ["standard"]},       # searched, but only standard
    "when-excludes",                                        # components only when kind is ...
])
def test_components_searched_without_a_mixture_prior_is_refused(tmp_path, spec_dict, space_kind):
    data = spec_dict()
    space = data["space"]
    if space_kind is None:
        del space["prior.kind"]
        del space["prior.components"]["when"]
    elif space_kind == "when-excludes":
        # mog and vamp are choices, but components is only sampled with the standard prior
        space["prior.components"]["when"] = {"prior.kind": ["standard"]}
    else:
        space["prior.kind"] = space_kind
        del space["prior.components"]["when"]
    _refused(tmp_path, data, "space.prior.components: never takes effect", "mog or vamp")


def test_components_with_a_mixture_possible_is_accepted(spec_dict):
    data = spec_dict()
    del data["space"]["prior.kind"]
    del data["space"]["prior.components"]["when"]
    data["run"]["prior"] = {"kind": "vamp"}  # fixed, and a mixture: components matter
    StudySpec.from_dict(data)


def test_a_spec_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(os.urandom(1 << 20))  # 1 MB of random bytes (the case, smaller)
    res = CliRunner().invoke(main, ["create-study", str(path), "--storage", f"sqlite:///{tmp_path / 'st.db'}"])
    assert res.exit_code == 2, res.output
    text = res.output.strip()
    assert "\n" not in text and "not UTF-8 text" in text and "s.yaml" in text, text
    with pytest.raises(ConfigError, match="not UTF-8"):
        StudySpec.from_file(path)


def test_a_collapse_pruner_that_cannot_fire_is_warned_about(spec_dict):
    # epochs 4: warm-up 2 + patience 2 would prune at epoch 4 at the earliest, the last one
    spec = StudySpec.from_dict(spec_dict(pruner={"collapse": {"warmup_epochs": 2, "patience": 2}}),
                               source="s.yaml")
    assert any("pruner.collapse" in w and "never stop a trial" in w for w in spec.warnings), spec.warnings
    # one epoch earlier it can: no warning about it
    ok = StudySpec.from_dict(spec_dict(pruner={"collapse": {"warmup_epochs": 1, "patience": 2}}))
    assert not any("pruner.collapse" in w for w in ok.warnings), ok.warnings


def test_a_performance_pruner_that_cannot_fire_is_warned_about(spec_dict):
    late = {"kind": "median", "options": {"n_warmup_steps": 4, "n_startup_trials": 1}}
    spec = StudySpec.from_dict(spec_dict(pruner={"performance": late}))
    assert [w for w in spec.warnings if "n_warmup_steps 4 >= run.epochs 4" in w]
    many = {"kind": "median", "options": {"n_warmup_steps": 1, "n_startup_trials": 16}}
    spec = StudySpec.from_dict(spec_dict(n_trials=16, pruner={"performance": many}))
    assert [w for w in spec.warnings if "n_startup_trials 16 >= n_trials 16" in w]
    fine = {"kind": "median", "options": {"n_warmup_steps": 3, "n_startup_trials": 15}}
    spec = StudySpec.from_dict(spec_dict(n_trials=16, pruner={"performance": fine,
                                                              "collapse": {"warmup_epochs": 1, "patience": 1}}))
    assert spec.warnings == []


def test_the_warning_is_logged_by_the_command(tmp_path, spec_dict, caplog):
    data = spec_dict(pruner={"collapse": {"warmup_epochs": 3, "patience": 2}})
    with caplog.at_level(logging.WARNING):
        res = CliRunner().invoke(main, ["create-study", _write(tmp_path, data), "--no-data",
                                        "--storage", f"sqlite:///{tmp_path / 'st.db'}"])
    assert res.exit_code == 0, res.output
    # the warning names the file and the numbers, and the study is still created
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("s.yaml: pruner.collapse: warmup_epochs 3 + patience 2 >= run.epochs 4" in w for w in warned)


def test_shipped_specs_have_no_warnings():
    from pathlib import Path

    for path in sorted(Path(__file__).parents[2].joinpath("studies").glob("*.yaml")):
        assert StudySpec.from_file(path).warnings == [], path
