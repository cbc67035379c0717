"""Image grids (reconstructions, samples, traversals) with their captions and labels, in PIL.

The grids are pictures already; what they need is text around them. PIL draws that text with
the same font as the matplotlib figures (matplotlib's own DejaVu Sans, found through its font
manager) at about a tenth of the cost of a matplotlib figure (see
``benchmarks/bench_pictures.py``), which a worker pays on every completed trial.
"""

from __future__ import annotations

import functools

from PIL import Image, ImageDraw, ImageFont

from vae_search.dashboard.trial.plots import DPI, INK, MUTED, STYLE, SUBTITLE_SIZE, TITLE_SIZE

LABEL_SIZE = 8.5  # points, as the figures' tick labels


@functools.lru_cache(maxsize=16)
def font(size: float) -> ImageFont.FreeTypeFont:
    """The figures' font at ``size`` points (pixels at :data:`~vae_search.dashboard.trial.plots.DPI`)."""
    from matplotlib import font_manager

    path = font_manager.findfont(font_manager.FontProperties(family=STYLE["font.family"]))
    return ImageFont.truetype(path, max(1, round(size * DPI / 72)))


def text_size(text: str, size: float) -> tuple[int, int]:
    """Width and height in pixels of one line of ``text`` (height: ascent + descent)."""
    f = font(size)
    ascent, descent = f.getmetrics()
    return round(f.getlength(text)), ascent + descent


def caption_height(title: str, subtitle: str = "", pad: int = 10) -> int:
    """Pixels from the top to the first thing under the caption."""
    sub = text_size(subtitle, SUBTITLE_SIZE)[1] + 6 if subtitle else 0
    return pad + text_size(title, TITLE_SIZE)[1] + sub + pad


def caption_width(title: str, subtitle: str = "", pad: int = 10) -> int:
    return 2 * pad + max(text_size(title, TITLE_SIZE)[0], text_size(subtitle, SUBTITLE_SIZE)[0])


def draw_caption(draw: ImageDraw.ImageDraw, title: str, subtitle: str = "", pad: int = 10) -> None:
    """The title line and a smaller, muted subtitle line at the top left."""
    draw.text((pad, pad), title, font=font(TITLE_SIZE), fill=INK, anchor="la")
    if subtitle:
        y = pad + text_size(title, TITLE_SIZE)[1] + 6
        draw.text((pad, y), subtitle, font=font(SUBTITLE_SIZE), fill=MUTED, anchor="la")


def captioned(img: Image.Image, title: str, subtitle: str = "", pad: int = 10) -> Image.Image:
    """``img``, pixel for pixel (not resampled), centred under a caption on white."""
    head = caption_height(title, subtitle, pad)
    width = max(img.width + 2 * pad, caption_width(title, subtitle, pad))
    out = Image.new("RGB", (width, head + img.height + pad), "white")
    draw_caption(ImageDraw.Draw(out), title, subtitle, pad)
    out.paste(img.convert("RGB"), ((width - img.width) // 2, head))
    return out


def labelled_grid(
    big: Image.Image,
    cell: int,
    row_labels: list[str],
    column_heads: list[str],
    title: str,
    subtitle: str,
    first_head: str = "input",
) -> Image.Image:
    """``big`` (a first column, then one column per head) with a label left of each row, a head
    above each column (``first_head`` muted over the first) and a caption on top."""
    f = font(LABEL_SIZE)
    line = text_size("Ag", LABEL_SIZE)[1]
    head = caption_height(title, subtitle) + line + 6
    left = 18 + max((text_size(s, LABEL_SIZE)[0] for s in row_labels), default=0)
    width = max(left + big.width + 10, caption_width(title, subtitle))
    out = Image.new("RGB", (width, head + big.height + 8), "white")
    draw = ImageDraw.Draw(out)
    draw_caption(draw, title, subtitle)
    out.paste(big.convert("RGB"), (left, head))
    draw.text((left + cell / 2, head - 4), first_head, font=f, fill=MUTED, anchor="md")
    for j, text in enumerate(column_heads):
        draw.text((left + (j + 1.5) * cell, head - 4), text, font=f, fill=INK, anchor="md")
    for r, label in enumerate(row_labels):
        draw.text((left - 8, head + (r + 0.5) * cell), label, font=f, fill=INK, anchor="rm")
    return out
