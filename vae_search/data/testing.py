"""Write small fake copies of torchvision datasets, for tests and benchmarks without network.

The files follow the layouts torchvision 0.29 reads: MNIST-family IDX files (uncompressed) in
``root/<ClassName>/raw``, and CIFAR-10 pickled batches in ``root/cifar-10-batches-py``.
torchvision checks the MD5 of every CIFAR-10 file against the real dataset, so fake CIFAR-10
files only load when that check is bypassed (tests patch
``torchvision.datasets.cifar.check_integrity``); the MNIST family checks only that files exist.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

from vae_search.data.vision import SOURCES

# IDX magic numbers: 0x0000 + type code 0x08 (unsigned byte) + number of dimensions
IMAGES_MAGIC = 2051  # 0x00000803: uint8, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: uint8, 1 dimension


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write a uint8 array of 1 to 3 dimensions as an IDX file (big-endian header).

    Args:
        path: the file to write.
        array: uint8 data, ``(N,)`` labels or ``(N, H, W)`` images.

    Returns:
        The path written.
    """
    a = np.ascontiguousarray(array, dtype=np.uint8)
    if not 1 <= a.ndim <= 3:
        raise ValueError(f"IDX files hold 1 to 3 dimensions, got shape {a.shape}")
    magic = 0x0800 + a.ndim
    header = struct.pack(f">I{a.ndim}I", magic, *a.shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + a.tobytes())
    return path


def write_mnist(
    root: str | Path,
    train_images: np.ndarray,
    test_images: np.ndarray,
    name: str = "mnist",
    train_labels: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
) -> Path:
    """Write an MNIST-family dataset (``mnist``, ``fashion-mnist``, ``kmnist``) under ``root``.

    Args:
        root: the ``data.root`` directory.
        train_images: uint8 ``(N, H, W)`` training images.
        test_images: uint8 ``(M, H, W)`` test images.
        name: which dataset's folder to write.
        train_labels: uint8 ``(N,)`` labels; zeros when None.
        test_labels: uint8 ``(M,)`` labels; zeros when None.

    Returns:
        The raw folder written (``root/<ClassName>/raw``).
    """
    raw = Path(root) / SOURCES[name].folder
    if train_labels is None:
        train_labels = np.zeros(len(train_images), dtype=np.uint8)
    if test_labels is None:
        test_labels = np.zeros(len(test_images), dtype=np.uint8)
    write_idx(raw / "train-images-idx3-ubyte", train_images)
    write_idx(raw / "train-labels-idx1-ubyte", train_labels)
    write_idx(raw / "t10k-images-idx3-ubyte", test_images)
    write_idx(raw / "t10k-labels-idx1-ubyte", test_labels)
    return raw


def write_cifar10(root: str | Path, train_images: np.ndarray, test_images: np.ndarray) -> Path:
    """Write CIFAR-10-layout pickles under ``root/cifar-10-batches-py``.

    The training images are spread over ``data_batch_1`` .. ``data_batch_5`` in order. The
    MD5s will not match the real dataset's (see the module docstring).

    Args:
        root: the ``data.root`` directory.
        train_images: uint8 ``(N, 32, 32, 3)`` training images (HWC, as torchvision's ``.data``).
        test_images: uint8 ``(M, 32, 32, 3)`` test images.

    Returns:
        The folder written.
    """
    folder = Path(root) / SOURCES["cifar10"].folder
    folder.mkdir(parents=True, exist_ok=True)

    def dump(file: str, images: np.ndarray) -> None:
        # the batches store rows of 3072 bytes: the red plane, then green, then blue
        rows = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), -1)
        entry = {"data": rows.astype(np.uint8), "labels": [0] * len(images)}
        (folder / file).write_bytes(pickle.dumps(entry))

    for i, chunk in enumerate(np.array_split(train_images, 5)):
        dump(f"data_batch_{i + 1}", chunk)
    dump("test_batch", test_images)
    meta = {"label_names": [f"class{i}" for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder
