"""torchvision datasets, read through torchvision's own classes from fake files on disk."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from vae_search.config import DataConfig
from vae_search.data import load_data
from vae_search.data.splits import split_indices
from vae_search.data.testing import write_cifar10, write_mnist
from vae_search.errors import DataError

FOLDERS = {
    "mnist": os.path.join("MNIST", "raw"),
    "fashion-mnist": os.path.join("FashionMNIST", "raw"),
    "kmnist": os.path.join("KMNIST", "raw"),
    "cifar10": "cifar-10-batches-py",
}


def _expected(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).to(torch.float32) / 255


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "kmnist"])
def test_mnist_family_round_trips_through_torchvision(tmp_path, name) -> None:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    train[0] = 0  # include both extremes
    train[1] = 255
    test = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    write_mnist(tmp_path, train, test, name=name)

    cfg = DataConfig(name=name, root=str(tmp_path), download=False, val_fraction=0.2, split_seed=4)
    out = load_data(cfg)
    train_idx, val_idx = split_indices(50, 0.2, 4)
    # every pixel comes back as uint8 / 255, rows where the split puts them
    expected = _expected(train).unsqueeze(1)
    assert torch.equal(out.train, expected[train_idx])
    assert torch.equal(out.val, expected[val_idx])
    assert torch.equal(out.test, _expected(test).unsqueeze(1))
    assert out.shape == (1, 28, 28) and out.is_image and out.binary_ok
    assert out.train.dtype == torch.float32 and out.name == name
    assert out.factor_names == () and out.train_factors is None


def test_cifar10_round_trips_through_torchvision(tmp_path, skip_cifar_md5) -> None:
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (23, 32, 32, 3), dtype=np.uint8)  # HWC, like .data
    test = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    write_cifar10(tmp_path, train, test)

    cfg = DataConfig(name="cifar10", root=str(tmp_path), download=False, val_fraction=0.2)
    out = load_data(cfg)
    train_idx, val_idx = split_indices(23, 0.2, 0)
    # CHW float, channel c of pixel (h, w) is train[n, h, w, c] / 255
    expected = _expected(train).permute(0, 3, 1, 2)
    assert torch.equal(out.train, expected[train_idx])
    assert torch.equal(out.val, expected[val_idx])
    assert torch.equal(out.test, _expected(test).permute(0, 3, 1, 2))
    assert out.shape == (3, 32, 32)


def test_binarize_applies_to_torchvision_data(tmp_path) -> None:
    rng = np.random.default_rng(2)
    write_mnist(
        tmp_path,
        rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
    )
    cfg = DataConfig(name="mnist", root=str(tmp_path), download=False, binarize="dynamic")
    out = load_data(cfg)
    assert set(out.test.unique().tolist()) <= {0.0, 1.0}
    assert len(out.train.unique()) > 2  # train stays grey


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_missing_dataset_is_one_clear_error(tmp_path, name) -> None:
    root = tmp_path / "data"
    with pytest.raises(DataError) as err:
        load_data(DataConfig(name=name, root=str(root), download=False))
    msg = str(err.value)
    where = os.path.join(str(root), FOLDERS[name])
    # one line naming the dataset, the directory torchvision reads and the offline dataset
    assert "\n" not in msg
    assert msg.startswith(f"{name}: dataset files not found in {where}")
    assert f"into {where}" in msg and "data.name: shapes" in msg


def test_missing_mnist_message_reads_well(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        load_data(DataConfig(name="mnist", root="data", download=False))
    assert str(err.value) == (
        "mnist: dataset files not found in data/MNIST/raw and data.download is false. "
        "Download it on a connected machine into data/MNIST/raw, or use data.name: shapes, "
        "which needs no download."
    )


def test_corrupt_files_are_reported_as_unreadable(tmp_path) -> None:
    rng = np.random.default_rng(3)
    raw = write_mnist(
        tmp_path,
        rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
    )
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:500])  # truncated
    with pytest.raises(DataError, match="cannot be read") as err:
        load_data(DataConfig(name="mnist", root=str(tmp_path), download=False))
    assert str(raw) in str(err.value) and "\n" not in str(err.value)


def test_fake_cifar10_fails_torchvision_md5_check(tmp_path) -> None:
    # without the MD5 bypass, torchvision refuses files that are not the real dataset
    rng = np.random.default_rng(4)
    write_cifar10(
        tmp_path,
        rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
        rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),
    )
    with pytest.raises(DataError, match="cannot be read"):
        load_data(DataConfig(name="cifar10", root=str(tmp_path), download=False))


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch) -> None:
    from urllib.error import URLError

    import torchvision.datasets.mnist as tv_mnist

    def offline(*args, **kwargs):
        raise URLError("Name or service not known")

    # download: true with no network: torchvision tries every mirror, then gives up
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as err:
        load_data(DataConfig(name="kmnist", root=str(tmp_path), download=True))
    where = os.path.join(str(tmp_path), "KMNIST", "raw")
    assert str(err.value).startswith(
        f"kmnist: dataset files not found in {where} and could not be downloaded (no network?)."
    )


def test_an_unwritable_data_root_names_the_permission_not_the_network(tmp_path, monkeypatch) -> None:
    # a container user (uid 1000) under a root-owned working directory: torchvision's makedirs
    # fails; root can write anywhere here, so the refusal is simulated at that call
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "makedirs", refuse)
    with pytest.raises(DataError) as err:
        load_data(DataConfig(name="mnist", root=str(tmp_path / "data"), download=True))
    assert str(err.value).startswith("mnist: no permission to use ")
    assert "(Permission denied); make data.root" in str(err.value) and "no network" not in str(err.value)
