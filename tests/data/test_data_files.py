"""User data: .npy / .npz arrays and folders of images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vae_search.config import DataConfig
from vae_search.data import load_data
from vae_search.data.splits import split_indices
from vae_search.errors import DataError


def _array_cfg(path, **kw) -> DataConfig:
    return DataConfig(name="array", path=str(path), **kw)


def _all_rows(out) -> torch.Tensor:
    """Undo the split: the source's rows in their original order."""
    n = len(out.train) + len(out.val)
    train_idx, val_idx = split_indices(n, 0.1, 0)
    rows = torch.empty((n, *out.shape))
    rows[train_idx], rows[val_idx] = out.train, out.val
    return rows


# -- array --------------------------------------------------------------------------------
def test_npy_uint8_flat(tmp_path) -> None:
    a = np.random.default_rng(0).integers(0, 256, (30, 12), dtype=np.uint8)
    np.save(tmp_path / "x.npy", a)
    out = load_data(_array_cfg(tmp_path / "x.npy"))
    # flat vectors keep (N, D); uint8 is divided by 255
    assert out.shape == (12,) and not out.is_image and out.test is None
    assert torch.equal(_all_rows(out), torch.from_numpy(a).float() / 255)
    assert out.binary_ok


def test_npy_float_kept_and_binary_ok_from_range(tmp_path) -> None:
    a = np.random.default_rng(1).random((30, 5)).astype(np.float64)
    np.save(tmp_path / "unit.npy", a)
    out = load_data(_array_cfg(tmp_path / "unit.npy"))
    assert torch.equal(_all_rows(out), torch.from_numpy(a.astype(np.float32)))
    assert out.binary_ok
    np.save(tmp_path / "wide.npy", a * 4 - 2)
    assert not load_data(_array_cfg(tmp_path / "wide.npy")).binary_ok


def test_npy_three_dims_gain_a_channel(tmp_path) -> None:
    a = np.random.default_rng(2).integers(0, 256, (20, 6, 7), dtype=np.uint8)
    np.save(tmp_path / "x.npy", a)
    out = load_data(_array_cfg(tmp_path / "x.npy"))
    assert out.shape == (1, 6, 7) and out.is_image
    assert torch.equal(_all_rows(out), torch.from_numpy(a).float().unsqueeze(1) / 255)


