"""Drawing helpers for the dashboard's pictures: fonts, colours, captions (ticks: ``ticks``).

Plain PIL, so the pictures need nothing beyond what training already installs. Text uses
DejaVu Sans when the system has it (it has β and −); otherwise Pillow's built-in font, with
those symbols spelled in ASCII (see :func:`plain`).
"""

from __future__ import annotations

import functools
import math

import torch
from PIL import Image, ImageDraw, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]

BACKGROUND: RGB = (255, 255, 255)
INK: RGB = (30, 30, 30)
GRID: RGB = (225, 225, 225)
MUTED: RGB = (120, 120, 120)
# Okabe-Ito colours: distinguishable for colour-blind readers
PALETTE: tuple[RGB, ...] = (
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
)

# inferno (matplotlib, CC0), sampled at 9 points: 0 is black, so a collapsed latent is dark
_INFERNO: tuple[RGB, ...] = (
    (0, 0, 4),
    (31, 12, 72),
    (85, 15, 109),
    (136, 34, 106),
    (186, 54, 85),
    (227, 89, 51),
    (249, 140, 10),
    (249, 201, 50),
    (252, 255, 164),
)
_ASCII = {"β": "beta", "−": "-", "≤": "<=", "≥": ">=", "…": "...", "×": "x", "‖": "||", "≈": "~"}
_FONT_FILES = ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@functools.lru_cache(maxsize=16)
def font(size: int = 13) -> Font:
    """DejaVu Sans at ``size`` pixels if installed, else Pillow's built-in font."""
    for name in _FONT_FILES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=1)
def _has_symbols() -> bool:
    f = font(13)
    return isinstance(f, ImageFont.FreeTypeFont) and "DejaVu" in (f.getname()[0] or "")


def plain(text: str) -> str:
    """``text`` with β, − ... spelled in ASCII when the font in use lacks them."""
    if _has_symbols():
        return text
    for sym, ascii_ in _ASCII.items():
        text = text.replace(sym, ascii_)
    return text


def text_size(text: str, size: int = 13) -> tuple[int, int]:
    left, top, right, bottom = font(size).getbbox(plain(text))
    return int(right - left), int(bottom)


def draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    *,
    size: int = 13,
    fill: RGB = INK,
    anchor: str = "la",
) -> None:
    """Text at ``xy`` (``anchor`` as in PIL: ``la`` left-top, ``mm`` centre, ``rm`` right...)."""
    draw.text(xy, plain(text), font=font(size), fill=fill, anchor=anchor)


def colormap(values: torch.Tensor) -> torch.Tensor:
    """Inferno colours (uint8, ``(*values.shape, 3)``) of values in [0, 1]."""
    table = torch.tensor(_INFERNO, dtype=torch.float32)
    pos = values.clamp(0, 1) * (len(_INFERNO) - 1)
    lo = pos.floor().long().clamp(max=len(_INFERNO) - 2)
    frac = (pos - lo).unsqueeze(-1)
    return (table[lo] * (1 - frac) + table[lo + 1] * frac).round().to(torch.uint8)


def fmt(value: float) -> str:
    """Short label of a single figure (ticks are labelled by ``ticks.tick_labels``)."""
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
    factor = max(1, min(max_factor, math.ceil(min_width / max(img.width, 1))))
    if factor == 1:
        return img
    return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)


def captioned(img: Image.Image, title: str, subtitle: str = "", pad: int = 10) -> Image.Image:
    """``img`` under a title line (and an optional smaller subtitle line) on white; a heatmap's
    ``info["grid"]`` is carried over, shifted."""
    tw, th = text_size(title, 15)
    sw, sh = text_size(subtitle, 12) if subtitle else (0, 0)
    head = pad + th + (6 + sh if subtitle else 0) + pad
    width = max(img.width + 2 * pad, tw + 2 * pad, sw + 2 * pad)
    out = Image.new("RGB", (width, head + img.height + pad), BACKGROUND)
    draw = ImageDraw.Draw(out)
    draw_text(draw, (pad, pad), title, size=15)
    if subtitle:
        draw_text(draw, (pad, pad + th + 6), subtitle, size=12, fill=MUTED)
    x0 = (width - img.width) // 2
    out.paste(img.convert("RGB"), (x0, head))
    if "grid" in img.info:  # keep the cell layout of a heatmap, shifted
        left, top, cw, ch = img.info["grid"]
        out.info["grid"] = (left + x0, top + head, cw, ch)
    return out
