"""What ``vae-search train --out DIR`` leaves in DIR.

- ``config.yaml``: the resolved run config (feed it back to ``vae-search train``);
- ``metrics.json``: per-epoch history and final figures;
- ``model.pt``: the state dict, loadable with ``torch.load(..., weights_only=True)``;
- ``reconstructions.png`` and ``samples.png`` for image data.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from vae_search.config import RunConfig
from vae_search.model import VAE, build_vae
from vae_search.model.factory import SequenceInfo
from vae_search.pictures import save_pictures
from vae_search.train.loop import RunResult

log = logging.getLogger(__name__)


def write_run(result: RunResult, out_dir: Path, val_x: torch.Tensor | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(result.config.to_yaml())
    (out_dir / "metrics.json").write_text(json.dumps(result.metrics(), indent=2))
    torch.save(result.model.state_dict(), out_dir / "model.pt")
    if result.config.images and val_x is not None:
        device = next(result.model.parameters()).device
        save_pictures(result.model, val_x[:64].to(device), out_dir, seed=result.config.seed)
    log.info("wrote %s", out_dir)


def load_model(run_dir: Path, shape: tuple[int, ...], sequence: SequenceInfo | None = None
               ) -> tuple[RunConfig, VAE]:
    """Rebuild a trained model from a run directory (config.yaml + model.pt); token data also
    need their :class:`SequenceInfo` (``vae_search.train.loop.sequence_info(data)``)."""
    cfg = RunConfig.from_file(run_dir / "config.yaml")
    model = build_vae(cfg, shape, sequence)
    model.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True, map_location="cpu"))
    return cfg, model
