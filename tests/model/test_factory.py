"""Custom models through ``model.arch: custom``: the factory interface is enough to rebuild the
stock MLP exactly, and every broken factory is one line before anything trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from vae_search.cli import main
from vae_search.config import RunConfig
from vae_search.data import load_data
from vae_search.errors import ConfigError
from vae_search.model.factory import import_factory, source_hash
from vae_search.train import train

HERE = Path(__file__).parent
OWN = HERE / "own_mlp.py"


def config(**model) -> RunConfig:
    return RunConfig.from_dict({
        "data": {"name": "shapes", "size": 400, "image_size": 8},
        "model": {"latent_dim": 3, **model},
        "schedule": {"kind": "linear", "rate": 0.5, "free_bits": 0.1},
        "eval": {"batch_size": 100, "iwae_samples": 5},
        "epochs": 3, "batch_size": 32, "device": "cpu", "seed": 4, "images": False,
    })


FIGURES = ("train_loss", "elbo", "recon", "kl", "mutual_info", "beta")


def history(cfg: RunConfig, data) -> list[dict]:
    result = train(cfg, data=data)
    return [h.to_dict() for h in result.history] + [{"nll_iwae": result.final["nll_iwae"]}]


def test_a_factory_of_the_stock_mlp_gives_its_figures_and_so_does_a_second_implementation():
    data = load_data(config().data)
    stock = history(config(arch="mlp", hidden=[16]), data)
    options = {"hidden": [16], "activation": "relu"}
    same = history(config(arch="custom", factory="vae_search.model.factory:mlp", options=options), data)
    own = history(config(arch="custom", factory=f"{OWN}:build", options={"hidden": 16}), data)
    for other in (same, own):
        # every per-epoch figure, the per-dimension KL and the final IWAE agree to 1e-6
        for a, b in zip(stock, other, strict=True):
            for k, v in a.items():
                if k in FIGURES or k == "nll_iwae":
                    assert b[k] == pytest.approx(v, abs=1e-6, rel=1e-6), k
            if "kl_per_dim" in a:
                assert b["kl_per_dim"] == pytest.approx(a["kl_per_dim"], abs=1e-6)


def test_a_relative_file_factory_is_taken_from_the_config_files_folder(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.py").write_text(OWN.read_text())
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"model": {"arch": "custom", "factory": "models/mine.py:build"}}))
    cfg = RunConfig.from_file(path)
    # the path is resolved from the file's folder, not from the working directory
    assert cfg.model.factory == f"{(tmp_path / 'models' / 'mine.py').resolve()}:build"
    assert callable(import_factory(cfg.model.factory))


def test_the_recorded_hash_is_the_source_files_and_a_changed_file_warns(tmp_path, caplog):
    import hashlib

    mine = tmp_path / "mine.py"
    mine.write_text(OWN.read_text())
    ref = f"{mine}:build"
    # the hash is sha256 of the factory's file (first 16 hex digits)
    assert source_hash(ref) == hashlib.sha256(mine.read_bytes()).hexdigest()[:16]
    cfg = config(arch="custom", factory=ref, options={"hidden": 8}).replace(epochs=1)
    data = load_data(cfg.data)
    result = train(cfg, data=data)
    assert result.config.model.factory_hash == source_hash(ref)
    old = RunConfig.from_dict(result.config.to_dict())
    old.model.factory_hash = "0" * 16  # as if recorded from other code
    with caplog.at_level("WARNING"):
        train(old, data=data)
    assert any("source file differs" in r.message for r in caplog.records)


BAD = [
    ("no_such_pkg.models:build", "no module named 'no_such_pkg'"),
    ("vae_search.model.factory:nope", "has no function 'nope'"),
    (f"{HERE}/missing.py:build", "no such file"),
    (f"{OWN}:raises", "the factory raised ValueError: width must be even"),
    (f"{OWN}:not_a_pair", "must return (encoder, decoder)"),
    (f"{OWN}:wrong_latent", "the encoder's mu has shape (8, 4), expected (batch, latent_dim) = (8, 3)"),
    (f"{OWN}:wrong_output", "the decoder's output has shape (8, 64), expected (8, 1, 8, 8)"),
]


@pytest.mark.parametrize(("factory", "needle"), BAD)
def test_a_bad_factory_is_one_line_with_exit_2(tmp_path, factory, needle):
    path = tmp_path / "run.yaml"
    raw = config(arch="custom", factory=factory, options={"hidden": 16}).to_dict()
    path.write_text(yaml.safe_dump(raw))
    res = CliRunner().invoke(main, ["train", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    text = res.output.strip()
    # one line, no traceback, naming the factory and the problem
    assert "\n" not in text and "Traceback" not in text, text
    assert "model.factory" in text and factory.split(":")[-1] in text and needle in text, text
    assert not (tmp_path / "out").exists()


def test_options_are_reachable_from_the_space_and_checked_at_load():
    from vae_search.study.spec import StudySpec

    spec = StudySpec.from_dict({
        "study": "s", "run": config(arch="custom", factory=f"{OWN}:build", options={"hidden": 8}).to_dict(),
        "space": {"model.options.hidden": {"type": "categorical", "choices": [8, 16]}},
    })
    assert [p.key for p in spec.params] == ["model.options.hidden"]
    with pytest.raises(ConfigError, match="prior.kind: vamp needs pseudo-inputs"):
        RunConfig.from_dict({"data": {"name": "sentences"}, "model": {"arch": "lstm", "likelihood": "categorical"},
                             "prior": {"kind": "vamp"}})
