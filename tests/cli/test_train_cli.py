"""`vae-search config` and `vae-search train` as a user runs them."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from tests.conftest import small_config
from vae_search.cli import main
from vae_search.config import RunConfig


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def test_config_prints_a_complete_default_that_loads_back(tmp_path):
    res = run("config")
    assert res.exit_code == 0
    assert RunConfig.from_dict(yaml.safe_load(res.output)) == RunConfig()
    res = run("config", "-o", tmp_path / "c.yaml")
    assert RunConfig.from_file(tmp_path / "c.yaml") == RunConfig()


def test_train_writes_its_outputs(tmp_path):
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(small_config(epochs=2, images=True).to_yaml())
    res = run("train", cfg_path, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert len(metrics["history"]) == 2
    for key in ("elbo", "recon", "kl", "kl_per_dim", "active_units", "mutual_info", "nll_iwae", "iwae_samples"):
        assert key in metrics["final"]
    assert metrics["history"][0]["seconds"] > 0
    assert RunConfig.from_file(tmp_path / "out" / "config.yaml") == small_config(epochs=2, images=True)


def test_bad_config_is_one_line_and_exit_2(tmp_path):
    cfg_path = tmp_path / "bad.yaml"
    cfg_path.write_text("prior:\n  kind: gauss\nepochs: 0\n")
    res = run("train", cfg_path)
    assert res.exit_code == 2
    line = res.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "prior.kind: 'gauss' is not one of 'standard', 'mog', 'vamp'" in line
    assert "epochs: must be at least 1, got 0" in line


def test_missing_dataset_is_one_line(tmp_path):
    cfg_path = tmp_path / "mnist.yaml"
    cfg_path.write_text(yaml.safe_dump({"data": {"name": "mnist", "root": str(tmp_path / "d"), "download": False}}))
    res = run("train", cfg_path)
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "Traceback" not in res.output
    assert str(tmp_path / "d") in res.output and "shapes" in res.output


def test_cuda_asked_without_cuda(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(small_config().to_yaml())
    res = run("train", cfg_path, "--device", "cuda")
    assert res.exit_code == 2
    assert "CUDA is not available" in res.output


def test_test_max_examples_below_one_is_one_line(tmp_path):
    for bad in (0, -5):
        cfg_path = tmp_path / "bad.yaml"
        cfg_path.write_text(yaml.safe_dump({"eval": {"test_max_examples": bad}}))
        res = run("train", cfg_path)
        assert res.exit_code == 2
        line = res.output.strip()
        assert "\n" not in line and "Traceback" not in line
        assert f"eval.test_max_examples: must be >= 1 or null (the whole test split), got {bad}" in line
