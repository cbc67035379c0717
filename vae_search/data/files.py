"""User data: ``array`` (a .npy / .npz file) and ``image-folder`` (a folder of images).

``array`` reads ``cfg.path``:

* ``.npy``: one array, the training set (there is no test split);
* ``.npz``: key ``train`` and optional key ``test``; a file with neither key but exactly one
  array uses that array as the training set.

Shapes: ``(N, D)`` stays flat, ``(N, H, W)`` gains a channel ``(N, 1, H, W)``, ``(N, C, H, W)``
is kept. uint8 is divided by 255, bool becomes 0/1, other numbers are cast to float32 as they
are (``binary_ok`` then says whether they lie in [0, 1]).

``image-folder`` reads every .png / .jpg / .jpeg / .bmp file under ``cfg.path``, recursively,
sorted by relative path. If every image is mode ``L`` or ``1`` they are read as grayscale,
otherwise all are converted to RGB (an alpha channel is dropped). All must share one size.
There is no test split.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vae_search.config import DataConfig
from vae_search.data.splits import DataSplits, make_splits
from vae_search.errors import DataError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
GRAY_MODES = ("L", "1")


# -- array --------------------------------------------------------------------------------
def _check_array(a: np.ndarray, where: str) -> torch.Tensor:
    """Validate one array and return it as a tensor shaped ``(N, D)`` or ``(N, C, H, W)``."""
    if a.dtype.kind not in "biuf":
        raise DataError(
            f"{where}: arrays of dtype {a.dtype} are not supported; save a numeric array "
            "(uint8 0-255 or float)"
        )
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim not in (2, 4):
        raise DataError(
            f"{where}: array of shape {a.shape} has {a.ndim} dimensions; save it as "
            "N x D, N x H x W or N x C x H x W"
        )
    if a.shape[0] == 0 or a.size == 0:
        raise DataError(f"{where}: array of shape {a.shape} is empty; save at least 2 examples")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = int(a.size - np.isfinite(a).sum())
        raise DataError(
            f"{where}: {bad} NaN or infinite values; clean them out of the array before training"
        )
    if a.dtype.kind == "b" or a.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(a))
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    with np.load(path, allow_pickle=False) as z:
        keys = list(z.keys())
        if "train" in keys:
            return z["train"], (z["test"] if "test" in keys else None)
        if "test" in keys:
            raise DataError(
                f"array: {path} has a 'test' array but no 'train' array; add one under the "
                "key 'train'"
            )
        if len(keys) == 1:
            return z[keys[0]], None
        raise DataError(
            f"array: {path} has arrays {keys} but no key 'train'; save the training set as "
            "np.savez(path, train=..., test=...)"
        )


def load_array(cfg: DataConfig) -> DataSplits:
    """Load ``cfg.path``, a .npy or .npz file (see the module docstring).

    Args:
        cfg: the data config; ``path`` names the file.

    Returns:
        The splits; ``test`` is the .npz's ``test`` array, or None.

    Raises:
        DataError: the file is missing or unreadable, has the wrong keys, an unsupported
            shape or dtype, or NaN / infinite values.
    """
    path = Path(cfg.path or "")
    if not path.is_file():
        raise DataError(f"array: {path}: no such file; set data.path to a .npy or .npz file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            train, test = np.load(path, allow_pickle=False), None
        elif suffix == ".npz":
            train, test = _read_npz(path)
        else:
            raise DataError(
                f"array: {path}: unsupported extension {suffix or '(none)'!r}; save the data "
                "with np.save (.npy) or np.savez (.npz)"
            )
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(
            f"array: {path} cannot be read as {suffix} ({e}); save it with np.save / np.savez "
            "(no pickled objects)"
        ) from e
    x = _check_array(train, f"array: {path}")
    x_test = None
    if test is not None:
        x_test = _check_array(test, f"array: {path} (key 'test')")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(
                f"array: {path}: test examples have shape {tuple(x_test.shape[1:])} but train "
                f"examples {tuple(x.shape[1:])}; save both with the same shape"
            )
    return make_splits(cfg, x, x_test)


# -- image-folder -------------------------------------------------------------------------
def _find_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(
            f"image-folder: {folder}: no such directory; set data.path to a folder of images"
        )
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(
            f"image-folder: no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} images under "
            f"{folder}; put the images there or fix data.path"
        )
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _header(path: Path) -> tuple[str, tuple[int, int]]:
    """Mode and size of an image, reading only its header."""
    try:
        with Image.open(path) as im:
            return im.mode, im.size
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(
            f"image-folder: {path} cannot be read as an image ({e}); remove or replace it"
        ) from e


def load_image_folder(cfg: DataConfig) -> DataSplits:
    """Load every image under ``cfg.path`` (see the module docstring).

    Args:
        cfg: the data config; ``path`` names the folder.

    Returns:
        The splits, float32 in [0, 1] with shape ``(N, C, H, W)``, C = 1 or 3; no test split.

    Raises:
        DataError: the folder is missing or holds no images, an image is unreadable, or the
            images differ in size.
    """
    folder = Path(cfg.path or "")
    files = _find_images(folder)
    headers = [_header(p) for p in files]
    mode = "L" if all(m in GRAY_MODES for m, _ in headers) else "RGB"
    size = headers[0][1]
    for p, (_, s) in zip(files, headers, strict=True):
        if s != size:
            raise DataError(
                f"image-folder: {p} is {s[0]}x{s[1]} pixels but {files[0]} is "
                f"{size[0]}x{size[1]}; all images must share one size, so resize them first"
            )
    w, h = size
    channels = 1 if mode == "L" else 3
    out = np.empty((len(files), h, w, channels), dtype=np.uint8)
    for i, p in enumerate(files):
        try:
            with Image.open(p) as im:
                out[i] = np.asarray(im.convert(mode)).reshape(h, w, channels)
        except OSError as e:
            raise DataError(
                f"image-folder: {p} cannot be decoded ({e}); remove or replace it"
            ) from e
    logger.info("image-folder: read %d %s images of %dx%d from %s", len(files), mode, w, h, folder)
    return make_splits(cfg, torch.from_numpy(out).permute(0, 3, 1, 2))
