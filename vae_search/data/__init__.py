"""Datasets as float32 tensors split into train / validation / test.

``load_data(cfg)`` reads the dataset named by ``cfg.name`` and returns :class:`DataSplits`.
The split, ``limit`` and binarisation rules shared by every dataset are described in
:mod:`vae_search.data.splits`; each source's own rules in its module:

* ``shapes``: :mod:`vae_search.data.shapes` (generated, offline);
* ``mnist``, ``fashion-mnist``, ``kmnist``, ``cifar10``: :mod:`vae_search.data.vision`;
* ``array``, ``image-folder``: :mod:`vae_search.data.files`;
* ``tokens``, ``text`` (token ids, int64): :mod:`vae_search.data.tokens`;
* ``sentences`` (generated text, offline): :mod:`vae_search.data.sentences`.
"""

from __future__ import annotations

from collections.abc import Callable

from vae_search.config import DataConfig
from vae_search.data.files import load_array, load_image_folder
from vae_search.data.sentences import load_sentences
from vae_search.data.shapes import load_shapes
from vae_search.data.splits import DataSplits
from vae_search.data.tokens import load_text, load_tokens
from vae_search.data.vision import SOURCES, load_vision
from vae_search.errors import ConfigError, DataError

__all__ = ["DataSplits", "load_data", "LOADERS"]

LOADERS: dict[str, Callable[[DataConfig], DataSplits]] = {
    "shapes": load_shapes,
    **{name: load_vision for name in SOURCES},
    "array": load_array,
    "image-folder": load_image_folder,
    "tokens": load_tokens,
    "text": load_text,
    "sentences": load_sentences,
}


def load_data(cfg: DataConfig) -> DataSplits:
    """Load, split and (optionally) binarise the dataset a config names.

    Deterministic given the config: the same config gives the same tensors.

    Args:
        cfg: the data section of a run config.

    Returns:
        The train / validation / test splits as float32 CPU tensors (token data: int64 ids).

    Raises:
        ConfigError: the config breaks one of ``DataConfig``'s rules (``val_fraction`` ...).
        DataError: the dataset is unknown, missing, unreadable or of an unsupported shape, or
            ``binarize`` is asked for on data outside [0, 1].
    """
    problems = cfg.problems()
    if problems:
        raise ConfigError("; ".join(f"data.{p}" for p in problems))
    loader = LOADERS.get(cfg.name)
    if loader is None:
        raise DataError(f"data.name: unknown dataset {cfg.name!r}; use one of {', '.join(LOADERS)}")
    return loader(cfg)
