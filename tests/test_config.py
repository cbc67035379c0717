"""The run config: YAML round trip, every problem reported at once."""

from __future__ import annotations

import pytest
import yaml

from vae_search.config import RunConfig, load_yaml, merge
from vae_search.errors import ConfigError


def test_default_round_trips_through_yaml(tmp_path):
    cfg = RunConfig.from_dict({"prior": {"kind": "vamp", "components": 7}, "model": {"hidden": [64, 32]}})
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert RunConfig.from_file(path) == cfg
    assert RunConfig.from_dict(yaml.safe_load(cfg.to_yaml())).to_dict() == cfg.to_dict()


def test_every_problem_is_named_in_one_error():
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(
            {
                "model": {"latent_dim": 0, "colour": "red"},
                "prior": {"kind": "gauss"},
                "epochs": "many",
                "schedule": {"ratio": 2.0},
                "bogus": 1,
            }
        )
    msg = str(e.value)
    for needle in (
        "model.colour: unknown key",
        "model.latent_dim: must be at least 1, got 0",
        "prior.kind: 'gauss' is not one of 'standard', 'mog', 'vamp'",
        "epochs: 'many' is not an integer",
        "schedule.ratio: must be in (0, 1], got 2.0",
        "bogus: unknown key",
    ):
        assert needle in msg
    assert "\n" not in msg


def test_a_field_that_fails_its_type_is_not_reported_again():
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({"data": {"name": "array", "path": 5, "size": 3}})
    msg = str(e.value)
    # path is reported by its type, not also as missing ("required when name is 'array'") ...
    assert "data.path: 5 is not a string or null" in msg
    assert "data.path: required" not in msg
    # ... while an independent rule of the same section still holds
    assert "data.size: must be at least 10, got 3" in msg


def test_types_are_checked_not_coerced():
    with pytest.raises(ConfigError, match=r"model.hidden\[1\]: 'x' is not an integer"):
        RunConfig.from_dict({"model": {"hidden": [3, "x"]}})
    with pytest.raises(ConfigError, match="amp: 1 is not true or false"):
        RunConfig.from_dict({"amp": 1})
    assert RunConfig.from_dict({"optim": {"lr": 1}}).optim.lr == 1.0


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="data.path: required when name is 'array'"):
        RunConfig.from_dict({"data": {"name": "array"}})
    with pytest.raises(ConfigError, match="device: 'gpu' is not"):
        RunConfig.from_dict({"device": "gpu"})
    # a linear warm-up that starts above its target would silently be a constant β
    with pytest.raises(ConfigError, match=r"schedule.beta_start: .* 2.0 > beta 1.0; lower it"):
        RunConfig.from_dict({"schedule": {"kind": "linear", "beta": 1.0, "beta_start": 2.0}})
    RunConfig.from_dict({"schedule": {"kind": "sigmoid", "beta": 1.0, "beta_start": 2.0}})  # a decay: fine


def test_malformed_and_missing_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: malformed YAML at line \d+"):
        load_yaml(bad)
    with pytest.raises(ConfigError, match="nope.yaml: no such file"):
        RunConfig.from_file(tmp_path / "nope.yaml")
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n")
    with pytest.raises(ConfigError, match="top level: expected a mapping"):
        RunConfig.from_file(top)


def test_merge_is_deep():
    assert merge({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}}) == {"a": {"b": 5, "c": 2}, "d": 3}