def test_npy_four_dims_kept(tmp_path) -> None:
    a = np.random.default_rng(3).random((20, 3, 4, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", a)
    out = load_data(_array_cfg(tmp_path / "x.npy"))
    assert out.shape == (3, 4, 5)
    assert torch.equal(_all_rows(out), torch.from_numpy(a))


def test_bool_array_becomes_zero_one(tmp_path) -> None:
    a = np.random.default_rng(4).random((20, 8)) > 0.5
    np.save(tmp_path / "x.npy", a)
    out = load_data(_array_cfg(tmp_path / "x.npy"))
    assert torch.equal(_all_rows(out), torch.from_numpy(a).float())


def test_npz_train_and_test(tmp_path) -> None:
    rng = np.random.default_rng(5)
    train = rng.integers(0, 256, (40, 4, 4), dtype=np.uint8)
    test = rng.integers(0, 256, (9, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", train=train, test=test, labels=np.zeros(40))
    out = load_data(_array_cfg(tmp_path / "d.npz"))
    assert torch.equal(_all_rows(out), torch.from_numpy(train).float().unsqueeze(1) / 255)
    assert torch.equal(out.test, torch.from_numpy(test).float().unsqueeze(1) / 255)


def test_npz_with_one_unnamed_array(tmp_path) -> None:
    a = np.random.default_rng(6).random((20, 3)).astype(np.float32)
    np.savez(tmp_path / "d.npz", a)  # stored as arr_0
    out = load_data(_array_cfg(tmp_path / "d.npz"))
    assert torch.equal(_all_rows(out), torch.from_numpy(a)) and out.test is None


def test_binarize_on_out_of_range_array_is_an_error(tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.full((10, 3), 2.0, dtype=np.float32))
    with pytest.raises(DataError, match=r"binarize: static needs data in \[0, 1\]"):
        load_data(_array_cfg(tmp_path / "x.npy", binarize="static"))


def _save_npz(path, **arrays) -> None:
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("file", "write", "match"),
    [
        ("missing.npy", None, "no such file"),
        ("x.csv", lambda p: p.write_text("1,2\n"), "unsupported extension"),
        ("x.npy", lambda p: p.write_bytes(b"not numpy"), "cannot be read"),
        ("x.npz", lambda p: p.write_bytes(b"not a zip"), "cannot be read"),
        ("x.npy", lambda p: np.save(p, np.zeros(10)), "1 dimensions"),
        ("x.npy", lambda p: np.save(p, np.zeros((2, 2, 2, 2, 2))), "5 dimensions"),
        ("x.npy", lambda p: np.save(p, np.zeros((0, 3))), "empty"),
        ("x.npy", lambda p: np.save(p, np.array([[0.5, np.nan]] * 4)), "NaN"),
        ("x.npy", lambda p: np.save(p, np.array([[0.5, np.inf]] * 4)), "infinite"),
        ("x.npy", lambda p: np.save(p, np.array([["a", "b"]] * 4)), "dtype"),
        ("x.npy", lambda p: np.save(p, np.array([[{}]] * 4), allow_pickle=True), "cannot be read"),
        ("x.npz", lambda p: _save_npz(p, a=np.zeros((4, 2)), b=np.zeros((4, 2))), "no key 'train'"),
        ("x.npz", lambda p: _save_npz(p, test=np.zeros((4, 2))), "no 'train' array"),
        (
            "x.npz",
            lambda p: _save_npz(p, train=np.zeros((4, 2)), test=np.zeros((4, 3))),
            "same shape",
        ),
    ],
)
def test_bad_arrays_raise_data_error_naming_the_file(tmp_path, file, write, match) -> None:
    path = tmp_path / file
    if write is not None:
        write(path)
    with pytest.raises(DataError, match=match) as err:
        load_data(_array_cfg(path))
    msg = str(err.value)
    # one line, naming the file
    assert str(path) in msg and "\n" not in msg


# -- image-folder -------------------------------------------------------------------------
def _png(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_grayscale_folder_values_and_order(tmp_path) -> None:
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (12, 5, 6), dtype=np.uint8)
    # sorted by relative path: a/00.png .. a/05.png, b/06.png .. b/11.png
    for i, a in enumerate(images):
        sub = "a" if i < 6 else "b"
        suffix = ".bmp" if i == 3 else (".PNG" if i == 4 else ".png")
        _png(tmp_path / sub / f"{i:02d}{suffix}", a)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    out = load_data(DataConfig(name="image-folder", path=str(tmp_path)))
    # 5 rows x 6 columns, one channel, exact uint8 / 255 in sorted-path order
    assert out.shape == (1, 5, 6) and out.test is None
    assert torch.equal(_all_rows(out), torch.from_numpy(images).float().unsqueeze(1) / 255)


def test_one_colour_image_makes_all_rgb(tmp_path) -> None:
    rng = np.random.default_rng(8)
    grey = rng.integers(0, 256, (10, 4, 4), dtype=np.uint8)
    colour = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    for i, a in enumerate(grey):
        _png(tmp_path / f"{i:02d}.png", a)
    _png(tmp_path / "99.png", colour)
    out = load_data(DataConfig(name="image-folder", path=str(tmp_path)))
    rows = _all_rows(out)
    assert out.shape == (3, 4, 4)
    # grey images repeat their value in R, G and B; the colour one keeps its channels
    assert torch.equal(rows[0], torch.from_numpy(grey[0]).float().expand(3, 4, 4) / 255)
    assert torch.equal(rows[10], torch.from_numpy(colour).float().permute(2, 0, 1) / 255)


def test_one_bit_images_are_grayscale(tmp_path) -> None:
    for i in range(4):
        a = np.zeros((4, 4), dtype=bool)
        a[i] = True
        Image.fromarray(a).convert("1").save(tmp_path / f"{i}.png")
    out = load_data(DataConfig(name="image-folder", path=str(tmp_path)))
    assert out.shape == (1, 4, 4)
    assert set(_all_rows(out).unique().tolist()) == {0.0, 1.0}


def test_mismatched_sizes_name_the_file(tmp_path) -> None:
    _png(tmp_path / "a.png", np.zeros((4, 4), dtype=np.uint8))
    _png(tmp_path / "b.png", np.zeros((4, 4), dtype=np.uint8))
    _png(tmp_path / "c.png", np.zeros((5, 4), dtype=np.uint8))
    with pytest.raises(DataError) as err:
        load_data(DataConfig(name="image-folder", path=str(tmp_path)))
    msg = str(err.value)
    assert str(tmp_path / "c.png") in msg and "4x5" in msg and "4x4" in msg and "resize" in msg


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda p: None, "no such directory"),
        (lambda p: p.mkdir(), "no png/jpg/jpeg/bmp images"),
        (lambda p: (p.mkdir(), (p / "x.png").write_bytes(b"garbage")), "cannot be read"),
    ],
)
def test_bad_folders_raise_data_error(tmp_path, setup, match) -> None:
    folder = tmp_path / "imgs"
    setup(folder)
    with pytest.raises(DataError, match=match) as err:
        load_data(DataConfig(name="image-folder", path=str(folder)))
    assert str(folder) in str(err.value)
