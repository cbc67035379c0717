"""torchvision datasets: ``mnist``, ``fashion-mnist``, ``kmnist`` and ``cifar10``.

Loaded through torchvision's own classes with ``root=cfg.root`` and ``download=cfg.download``
(``train=True`` for train + validation, ``train=False`` for test). The raw uint8 arrays are read
from the dataset's ``.data`` attribute instead of iterating items, and turned into
``(N, C, H, W)``; the float conversion happens after the split (in
:func:`~vae_search.data.splits.make_splits`) so only the kept examples are converted.

Missing files that cannot be downloaded (no network, or ``download: false``) become one
:class:`~vae_search.errors.DataError` naming the directory torchvision reads and the offline
``shapes`` dataset.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError

import numpy as np
import torch

from vae_search.config import DataConfig
from vae_search.data.splits import DataSplits, make_splits
from vae_search.errors import DataError

logger = logging.getLogger(__name__)


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")


@dataclass(frozen=True)
class VisionSource:
    """How one torchvision dataset is found and read.

    Attributes:
        class_name: the class in ``torchvision.datasets``.
        folder: where torchvision reads the files, relative to ``root``.
        files: the files torchvision needs in ``folder`` (to tell missing from corrupt).
        channels_last: ``.data`` is ``(N, H, W, C)`` (CIFAR) rather than ``(N, H, W)``.
    """

    class_name: str
    folder: str
    files: tuple[str, ...] = _MNIST_FILES
    channels_last: bool = False


SOURCES: dict[str, VisionSource] = {
    "mnist": VisionSource("MNIST", os.path.join("MNIST", "raw")),
    "fashion-mnist": VisionSource("FashionMNIST", os.path.join("FashionMNIST", "raw")),
    "kmnist": VisionSource("KMNIST", os.path.join("KMNIST", "raw")),
    "cifar10": VisionSource(
        "CIFAR10", "cifar-10-batches-py", files=_CIFAR10_FILES, channels_last=True
    ),
}

# What torchvision raises for files that are missing or cannot be fetched (RuntimeError,
# URLError, OSError) and for files that are there but not what it expects (the rest); which of
# the two happened is told by looking at the files.
_READ_ERRORS = (
    RuntimeError,
    URLError,
    OSError,
    ValueError,
    TypeError,
    AssertionError,
    KeyError,
    EOFError,
    pickle.UnpicklingError,
)


def _as_nchw(data: Any, source: VisionSource) -> torch.Tensor:
    """The ``.data`` attribute as a uint8 ``(N, C, H, W)`` tensor (a view where possible)."""
    t = torch.from_numpy(np.asarray(data)) if not isinstance(data, torch.Tensor) else data
    if source.channels_last:
        return t.permute(0, 3, 1, 2)
    return t.unsqueeze(1)


def _read(cfg: DataConfig, source: VisionSource, train: bool) -> torch.Tensor:
    """Instantiate the torchvision class for one split and return its images."""
    import torchvision.datasets  # heavy; only needed for these datasets

    cls = getattr(torchvision.datasets, source.class_name)
    where = os.path.join(cfg.root, source.folder)
    try:
        ds = cls(root=cfg.root, train=train, download=cfg.download)
    except PermissionError as e:  # a container's user, a read-only share: not a network problem
        raise DataError(
            f"{cfg.name}: no permission to use {e.filename or where} ({e.strerror}); make "
            f"data.root ({cfg.root}) writable by this user, or point data.root elsewhere"
        ) from e
    except _READ_ERRORS as e:
        if not all(os.path.isfile(os.path.join(where, f)) for f in source.files):
            how = (
                "could not be downloaded (no network?)"
                if cfg.download
                else "data.download is false"
            )
            raise DataError(
                f"{cfg.name}: dataset files not found in {where} and {how}. Download it on a "
                f"connected machine into {where}, or use data.name: shapes, which needs no "
                "download."
            ) from e
        reason = " ".join(str(e).split()) or type(e).__name__
        raise DataError(
            f"{cfg.name}: the dataset files in {where} cannot be read ({reason}); delete them "
            "and download the dataset again"
        ) from e
    return _as_nchw(ds.data, source)


def load_vision(cfg: DataConfig) -> DataSplits:
    """Load a torchvision dataset (``mnist``, ``fashion-mnist``, ``kmnist``, ``cifar10``).

    Args:
        cfg: the data config; ``name`` picks the dataset, ``root`` and ``download`` are handed
            to torchvision.

    Returns:
        The splits, float32 in [0, 1] with shape ``(N, C, H, W)``; test is the official test
        set.

    Raises:
        DataError: the files are missing and cannot be downloaded, or are unreadable.
    """
    source = SOURCES[cfg.name]
    train = _read(cfg, source, train=True)
    test = _read(cfg, source, train=False)
    logger.info(
        "%s: read %d train and %d test images from %s", cfg.name, len(train), len(test), cfg.root
    )
    return make_splits(cfg, train, test)
