"""The two chart kinds of the trial pictures, in matplotlib: a line panel over epochs and a
heatmap with a colour bar and row marks (style and rendering: :mod:`~vae_search.dashboard.trial.plots`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from vae_search.dashboard.trial.plots import (
    COLORMAP,
    MARK,
    MISSING,
    MUTED,
    box,
    figure,
    points,
    text_at,
    text_size,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MARK_GAP = 14  # px right of a heatmap's grid for its row marks
LABEL_SIZE = 8.5  # points: tick labels, notes
HEATMAP_TITLE_SIZE = 10.0


@dataclass
class Series:
    """One line of a panel; ``None`` or non-finite values leave a gap."""

    label: str
    ys: Sequence[float | None]
    color: str
    dashed: bool = False


@dataclass
class Marker:
    """A labelled reference line: horizontal at ``value`` (``vertical=False``) or vertical."""

    value: float
    label: str
    color: str = MUTED
    vertical: bool = False


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def line_panel(
    ax: Axes,
    title: str,
    xs: Sequence[float],
    series: Sequence[Series],
    *,
    xlabel: str = "epoch",
    markers: Sequence[Marker] = (),
    y_floor: float | None = None,
    integer_y: bool = False,
) -> None:
    """A titled line chart on ``ax`` with a legend row above it and whole-number x ticks at
    epochs in ``xs``; ``integer_y`` keeps the y ticks to whole numbers (counts). Tick labels
    are fixed point (no offset, no e-notation): a narrow -ELBO range reads 647.0, 647.5."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    ax.set_title(title, pad=18)
    ax.set_xlabel(xlabel)
    values = [v for s in series for v in s.ys if _finite(v)]
    if not xs or not values:
        ax.text(0.5, 0.5, "no data", color=MUTED, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    for s in series:
        ys = [float(y) if _finite(y) else math.nan for y in s.ys]
        ax.plot(
            xs, ys, color=s.color, linestyle="--" if s.dashed else "-", marker="o", label=s.label
        )
    for m in markers:
        if m.vertical:
            ax.axvline(m.value, color=m.color, linestyle=":", linewidth=1)
            ax.annotate(
                m.label,
                (m.value, 1),
                xycoords=("data", "axes fraction"),
                xytext=(-4, -4),
                textcoords="offset points",
                ha="right",
                va="top",
                color=m.color,
            )
        else:
            ax.axhline(m.value, color=m.color, linestyle=":", linewidth=1)
            ax.annotate(
                m.label,
                (1, m.value),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 2),
                textcoords="offset points",
                ha="right",
                va="bottom",
                color=m.color,
            )
    if y_floor is not None and min(values) >= y_floor:  # the axis starts at the floor
        hi = max([*values, *(m.value for m in markers if not m.vertical)])
        hi = hi if hi > y_floor else y_floor + 1
        room = 0.15 if any(not m.vertical for m in markers) else 0.06  # for a marker's label
        ax.set_ylim(y_floor, hi + room * (hi - y_floor))
    lo, hi = min(xs), max(xs)
    if lo == hi:  # one epoch: that epoch alone, not 0 and 2
        ax.set_xlim(lo - 1, hi + 1)
        ax.xaxis.set_major_locator(FixedLocator([lo]))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=min(8, len(xs)), integer=True))
    if integer_y:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.legend(
        loc="lower left",
        bbox_to_anchor=(0, 1),
        ncol=len(series),
        borderaxespad=0.1,
        handlelength=1.8,
        columnspacing=1.2,
    )


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
    footer: tuple[str, Sequence[str]] | None = None,
    row_marks: Sequence[bool] | None = None,
    notes: Sequence[str] = (),
    head: float = 0,
    min_width: float = 0,
) -> tuple[Figure, tuple[int, int, int, int]]:
    """Cells coloured by value (inferno: 0 is black), row 0 at the top, with a colour bar;
    ``head`` pixels are left free at the top of the figure (for a caption).

    Returns the figure and ``(left, top, cell width, cell height)``: where the cells are, in
    whole pixels of the rendered figure, for readers and tests.

    Args:
        matrix: (rows, cols) values >= 0; non-finite cells are drawn grey.
        vmax: the value shown brightest (default: the largest finite value).
        footer: a row of per-column texts under the column labels, with its name.
        row_marks: rows to mark with a × right of the grid (say what it means in ``notes``).
        notes: lines of legend text under the x label.
    """
    import matplotlib
    from matplotlib.colors import Normalize

    rows, cols = matrix.shape
    cw = int(min(48, max(14, 480 // max(cols, 1))))
    ch = int(min(28, max(8, 380 // max(rows, 1))))
    finite = torch.isfinite(matrix)
    top_val = float(matrix[finite].max()) if finite.any() else 1.0
    vmax = vmax if vmax is not None and vmax > 0 else (top_val if top_val > 0 else 1.0)
    line = text_size("Ag", LABEL_SIZE)[1] + 4  # one line of small text
    row_every = max(1, math.ceil(line / ch))
    col_every = max(1, math.ceil(24 / cw))
    label_w = max(text_size(s, LABEL_SIZE)[0] for s in row_labels[::row_every])
    if footer is not None:
        label_w = max(label_w, text_size(footer[0], LABEL_SIZE)[0])
    left = round(10 + line + label_w + 10)  # y label, row labels, ticks
    title_pad = 1.5 * line + 8  # over the colour bar's label
    top = round(head + text_size(title, HEATMAP_TITLE_SIZE)[1] + title_pad + 4)
    gw, gh = cw * cols, ch * rows
    bh = max(gh, 80)  # colour bar height
    gap = MARK_GAP if row_marks else 0
    bx, bw = left + gw + gap + 18, 14
    under = 6 + line * (2 + (footer is not None))  # column labels, footer, x label
    width = max(
        bx + bw + 10 + text_size(f"{vmax:.2f}", LABEL_SIZE)[0] + 12,
        left + text_size(title, HEATMAP_TITLE_SIZE)[0] + 10,
        *(text_size(n, LABEL_SIZE)[0] + 20 for n in notes),
        min_width,
    )
    height = round(top + max(gh + under, bh) + 8 + line * len(notes) + 6)
    fig = figure(width, height)
    ax = fig.add_axes(box(fig, left, top, gw, gh))
    cmap = matplotlib.colormaps[COLORMAP].with_extremes(bad=MISSING)
    values = torch.where(finite, matrix, torch.full_like(matrix, math.nan)).numpy()
    image = ax.imshow(
        values,
        cmap=cmap,
        norm=Normalize(0, vmax),
        interpolation="nearest",
        aspect="auto",
        extent=(0, cols, rows, 0),
    )
    ax.grid(False)
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_yticks(
        [r + 0.5 for r in range(0, rows, row_every)],
        [row_labels[r] for r in range(0, rows, row_every)],
    )
    ax.set_xticks(
        [c + 0.5 for c in range(0, cols, col_every)],
        [col_labels[c] for c in range(0, cols, col_every)],
    )
    ax.tick_params(length=3, pad=2, labelsize=LABEL_SIZE)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel, labelpad=2 + (points(line) if footer else 0))
    ax.set_title(title, loc="left", size=HEATMAP_TITLE_SIZE, pad=points(title_pad))
    ax.autoscale(False)
    if footer is not None:
        name, texts = footer
        below = -(3 + 2 + line)  # under the tick labels
        ax.annotate(
            name,
            (0, 0),
            xycoords="axes fraction",
            xytext=(-5, below),
            textcoords="offset pixels",
            ha="right",
            va="top",
            color=MUTED,
            size=LABEL_SIZE,
        )
        for c in range(0, cols, col_every):
            ax.annotate(
                texts[c],
                (c + 0.5, 0),
                xycoords=("data", "axes fraction"),
                xytext=(0, below),
                textcoords="offset pixels",
                ha="center",
                va="top",
                size=LABEL_SIZE,
            )
    marked = [r + 0.5 for r, m in enumerate(row_marks or []) if m]
    if marked:  # a filled × right of the grid, in data units of the cells
        ax.plot(
            [cols + (gap / 2 + 3) / cw] * len(marked),
            marked,
            linestyle="none",
            marker="X",
            markersize=points(min(11, max(7, ch - 2))),
            color=MARK,
            clip_on=False,
        )
    cax = fig.add_axes(box(fig, bx, top, bw, bh))
    fig.colorbar(image, cax=cax)
    cax.grid(False)
    cax.tick_params(labelsize=LABEL_SIZE, length=3)
    # above the half of the top tick label that stands over the bar
    cax.set_title(
        colorbar_label, loc="left", size=LABEL_SIZE, color=MUTED, pad=points(line / 2 + 2)
    )
    y = top + max(gh + under, bh) + 8
    for i, note in enumerate(notes):
        text_at(fig, 10, y + i * line, note, size=LABEL_SIZE, color=MUTED)
    return fig, (left, top, cw, ch)
