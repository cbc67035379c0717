"""Pictures of a sequence VAE, as text rendered to PNG: what the image pictures are for images.

- ``reconstructions.png``: validation sentences and the greedy decode of their posterior mean
  (``input`` above, ``output`` below);
- ``samples.png``: greedy decodes of draws from the prior;
- ``interpolations.png``: greedy decodes along the straight line between two validation
  sentences' posterior means (Bowman et al. 2016, "homotopies").

The text itself comes from :func:`reconstructions`, :func:`prior_samples` and
:func:`interpolations` (lists of strings, for notes and tests); :func:`render` draws lines of
text on a white PNG with PIL's built-in font. Greedy decoding needs a decoder with
``generate(z, steps)`` (the shipped ``lstm`` has it); a custom sequence decoder without it gets
no text pictures. The curves and the KL heatmap are the image pictures' own.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image, ImageDraw, ImageFont

from vae_search.data import DataSplits
from vae_search.data.tokens import decode
from vae_search.model import VAE


def can_decode(model: VAE) -> bool:
    return callable(getattr(model.decoder, "generate", None))


def _greedy(model: VAE, z: torch.Tensor, data: DataSplits) -> list[str]:
    ids = model.decoder.generate(z, data.shape[0] - 1)  # type: ignore[operator]
    return [_text(row, data) for row in ids.tolist()]


def _text(row: list[int], data: DataSplits) -> str:
    if data.vocab is not None:
        return decode(row, data.vocab)
    return " ".join(str(i) for i in row if i not in (data.pad_id, data.bos_id))  # tokens: ids


@torch.no_grad()
def reconstructions(model: VAE, x: torch.Tensor, data: DataSplits) -> list[tuple[str, str]]:
    """(input, greedy decode of its posterior mean) for every row of ``x``."""
    model.eval()
    mu, _ = model.encode(x)
    return list(zip([_text(r, data) for r in x.tolist()], _greedy(model, mu, data), strict=True))


@torch.no_grad()
def prior_samples(model: VAE, data: DataSplits, n: int = 8, seed: int = 0) -> list[str]:
    model.eval()
    device = next(model.parameters()).device
    z = model.prior.sample(n, generator=torch.Generator(device=device).manual_seed(seed))
    return _greedy(model, z, data)


@torch.no_grad()
def interpolations(model: VAE, a: torch.Tensor, b: torch.Tensor, data: DataSplits, steps: int = 7
                   ) -> list[str]:
    """Greedy decodes at ``steps`` evenly spaced points from mu(a) to mu(b), ends included."""
    model.eval()
    mu, _ = model.encode(torch.stack([a, b]))
    t = torch.linspace(0, 1, steps, device=mu.device).unsqueeze(1)
    return _greedy(model, (1 - t) * mu[0] + t * mu[1], data)


def render(title: str, lines: list[str], width: int = 760) -> Image.Image:
    """Lines of text on a white picture; long lines are cut with an ellipsis."""
    font = ImageFont.load_default()
    line_h, pad = 14, 8
    max_chars = (width - 2 * pad) // 6
    img = Image.new("RGB", (width, pad * 2 + line_h * (len(lines) + 2)), "white")
    draw = ImageDraw.Draw(img)
    draw.text((pad, pad), title, fill=(0, 0, 0), font=font)
    for i, line in enumerate(lines):
        text = line if len(line) <= max_chars else line[: max_chars - 1] + "…"
        colour = (90, 90, 90) if line.startswith("  ") else (20, 20, 120)
        draw.text((pad, pad + line_h * (i + 2)), text, fill=colour, font=font)
    return img


def pictures(model: VAE, data: DataSplits, seed: int = 0, n: int = 8) -> dict[str, Callable[[], Image.Image]]:
    """The text pictures of a trial, by file name, each drawn when called (none without
    ``generate``)."""
    if not can_decode(model):
        return {}
    device = next(model.parameters()).device
    x = data.val[:n].to(device)

    def recon() -> Image.Image:
        lines = []
        for i, (src, out) in enumerate(reconstructions(model, x, data)):
            lines += [f"{i}. input:  {src}", f"  output: {out}"]
        return render("reconstructions (greedy decode of the posterior mean)", lines)

    def samples() -> Image.Image:
        return render("samples from the prior (greedy decode)",
                      [f"{i}. {s}" for i, s in enumerate(prior_samples(model, data, n, seed))])

    def interp() -> Image.Image:
        ends = (x[0], x[1]) if len(x) > 1 else (x[0], x[0])
        lines = interpolations(model, ends[0], ends[1], data)
        return render("interpolation between the posterior means of two validation sentences",
                      [f"t={i / (len(lines) - 1):.2f}  {s}" for i, s in enumerate(lines)])

    return {"reconstructions.png": recon, "samples.png": samples, "interpolations.png": interp}
