"""Small charts drawn with PIL: line panels over epochs and a heatmap with a colour bar."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image, ImageDraw

from vae_search.dashboard.canvas import (
    BACKGROUND,
    GRID,
    INK,
    MUTED,
    RGB,
    colormap,
    draw_text,
    text_size,
)
from vae_search.dashboard.ticks import nice_ticks, tick_labels

MARK: RGB = (0, 114, 178)  # blue: apart from inferno's black-red-yellow
MARK_GAP = 14  # room right of a heatmap's grid for its row marks


@dataclass
class Series:
    """One line of a panel; ``None`` or non-finite values leave a gap."""

    label: str
    ys: Sequence[float | None]
    color: RGB
    dashed: bool = False


@dataclass
class Marker:
    """A labelled reference line: horizontal at ``value`` (``vertical=False``) or vertical."""

    value: float
    label: str
    color: RGB = MUTED
    vertical: bool = False


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _dashed_line(
    draw: ImageDraw.ImageDraw,
    p: tuple[float, float],
    q: tuple[float, float],
    color: RGB,
    width: int = 2,
    dash: float = 6.0,
) -> None:
    length = math.dist(p, q)
    steps = max(1, int(length // dash))
    for i in range(0, steps, 2):
        a, b = i / steps, min(1.0, (i + 1) / steps)
        draw.line(
            [
                (p[0] + (q[0] - p[0]) * a, p[1] + (q[1] - p[1]) * a),
                (p[0] + (q[0] - p[0]) * b, p[1] + (q[1] - p[1]) * b),
            ],
            fill=color,
            width=width,
        )


def line_panel(
    title: str,
    xs: Sequence[float],
    series: Sequence[Series],
    *,
    xlabel: str = "epoch",
    markers: Sequence[Marker] = (),
    y_floor: float | None = None,
    integer_y: bool = False,
    size: tuple[int, int] = (380, 240),
) -> Image.Image:
    """A titled line chart with a legend row, y grid lines and x ticks at epochs in ``xs``;
    ``integer_y`` keeps the y ticks to whole numbers (counts)."""
    w, h = size
    img = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(img)
    left, right, top, bottom = 58, w - 14, 50, h - 38
    draw_text(draw, (8, 6), title, size=14)
    # legend row under the title
    lx = 10
    for s in series:
        draw.line([(lx, 36), (lx + 16, 36)], fill=s.color, width=3)
        draw_text(draw, (lx + 20, 36), s.label, size=11, anchor="lm")
        lx += 28 + text_size(s.label, 11)[0] + 10
    values = [v for s in series for v in s.ys if _finite(v)]
    values += [m.value for m in markers if not m.vertical]
    if not xs or not values:
        draw_text(draw, (w / 2, h / 2), "no data", fill=MUTED, anchor="mm")
        return img
    lo, hi = min(values), max(values)
    if y_floor is not None:
        lo = min(lo, y_floor)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5 if lo else -0.5, hi + 0.5 if hi else 0.5
    pad = (hi - lo) * 0.06
    ylo, yhi = (lo if y_floor is not None and lo == y_floor else lo - pad), hi + pad
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - ylo) / (yhi - ylo) * (bottom - top)

    yt = nice_ticks(ylo, yhi, 5, integer=integer_y)
    for t, label in zip(yt, tick_labels(yt)):
        draw.line([(left, py(t)), (right, py(t))], fill=GRID)
        draw_text(draw, (left - 6, py(t)), label, size=11, anchor="rm")
    xt = epoch_ticks(xs)
    for t, label in zip(xt, tick_labels(xt)):
        draw.line([(px(t), bottom), (px(t), bottom + 4)], fill=INK)
        draw_text(draw, (px(t), bottom + 6), label, size=11, anchor="ma")
    draw.rectangle([left, top, right, bottom], outline=INK)
    draw_text(draw, ((left + right) / 2, h - 4), xlabel, size=12, fill=MUTED, anchor="md")
    for m in markers:
        if m.vertical:
            p, q = (px(m.value), top), (px(m.value), bottom)
            draw_text(draw, (p[0] - 4, top + 4), m.label, size=11, fill=m.color, anchor="ra")
        else:
            p, q = (left, py(m.value)), (right, py(m.value))
            draw_text(
                draw, (left + 4, py(m.value) + 3), m.label, size=11, fill=m.color, anchor="la"
            )
        _dashed_line(draw, p, q, m.color, width=1, dash=4)
    for s in series:
        pts = [(px(x), py(y)) if _finite(y) else None for x, y in zip(xs, s.ys)]
        for a, b in zip(pts, pts[1:]):
            if a is not None and b is not None:
                (_dashed_line if s.dashed else _solid)(draw, a, b, s.color)
        for p in pts:
            if p is not None:
                draw.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=s.color)
    return img


def epoch_ticks(xs: Sequence[float]) -> list[float]:
    """Whole-number ticks among the epochs drawn (one epoch: that epoch alone, not 0 and 2)."""
    lo, hi = min(xs), max(xs)
    ticks = [t for t in nice_ticks(lo, hi, min(8, len(xs)), integer=True) if lo <= t <= hi]
    return ticks or [lo]


def _solid(
    draw: ImageDraw.ImageDraw,
    p: tuple[float, float],
    q: tuple[float, float],
    color: RGB,
    width: int = 2,
) -> None:
    draw.line([p, q], fill=color, width=width)


def heatmap(
    matrix: torch.Tensor,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    colorbar_label: str,
    vmax: float | None = None,
    gamma: float = 1.0,
    footer: tuple[str, Sequence[str]] | None = None,
    row_marks: Sequence[bool] | None = None,
    notes: Sequence[str] = (),
) -> Image.Image:
    """Cells coloured by value (inferno: 0 is black), row 0 at the top, with a colour bar.

    The image's ``info["grid"]`` is ``(left, top, cell width, cell height)`` in pixels.

    Args:
        matrix: (rows, cols) values >= 0; non-finite cells are drawn grey.
        vmax: the value shown brightest (default: the largest finite value).
        gamma: colour position is (value / vmax) ** gamma; below 1 it spreads the small values
            (0 stays black), and the colour bar's ticks show the true values.
        footer: a row of per-column texts under the column labels, with its name.
        row_marks: rows to mark with a × right of the grid (say what it means in ``notes``).
        notes: lines of legend text under the x label.
    """
    rows, cols = matrix.shape
    cw = int(min(48, max(14, 480 // max(cols, 1))))
    ch = int(min(28, max(8, 380 // max(rows, 1))))
    finite = torch.isfinite(matrix)
    top_val = float(matrix[finite].max()) if finite.any() else 1.0
    vmax = vmax if vmax is not None and vmax > 0 else (top_val if top_val > 0 else 1.0)
    left, top = 70, 46
    gw, gh = cw * cols, ch * rows
    bh = max(gh, 80)  # colour bar height
    width = max(
        left + gw + 110 + (MARK_GAP if row_marks else 0),
        text_size(title, 14)[0] + 16,
        *(text_size(n, 11)[0] + 16 for n in notes),
    )
    height = top + bh + 48 + (16 if footer else 0) + 16 * len(notes)
    img = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw_text(draw, (8, 8), title, size=14)
    scaled = (torch.where(finite, matrix, torch.zeros_like(matrix)) / vmax).clamp(0, 1) ** gamma
    colours = colormap(scaled)
    cells = Image.fromarray(colours.numpy(), mode="RGB").resize((gw, gh), Image.Resampling.NEAREST)
    img.paste(cells, (left, top))
    for r, c in (~finite).nonzero().tolist():
        draw.rectangle(
            [left + c * cw, top + r * ch, left + (c + 1) * cw - 1, top + (r + 1) * ch - 1],
            fill=(160, 160, 160),
        )
    draw.rectangle([left - 1, top - 1, left + gw, top + gh], outline=INK)
    every = max(1, math.ceil(12 / ch))
    for r in range(0, rows, every):
        draw_text(draw, (left - 5, top + r * ch + ch / 2), row_labels[r], size=11, anchor="rm")
    col_every = max(1, math.ceil(24 / cw))
    for c in range(0, cols, col_every):
        draw_text(draw, (left + c * cw + cw / 2, top + gh + 4), col_labels[c], size=11, anchor="ma")
    if footer is not None:
        name, texts = footer
        draw_text(draw, (left - 5, top + gh + 20), name, size=11, fill=MUTED, anchor="ra")
        for c in range(0, cols, col_every):
            draw_text(draw, (left + c * cw + cw / 2, top + gh + 20), texts[c], size=11, anchor="ma")
    xl_y = top + gh + (38 if footer else 22)
    draw_text(draw, (left + gw / 2, xl_y), xlabel, size=12, fill=MUTED, anchor="ma")
    draw_text(draw, (8, 28), ylabel, size=12, fill=MUTED)
    for i, note in enumerate(notes):
        draw_text(draw, (8, max(xl_y + 18, top + bh + 24) + 16 * i), note, size=11, fill=MUTED)
    for r, marked in enumerate(row_marks or []):
        if marked:
            xy = (left + gw + MARK_GAP / 2 + 4, top + r * ch + ch / 2)
            draw_text(draw, xy, "×", size=min(13, max(9, ch)), fill=MARK, anchor="mm")
    # colour bar: brightest at the top
    bx, bw = left + gw + 18 + (MARK_GAP if row_marks else 0), 14
    ramp = torch.linspace(1, 0, bh).unsqueeze(1).expand(bh, bw)  # colour positions
    img.paste(Image.fromarray(colormap(ramp).numpy(), mode="RGB"), (bx, top))
    draw.rectangle([bx - 1, top - 1, bx + bw, top + bh], outline=INK)
    ticks = [t for t in nice_ticks(0.0, vmax, 5) if t <= vmax]
    if gamma < 1 and ticks and ticks[1:]:  # small values get room: add ticks below the first
        ticks = sorted({*ticks, ticks[1] / 4, ticks[1] / 2})
    for t, label in zip(ticks, tick_labels(ticks)):
        y = top + bh - (t / vmax) ** gamma * bh
        draw.line([(bx + bw, y), (bx + bw + 4, y)], fill=INK)
        draw_text(draw, (bx + bw + 6, y), label, size=11, anchor="lm")
    draw_text(draw, (bx - 4, top + bh + 6), colorbar_label, size=11, fill=MUTED)
    img.info["grid"] = (left, top, cw, ch)  # where the cells are, for readers and tests
    return img
