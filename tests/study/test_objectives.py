"""Objectives in a study spec: names, directions, and the multi-objective rules at load."""

from __future__ import annotations

import re

import pytest
import yaml
from click.testing import CliRunner

from vae_search.cli import main
from vae_search.errors import ConfigError
from vae_search.study.objectives import objective_values
from vae_search.study.spec import StudySpec


def test_a_list_makes_a_multi_objective_spec_with_the_right_directions(spec_dict):
    s = StudySpec.from_dict(spec_dict(objective=["nll_iwae", "active_units"]))
    assert s.multi_objective and s.directions == ["minimize", "maximize"]
    # left out, the performance pruner is none here (Optuna cannot run one)
    assert s.pruner.performance.kind == "none"
    rd = StudySpec.from_dict(spec_dict(objective=["distortion", "rate"]))
    assert rd.directions == ["minimize", "minimize"]
    # D and R are the final reconstruction term and KL: D + R is the -ELBO at beta = 1
    final = {"recon": 80.0, "kl": 6.5, "elbo": 86.5}
    d, r = objective_values(final, rd.objective)
    assert d + r == final["elbo"]
    single = StudySpec.from_dict(spec_dict())
    assert not single.multi_objective and single.pruner.performance.kind == "median"


@pytest.mark.parametrize(
    "objective, needle",
    [
        (["distortion", "rat"], "unknown objective 'rat'"),
        ("perplexity", "'perplexity' is not one of 'nll_iwae', 'elbo' (unknown objective"),
        ("rate", "rate alone is not comparable"),
        (["rate", "rate"], "names an objective twice"),
    ],
)
def test_bad_objectives_are_refused(spec_dict, objective, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        StudySpec.from_dict(spec_dict(objective=objective))


def test_a_performance_pruner_in_a_multi_objective_spec_is_refused(spec_dict):
    raw = spec_dict(objective=["distortion", "rate"],
                    pruner={"performance": {"kind": "median"}})
    with pytest.raises(ConfigError, match="median cannot run in a multi-objective study"):
        StudySpec.from_dict(raw)
    raw["pruner"]["performance"]["kind"] = "none"
    assert StudySpec.from_dict(raw).multi_objective


@pytest.mark.parametrize(
    "over, needle",
    [
        ({"objective": ["distortion", "rate"], "pruner": {"performance": {"kind": "hyperband"}}},
         "set pruner.performance.kind: none"),
        ({"objective": "nll"}, "'nll' is not one of"),
    ],
)
def test_cli_says_it_in_one_line(spec_dict, tmp_path, over, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec_dict(**over)))
    res = CliRunner().invoke(main, ["worker", str(path), "--storage", f"sqlite:///{tmp_path}/x.db"])
    assert res.exit_code == 2, res.output
    text = res.output.strip()
    assert "\n" not in text and "Traceback" not in text and needle in text, text
