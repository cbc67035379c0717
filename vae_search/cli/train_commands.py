"""``vae-search config`` and ``vae-search train``."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from vae_search.config import RunConfig

log = logging.getLogger(__name__)


@click.command("config")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
def config_cmd(output: Path | None) -> None:
    """Print a complete default run config (YAML) to start from."""
    text = RunConfig().to_yaml()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        log.info("wrote %s", output)


@contextmanager
def step_progress(enabled: bool) -> Iterator[object]:
    """A tqdm bar per epoch on a terminal; None (plain log lines) otherwise."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    state: dict[str, object] = {}

    def update(epoch: int, step: int, steps: int) -> None:
        bar = state.get("bar")
        if bar is None or state.get("epoch") != epoch:
            if bar is not None:
                bar.close()  # type: ignore[attr-defined]
            bar = tqdm(total=steps, desc=f"epoch {epoch}", leave=False, file=sys.stderr, unit="step")
            state.update(bar=bar, epoch=epoch)
        bar.update(1)  # type: ignore[attr-defined]

    try:
        yield update
    finally:
        if state.get("bar") is not None:
            state["bar"].close()  # type: ignore[attr-defined]


@click.command("train")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/train"),
              show_default=True, help="Directory for config, metrics, weights and pictures.")
@click.option("--device", help="Override the config's device (auto, cpu, cuda, cuda:K).")
@click.option("--epochs", type=int, help="Override the config's epochs.")
def train_cmd(config: Path | None, out_dir: Path, device: str | None, epochs: int | None) -> None:
    """Train one VAE from CONFIG (YAML; the defaults when omitted) and write the results to --out."""
    from vae_search.data import load_data
    from vae_search.train import train
    from vae_search.train.outputs import write_run
    from vae_search.workers.preflight import check_model

    cfg = RunConfig.from_file(config) if config else RunConfig()
    overrides = {k: v for k, v in (("device", device), ("epochs", epochs)) if v is not None}
    if overrides:
        cfg = RunConfig.from_dict({**cfg.to_dict(), **overrides}, source="command line")
    data = load_data(cfg.data)
    check_model(cfg, data, f"{config or 'config'}: ")
    if data.vocab is not None and cfg.data.vocab is None:  # config.yaml re-runs with this vocabulary
        cfg = cfg.replace(data=dataclasses.replace(cfg.data, vocab=list(data.vocab)))
    log.info("data %s: %d train, %d validation, shape %s", data.name, len(data.train), len(data.val), data.shape)
    with step_progress(sys.stderr.isatty()) as progress:
        result = train(cfg, data=data, progress=progress)  # type: ignore[arg-type]
    write_run(result, out_dir, data.val)
    f = result.final
    nll = f"{f['nll_iwae']:.2f}" if f["nll_iwae"] is not None else "n/a"
    click.echo(
        f"-elbo {f['elbo']:.2f}  nll_iwae(k={f['iwae_samples']}) {nll}  recon {f['recon']:.2f}  "
        f"kl {f['kl']:.2f}  active units {f['active_units']}/{f['latent_dim']}  mi {f['mutual_info']:.2f}"
        + (f"  ppl {f['ppl_iwae'] if f.get('ppl_iwae') is not None else f['ppl_elbo']:.2f}" if "ppl_elbo" in f else "")
        + f"  -> {out_dir}"
    )


COMMANDS = [config_cmd, train_cmd]
