"""What every trial of a study needs, checked once before the study is touched.

A worker that cannot train (``device: cuda`` on a machine without CUDA, a dataset that is
missing and cannot be downloaded) would otherwise join the study, fail its first trial with
Optuna's traceback and leave a FAIL behind, once per worker and per restart. The preflight
turns those into one line before anything is written; it also checks the dataset once, and
downloads a torchvision dataset before several workers race to download it into the same
folder (:func:`fetch_data`: ``run``, ``launch``, ``create-study``).
"""

from __future__ import annotations

import logging
from typing import Any

from vae_search.config import RunConfig, merge
from vae_search.data import DataSplits, load_data
from vae_search.errors import ConfigError
from vae_search.study.spec import StudySpec
from vae_search.train.loop import device_problem

log = logging.getLogger(__name__)


def trial_base(spec: StudySpec, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The spec's fixed run config with a worker's ``overrides`` (``device``, ``threads``)."""
    base = spec.base_run()
    if overrides:
        base = RunConfig.from_dict(merge(base.to_dict(), overrides), source="worker options")
    return base


def check_device(spec: StudySpec, overrides: dict[str, Any] | None = None) -> None:
    """Raise one ConfigError, naming where the device came from, when it is not here."""
    device = trial_base(spec, overrides).device
    problem = device_problem(device)
    if problem is not None:
        where = "--device" if overrides and "device" in overrides else f"{spec.source}: run.device"
        raise ConfigError(f"{where} {device}: {problem}")


def prepare_data(spec: StudySpec, overrides: dict[str, Any] | None = None) -> DataSplits:
    """Load (and where allowed download) the spec's dataset; a DataError names the fix."""
    cfg = trial_base(spec, overrides).data
    log.debug("checking the data of study %r (%s)", spec.study, cfg.name)
    return load_data(cfg)


def model_label(cfg: RunConfig) -> str:
    m = cfg.model
    return f"model.factory {m.factory!r}" if m.arch == "custom" else f"model.arch {m.arch!r}"


def check_model(cfg: RunConfig, data: DataSplits, where: str = "") -> None:
    """Build the config's model and run one forward and backward pass on a real batch of the
    training split (on the CPU, at most 8 examples), so that a factory that cannot be
    imported, raises, or returns the wrong thing is one line, naming it, before any trial.
    """
    import torch

    from vae_search.model import build_vae
    from vae_search.model.factory import check_model as dry_run
    from vae_search.train.loop import sequence_info

    label = f"{where}{model_label(cfg)}"
    try:
        model = build_vae(cfg, data.shape, sequence_info(data))
    except ConfigError as e:
        raise ConfigError(f"{where}{e}") from e
    x = data.train[: min(8, cfg.batch_size, len(data.train))]
    with torch.random.fork_rng():  # leave the caller's random streams as they were
        dry_run(model, x, label)
    log.info("%s: one forward and backward pass on a batch of %d passed", label, len(x))


def fetch_data(spec: StudySpec) -> None:
    """Check the spec's dataset once, before the study is created or workers start: download
    (or find) a torchvision dataset, read a ``.npy``/``.npz`` file or an image folder, so a
    missing file, a NaN or an empty folder is one line and leaves no empty study behind.

    Generated shapes cannot be missing or broken (their config was checked with the spec), and
    each worker generates them itself, so they are not made here (the quickstart's shapes
    would cost the launcher seconds for nothing).
    """
    if spec.base_run().data.name in GENERATED:
        return
    prepare_data(spec)


GENERATED = ("shapes",)  # datasets made in process: nothing on disk or online to check
