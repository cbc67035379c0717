"""The generated ``shapes`` dataset: sizes, determinism and factors that match the pixels."""

from __future__ import annotations

import math
import time

import pytest
import torch

from vae_search.config import DataConfig
from vae_search.data import load_data
from vae_search.data.shapes import FACTOR_NAMES, MAX_RADIUS, SHAPE_NAMES, generate, render

SIZE = 32


@pytest.fixture(scope="module")
def shapes():
    return load_data(DataConfig(name="shapes", size=3000, image_size=SIZE, split_seed=0))


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Pixel count, centroid (fractions of the side, x right / y down) and 2nd moments."""
    img = x[:, 0]
    c = (torch.arange(img.shape[-1], dtype=torch.float32) + 0.5) / img.shape[-1]
    gx, gy = c.view(1, 1, -1), c.view(1, -1, 1)
    m = img.sum((1, 2))
    cx = (img * gx).sum((1, 2)) / m
    cy = (img * gy).sum((1, 2)) / m
    dx, dy = gx - cx.view(-1, 1, 1), -(gy - cy.view(-1, 1, 1))  # y up for angles
    cxx = (img * dx * dx).sum((1, 2)) / m
    cyy = (img * dy * dy).sum((1, 2)) / m
    cxy = (img * dx * dy).sum((1, 2)) / m
    return m, cx, cy, cxx, cyy, cxy


def test_sizes_shapes_and_names(shapes) -> None:
    # 3000 for train + val split 90/10, and a test block of 3000 // 10
    assert shapes.train.shape == (2700, 1, SIZE, SIZE)
    assert shapes.val.shape == (300, 1, SIZE, SIZE)
    assert shapes.test.shape == (300, 1, SIZE, SIZE)
    assert shapes.shape == (1, SIZE, SIZE) and shapes.is_image
    assert shapes.factor_names == FACTOR_NAMES == ("shape", "scale", "rotation", "pos_x", "pos_y")
    assert shapes.train_factors.shape == (2700, 5) and shapes.val_factors.shape == (300, 5)
    assert shapes.train_factors.dtype == torch.float32


def test_pixels_are_binary(shapes) -> None:
    for part in (shapes.train, shapes.val, shapes.test):
        assert part.dtype == torch.float32
        assert set(part.unique().tolist()) == {0.0, 1.0}
    assert shapes.binary_ok
    # every image shows a shape
    assert shapes.train.sum((1, 2, 3)).min() > 0


def test_factor_ranges(shapes) -> None:
    f = shapes.train_factors
    assert set(f[:, 0].tolist()) == {0.0, 1.0, 2.0, 3.0}
    assert f[:, 1].min() >= 0.5 and f[:, 1].max() <= 1.0
    assert f[:, 2].min() >= 0.0 and f[:, 2].max() < 2 * math.pi
    assert f[:, 3:].min() >= MAX_RADIUS and f[:, 3:].max() <= 1 - MAX_RADIUS


def test_deterministic_from_split_seed(shapes) -> None:
    again = load_data(DataConfig(name="shapes", size=3000, image_size=SIZE, split_seed=0))
    for a, b in [
        (again.train, shapes.train),
        (again.val, shapes.val),
        (again.test, shapes.test),
        (again.train_factors, shapes.train_factors),
        (again.val_factors, shapes.val_factors),
    ]:
        assert torch.equal(a, b)
    other = load_data(DataConfig(name="shapes", size=3000, image_size=SIZE, split_seed=1))
    assert not torch.equal(other.train_factors, shapes.train_factors)
    assert not torch.equal(other.train, shapes.train)


def test_test_block_is_generated_apart(shapes) -> None:
    # the test images are not copies of training or validation images
    train = shapes.train.flatten(1)
    test = shapes.test.flatten(1)
    same = (test[:, None, :] == train[None, :, :]).all(-1)
    assert same.float().mean() < 0.01


@pytest.mark.parametrize("part", ["train", "val"])
def test_centroid_matches_position(shapes, part) -> None:
    x, f = getattr(shapes, part), getattr(shapes, f"{part}_factors")
    _, cx, cy, *_ = _moments(x)
    err = torch.stack([cx - f[:, 3], cy - f[:, 4]], 1).abs() * SIZE  # in pixels
    # each shape's centroid is its position, up to pixelation
    for k in range(len(SHAPE_NAMES)):
        e = err[f[:, 0] == k]
        assert e.mean() < 0.15, SHAPE_NAMES[k]
        assert e.max() < 1.0, SHAPE_NAMES[k]


def test_area_follows_scale_and_shape(shapes) -> None:
    f = shapes.train_factors
    m, *_ = _moments(shapes.train)
    # closed-form areas of the unit shapes: square inscribed in the unit circle, ellipse with
    # semi-axes 1 and 1/2, heart (square side a plus two half discs, a = 1 / 0.9286), triangle
    a = 1 / (
        1 / math.sqrt(2)
        + (math.pi / 4)
        / (1 + math.pi / 4)
        * (1 / (2 * math.sqrt(2)) + 2 / (3 * math.pi * math.sqrt(2)))
    )
    unit_area = [2.0, math.pi / 2, a * a * (1 + math.pi / 4), 3 * math.sqrt(3) / 4]
    for k, area in enumerate(unit_area):
        sel = f[:, 0] == k
        expected = area * (f[sel, 1] * MAX_RADIUS * SIZE) ** 2
        ratio = m[sel].sum() / expected.sum()
        assert abs(ratio - 1) < 0.03, (SHAPE_NAMES[k], float(ratio))
    # a larger scale gives more pixels on average
    big = f[:, 1] > 0.75
    assert m[big].mean() > 1.5 * m[~big].mean()


def test_rotation_turns_the_ellipse(shapes) -> None:
    f = shapes.train_factors
    _, _, _, cxx, cyy, cxy = _moments(shapes.train)
    sel = (f[:, 0] == 1) & (f[:, 1] > 0.7)
    # the principal axis of an ellipse's pixels points along its rotation (mod pi)
    axis = 0.5 * torch.atan2(2 * cxy[sel], cxx[sel] - cyy[sel])
    diff = torch.remainder(axis - f[sel, 2] + math.pi / 2, math.pi) - math.pi / 2
    assert diff.abs().mean() < 0.1 and diff.abs().max() < 0.35


def test_quarter_turn_of_a_centred_shape_is_a_transpose_flip() -> None:
    f = torch.tensor([[k, 1.0, 0.3, 0.5, 0.5] for k in range(4)])
    turned = f.clone()
    turned[:, 2] += math.pi / 2
    a, b = render(f, 40)[:, 0], render(turned, 40)[:, 0]
    # a counter-clockwise quarter turn about the centre maps pixel (r, c) to (W-1-c, r)
    expected = a.transpose(1, 2).flip(1)
    mismatch = (b != expected).sum((1, 2))
    assert (mismatch <= 4).all(), mismatch.tolist()


def test_image_size_and_limit() -> None:
    out = load_data(DataConfig(name="shapes", size=500, image_size=16, limit=90))
    assert out.train.shape == (90, 1, 16, 16)
    assert out.val.shape == (10, 1, 16, 16)  # round(90 * 0.1 / 0.9)
    assert out.test.shape == (50, 1, 16, 16)  # the test block is not limited
    assert out.train_factors.shape == (90, 5) and out.val_factors.shape == (10, 5)


def test_generating_20000_images_is_fast() -> None:
    start = time.perf_counter()
    images, factors = generate(20000, 32, seed=0)
    elapsed = time.perf_counter() - start
    assert images.shape == (20000, 1, 32, 32) and factors.shape == (20000, 5)
    # measured about 0.2 s on 2 cores; the bound only catches a per-pixel loop
    assert elapsed < 10.0
