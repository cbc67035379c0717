"""``shapes``: a dSprites-style dataset generated on the fly, so it needs no download.

Each example is a binary ``image_size`` x ``image_size`` image of one white shape on black,
drawn from five independent ground-truth factors (Matthey et al. 2017, dSprites):

* ``shape``: 0 square, 1 ellipse, 2 heart, 3 triangle (:data:`SHAPE_NAMES`), uniform;
* ``scale``: uniform in [0.5, 1]; the shape fits in a circle of radius
  ``scale * MAX_RADIUS`` (a fraction of the image side);
* ``rotation``: uniform angle in [0, 2π) radians, counter-clockwise (kept even where a shape's
  symmetry makes some angles look alike);
* ``pos_x``, ``pos_y``: the shape's centroid as a fraction of the image width / height,
  measured from the top-left corner (x to the right, y downwards), uniform in
  [MAX_RADIUS, 1 - MAX_RADIUS] so every shape lies inside the image.

Every shape is defined in a local frame where it fits the unit circle and its area centroid is
the origin, so ``(pos_x, pos_y)`` is where its pixels' centre of mass lands. A pixel is on when
its centre lies inside the shape; the test for that is vectorised over a coordinate grid.
"""

from __future__ import annotations

import logging
import math

import torch

from vae_search.config import DataConfig
from vae_search.data.splits import DataSplits, derive_seed, make_splits

logger = logging.getLogger(__name__)

SHAPE_NAMES = ("square", "ellipse", "heart", "triangle")
FACTOR_NAMES = ("shape", "scale", "rotation", "pos_x", "pos_y")
MAX_RADIUS = 0.2  # radius of a scale-1 shape, as a fraction of the image side
SCALE_RANGE = (0.5, 1.0)
ELLIPSE_ASPECT = 0.5  # minor / major semi-axis
CHUNK = 4096  # images rendered at once, to bound the temporary memory

# The heart: a square of side a turned 45 degrees plus two discs of diameter a on its upper
# sides. The discs add two half-discs of area πa²/8, each with its centroid 4r/(3π) beyond the
# side's midpoint, so the area centroid sits _HEART_SHIFT * a above the square's centre; the
# bottom vertex, at (1/√2 + _HEART_SHIFT) * a from the centroid, is the farthest point.
_SQRT2 = math.sqrt(2.0)
_HEART_SHIFT = (math.pi / 4) / (1 + math.pi / 4) * (1 / (2 * _SQRT2) + 2 / (3 * math.pi * _SQRT2))
_HEART_SIDE = 1.0 / (1 / _SQRT2 + _HEART_SHIFT)


def _inside(kind: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Whether local points (x right, y up; shape in the unit circle) are inside a shape."""
    if kind == 0:  # square inscribed in the unit circle
        return torch.maximum(x.abs(), y.abs()) <= 1 / _SQRT2
    if kind == 1:  # ellipse, major axis along x
        return x.square() + (y / ELLIPSE_ASPECT).square() <= 1.0
    if kind == 2:  # heart, see _HEART_SHIFT
        a = _HEART_SIDE
        yc = y + _HEART_SHIFT * a  # back to the frame centred on the square
        square = x.abs() + yc.abs() <= a / _SQRT2
        c, r2 = a / (2 * _SQRT2), (a / 2) ** 2
        discs = ((x.abs() - c).square() + (yc - c).square()) <= r2
        return square | discs
    # equilateral triangle inscribed in the unit circle, apex up: inradius 1/2, outward edge
    # normals at -90, 30 and 150 degrees
    half = math.sqrt(3.0) / 2
    return (-y <= 0.5) & (half * x + 0.5 * y <= 0.5) & (-half * x + 0.5 * y <= 0.5)


def sample_factors(n: int, generator: torch.Generator) -> torch.Tensor:
    """Draw ``n`` factor vectors ``(shape, scale, rotation, pos_x, pos_y)``, float32 ``(n, 5)``."""
    shape = torch.randint(len(SHAPE_NAMES), (n,), generator=generator).to(torch.float32)
    lo, hi = SCALE_RANGE
    scale = lo + (hi - lo) * torch.rand(n, generator=generator)
    rotation = 2 * math.pi * torch.rand(n, generator=generator)
    pos = MAX_RADIUS + (1 - 2 * MAX_RADIUS) * torch.rand(n, 2, generator=generator)
    return torch.stack([shape, scale, rotation, pos[:, 0], pos[:, 1]], dim=1)


def render(factors: torch.Tensor, image_size: int) -> torch.Tensor:
    """Draw one binary image per factor row.

    Args:
        factors: float ``(n, 5)`` rows of ``(shape, scale, rotation, pos_x, pos_y)``.
        image_size: side of the square images in pixels.

    Returns:
        bool ``(n, 1, image_size, image_size)`` images, True where the shape is.
    """
    n = len(factors)
    out = torch.zeros(n, 1, image_size, image_size, dtype=torch.bool)
    centres = (torch.arange(image_size, dtype=torch.float32) + 0.5) / image_size
    gx, gy = centres.view(1, 1, -1), centres.view(1, -1, 1)  # columns, rows
    for start in range(0, n, CHUNK):
        f = factors[start : start + CHUNK].to(torch.float32)
        kind = f[:, 0].round().long()
        radius = (f[:, 1] * MAX_RADIUS).view(-1, 1, 1)
        cos, sin = f[:, 2].cos().view(-1, 1, 1), f[:, 2].sin().view(-1, 1, 1)
        dx = (gx - f[:, 3].view(-1, 1, 1)) / radius
        dy = (f[:, 4].view(-1, 1, 1) - gy) / radius  # image rows grow downwards, y grows up
        # rotate the grid by -rotation, which turns the shape by +rotation
        x, y = cos * dx + sin * dy, cos * dy - sin * dx
        block = out[start : start + CHUNK, 0]
        for k in range(len(SHAPE_NAMES)):
            sel = (kind == k).nonzero().squeeze(1)
            if len(sel):
                block[sel] = _inside(k, x[sel], y[sel])
    return out


def generate(n: int, image_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``n`` examples deterministically from ``seed``.

    Returns:
        ``(images, factors)``: bool ``(n, 1, image_size, image_size)`` and float32 ``(n, 5)``.
    """
    factors = sample_factors(n, torch.Generator().manual_seed(seed))
    return render(factors, image_size), factors


def load_shapes(cfg: DataConfig) -> DataSplits:
    """Generate the ``shapes`` dataset for a config.

    ``cfg.size`` examples are generated for train + validation from a seed derived from
    ``split_seed``, and ``max(1, size // 10)`` test examples from another derived seed. Pixels
    are 0.0 or 1.0, so binarising changes nothing.

    Args:
        cfg: the data config (``size``, ``image_size``, ``split_seed`` and the split settings).

    Returns:
        The splits, with ``factor_names`` and the factors of train and val.
    """
    images, factors = generate(cfg.size, cfg.image_size, derive_seed(cfg.split_seed, "shapes"))
    test, _ = generate(
        max(1, cfg.size // 10), cfg.image_size, derive_seed(cfg.split_seed, "shapes-test")
    )
    return make_splits(cfg, images, test, factors=factors, factor_names=FACTOR_NAMES)
