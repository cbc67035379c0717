"""matplotlib for the trial pictures: their style, figures sized in pixels, rendering to PIL.

Only the object API (:class:`matplotlib.figure.Figure` on an Agg canvas), never pyplot: no
display, no global figure manager, whatever backend the user's matplotlib is set to. matplotlib
is imported inside these functions, so a worker pays for it only when it draws.

Restyle the pictures through :data:`STYLE` (rcParams applied while a picture is built) or draw
the figures yourself with the ``*_figure`` functions of
:mod:`~vae_search.dashboard.trial.trial_pictures`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import torch
from PIL import Image

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100  # figure sizes are given in pixels: 1 inch = DPI px
INK = "#1e1e1e"
MUTED = "#787878"
GRID = "#e1e1e1"
# Okabe-Ito colours: distinguishable for colour-blind readers
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")
MARK = "#0072b2"  # blue: apart from inferno's black-red-yellow
COLORMAP = "inferno"  # 0 is black, so a collapsed latent is dark
MISSING = "#a0a0a0"  # a heatmap cell with no value
STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # matplotlib's own font: it has β, −, ≤, ‖
    "font.size": 9,
    "text.color": INK,
    "axes.titlesize": 10,
    "axes.titlelocation": "left",
    "axes.labelsize": 9,
    "axes.labelcolor": MUTED,
    "axes.edgecolor": INK,
    "axes.linewidth": 0.8,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 4.5,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
}

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def style() -> Iterator[None]:
    """:data:`STYLE` in force (matplotlib reads most rcParams when an artist is made)."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with :data:`STYLE` in force."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with style():
            return fn(*args, **kwargs)

    return wrapper


def figure(width: float, height: float, **kwargs: Any) -> Figure:
    """A figure of ``width`` x ``height`` pixels on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # a hair over: the canvas truncates the size to whole pixels
    fig = Figure(
        figsize=((round(width) + 1e-3) / DPI, (round(height) + 1e-3) / DPI), dpi=DPI, **kwargs
    )
    FigureCanvasAgg(fig)
    return fig


def render(fig: Figure) -> Image.Image:
    """The figure drawn as an RGB image (with :data:`STYLE`: ticks are made as they are drawn)."""
    with style():
        fig.canvas.draw()
    w, h = fig.canvas.get_width_height()
    rgba = Image.frombuffer("RGBA", (w, h), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    return rgba.convert("RGB")


def points(px: float) -> float:
    """``px`` pixels in points (font and marker sizes)."""
    return px * 72 / DPI


def text_size(text: str, size: float) -> tuple[float, float]:
    """Width and height in pixels of one line of ``text`` at ``size`` points in :data:`STYLE`."""
    w, h, _ = _renderer().get_text_width_height_descent(text, _font(size), ismath=False)
    return w, h


@functools.lru_cache(maxsize=1)
def _renderer() -> Any:
    from matplotlib.backends.backend_agg import RendererAgg

    return RendererAgg(1, 1, DPI)


@functools.lru_cache(maxsize=16)
def _font(size: float) -> Any:
    from matplotlib.font_manager import FontProperties

    return FontProperties(family=STYLE["font.family"], size=size)


def text_at(fig: Figure, x: float, y: float, text: str, **kwargs: Any) -> None:
    """``text`` at ``x``, ``y`` pixels from the top left of ``fig`` (``va`` top unless given)."""
    w, h = fig.canvas.get_width_height()
    fig.text(x / w, 1 - y / h, text, **{"va": "top", **kwargs})


def box(fig: Figure, x: float, y: float, width: float, height: float) -> list[float]:
    """``fig.add_axes`` rectangle of ``width`` x ``height`` pixels at ``x``, ``y`` pixels from
    the top left (fixed pixels, not a layout engine: that would cost a third of a picture)."""
    w, h = fig.canvas.get_width_height()
    return [x / w, 1 - (y + height) / h, width / w, height / h]


def panel_box(fig: Figure, x: float, y: float, size: tuple[float, float]) -> list[float]:
    """The plot area of a chart panel of ``size`` pixels at ``x``, ``y``: room left for tick
    labels, above for a title and a legend row, below for ticks and an x label."""
    left, right, top, bottom = PANEL_MARGINS
    return box(fig, x + left, y + top, size[0] - left - right, size[1] - top - bottom)


PANEL_MARGINS = (58, 14, 50, 46)  # px: left, right, top, bottom


def caption(fig: Figure, title: str, subtitle: str = "", pad: float = 10) -> None:
    """Write the title line (and a smaller, muted subtitle line) at the top left of ``fig``;
    :func:`caption_height` is the room they take."""
    text_at(fig, pad, pad, title, size=TITLE_SIZE)
    if subtitle:
        y = pad + text_size(title, TITLE_SIZE)[1] + 6
        text_at(fig, pad, y, subtitle, size=SUBTITLE_SIZE, color=MUTED)


def caption_height(title: str, subtitle: str = "", pad: float = 10) -> float:
    """Pixels from the top of a figure to the first thing under its :func:`caption`."""
    sub = text_size(subtitle, SUBTITLE_SIZE)[1] + 6 if subtitle else 0
    return pad + text_size(title, TITLE_SIZE)[1] + sub + pad


def caption_width(title: str, subtitle: str = "", pad: float = 10) -> float:
    """Pixels the :func:`caption` lines need across."""
    return 2 * pad + max(text_size(title, TITLE_SIZE)[0], text_size(subtitle, SUBTITLE_SIZE)[0])


TITLE_SIZE = 11.0
SUBTITLE_SIZE = 8.5


def colormap(values: torch.Tensor) -> torch.Tensor:
    """The heatmaps' colours (uint8, ``(*values.shape, 3)``) of values in [0, 1]."""
    import matplotlib
    import numpy as np

    rgba = np.asarray(matplotlib.colormaps[COLORMAP](values.clamp(0, 1).numpy(), bytes=True))
    return torch.from_numpy(rgba[..., :3].copy())


def fmt(value: float) -> str:
    """Short label of a single figure."""
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:.3g}"


def to_image(grid: torch.Tensor) -> Image.Image:
    """A (C, H, W) float tensor in [0, 1] as an RGB image."""
    g = grid.detach().float().cpu().clamp(0, 1)
    if g.shape[0] == 1:
        g = g.expand(3, -1, -1)
    arr = (g[:3] * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(arr, mode="RGB")


def upscale(img: Image.Image, min_width: int = 360, max_factor: int = 8) -> Image.Image:
    """Enlarge with nearest neighbour (pixels stay sharp) to at least ``min_width``."""
    factor = max(1, min(max_factor, -(-min_width // max(img.width, 1))))
    if factor == 1:
        return img
    return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
