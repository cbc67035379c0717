"""The pictures of one trial: training curves, KL per latent dimension, model grids, traversals.

Curves and the KL heatmap need only the trial's ``history`` (so pruned and failed trials get
them too); reconstructions, prior samples and latent traversals need the trained model and
image data. Every picture function returns a PIL image ready to save as PNG. Curves and the
heatmap are drawn with matplotlib (:mod:`~vae_search.dashboard.trial.plots`);
``training_curves_figure`` and ``kl_heatmap_figure`` return the matplotlib figures themselves,
to restyle or save otherwise. The image grids are PIL with the same font
(:mod:`~vae_search.dashboard.trial.grids`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from torchvision.utils import make_grid

from vae_search.dashboard.trial.grids import captioned, labelled_grid
from vae_search.dashboard.trial.panels import Marker, Series, heatmap, line_panel
from vae_search.dashboard.trial.plots import (
    MUTED,
    PALETTE,
    caption,
    caption_height,
    caption_width,
    figure,
    fmt,
    panel_box,
    render,
    styled,
    text_at,
    to_image,
    upscale,
)
from vae_search.metrics import active_units, mutual_info_at_ceiling, mutual_info_ceiling
from vae_search.model import VAE
from vae_search.pictures import reconstruction_grid, sample_grid

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# a traversal of z_d spans the mean of E_q[z_d] over the data ± this many of its standard
# deviations: the region the decoder was trained on, whatever the prior's own scale
TRAVERSAL_SPAN = 3.0
# ... but at least ± this much, so an inactive unit (spread ≈ 0) still shows its (flat) row
TRAVERSAL_MIN_HALF_WIDTH = 0.5
TRAVERSAL_STEPS = 7
KL_SCALE_MIN = 1.0  # nats: the KL heatmap's colour scale never tops out below this


PANEL = (380, 240)  # px: one panel of the training curves


@styled
def training_curves_figure(
    history: Mapping[str, Sequence[Any]],
    *,
    latent_dim: int,
    active_units: Sequence[int] | None = None,
    title: str = "training curves",
    subtitle: str = "",
    eval_batch: int | None = None,
) -> Figure:
    """Four panels over the epochs: -ELBO (β = 1) and reconstruction, KL and mutual
    information, active units out of ``latent_dim``, and β. A pruned trial's history ends at
    the epoch it was pruned.

    The mutual information panel says how to read the estimate (:func:`mi_markers`): a dotted
    line at its ceiling log(``eval_batch``) when the values come within 95% of it, and one at
    0 when an estimate is negative (noise around 0)."""
    n = max((len(v) for v in history.values() if isinstance(v, Sequence)), default=0)
    xs = list(range(1, n + 1))
    au = list(active_units if active_units is not None else history.get("active_units") or [])

    def col(key: str) -> list[float | None]:
        vals = list(history.get(key) or [])
        return vals + [None] * (n - len(vals))

    head = caption_height(title, subtitle)
    fig = figure(max(2 * PANEL[0], caption_width(title, subtitle)), head + 2 * PANEL[1])
    caption(fig, title, subtitle)
    nats, kl, units, beta = (
        fig.add_axes(panel_box(fig, (i % 2) * PANEL[0], head + (i // 2) * PANEL[1], PANEL))
        for i in range(4)
    )
    line_panel(
        nats,
        "validation −ELBO (β = 1) and reconstruction, nats",
        xs,
        [
            Series("−ELBO", col("elbo"), PALETTE[0]),
            Series("reconstruction −log p(x|z)", col("recon"), PALETTE[2], dashed=True),
        ],
    )
    line_panel(
        kl,
        "KL and mutual information I(x; z), nats",
        xs,
        [
            Series("KL(q(z|x) ‖ p(z))", col("kl"), PALETTE[1]),
            Series("mutual information", col("mutual_info"), PALETTE[3], dashed=True),
        ],
        markers=mi_markers(col("mutual_info"), eval_batch),
        y_floor=0.0,
    )
    line_panel(
        units,
        f"active units (of {latent_dim})",
        xs,
        [Series("active units", (au + [None] * n)[:n], PALETTE[2])],
        markers=[Marker(latent_dim, f"latent size {latent_dim}")],
        y_floor=0.0,
        integer_y=True,
    )
    line_panel(
        beta, "β: weight of the KL term", xs, [Series("β", col("beta"), PALETTE[4])], y_floor=0.0
    )
    return fig


def mi_markers(values: Sequence[Any], eval_batch: int | None) -> list[Marker]:
    """Reference lines for mutual information estimates over evaluation batches of
    ``eval_batch``: the estimator's ceiling log(b) when an estimate reaches 95% of it (it
    then tells only that I(x; z) is at least that much), and 0 when an estimate is negative
    (I(x; z) >= 0: what lies below is estimator noise)."""
    finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    out = []
    if eval_batch and any(mutual_info_at_ceiling(v, eval_batch) for v in finite):
        ceiling = mutual_info_ceiling(eval_batch)
        out.append(Marker(ceiling, f"MI estimator's ceiling log {eval_batch} = {ceiling:.2f}"))
    if any(v < 0 for v in finite):
        out.append(Marker(0.0, "MI < 0 is estimator noise around 0"))
    return out


def training_curves(
    history: Mapping[str, Sequence[Any]],
    *,
    latent_dim: int,
    active_units: Sequence[int] | None = None,
    title: str = "training curves",
    subtitle: str = "",
    eval_batch: int | None = None,
) -> Image.Image:
    """:func:`training_curves_figure` as an image."""
    return render(
        training_curves_figure(
            history,
            latent_dim=latent_dim,
            active_units=active_units,
            title=title,
            subtitle=subtitle,
            eval_batch=eval_batch,
        )
    )


def kl_matrix(kl_per_dim: Sequence[Sequence[float]]) -> torch.Tensor:
    """(latent dims, epochs) from the history's per-epoch lists (ragged entries become NaN)."""
    if not kl_per_dim:
        return torch.zeros(0, 0)
    dims = max(len(row) for row in kl_per_dim)
    m = torch.full((dims, len(kl_per_dim)), float("nan"))
    for e, row in enumerate(kl_per_dim):
        vals = torch.tensor([float(v) if v is not None else math.nan for v in row])
        m[: len(row), e] = vals
    return m


@styled
def kl_heatmap_figure(
    kl_per_dim: Sequence[Sequence[float]],
    *,
    active_units: Sequence[int] | None = None,
    unit_variance: Sequence[float] | None = None,
    au_threshold: float = 0.01,
    title: str = "KL per latent dimension",
    subtitle: str = "",
) -> tuple[Figure, tuple[int, int, int, int] | None]:
    """:func:`kl_heatmap` as a figure, with where its cells are (``(left, top, cell width,
    cell height)`` in pixels; None when no epoch finished)."""
    m = kl_matrix(kl_per_dim).clamp_min(0)
    head = caption_height(title, subtitle)
    if m.numel() == 0:
        fig = figure(max(360, caption_width(title, subtitle)), head + 60)
        caption(fig, title, subtitle)
        text_at(fig, 10, head + 10, "no epoch finished", color=MUTED)
        return fig, None
    dims, epochs = m.shape
    finite = m[torch.isfinite(m)]
    vmax = max(KL_SCALE_MIN, float(finite.max()) if finite.numel() else 0.0)
    notes = [f"colour: 0 to max({KL_SCALE_MIN:g} nat, largest KL) = {fmt(vmax)} nats"]
    marks = None
    if unit_variance is not None and len(unit_variance) == dims:
        marks = [not (float(v) > au_threshold) for v in unit_variance]  # NaN: inactive
        notes.append(f"× inactive at the end: Var_x E[z_d] ≤ {au_threshold:g}")
    fig, grid = heatmap(
        m,
        title="validation KL of each z_d, nats (black: KL ≈ 0)",
        xlabel="epoch",
        ylabel="latent dim",
        row_labels=[f"z{d}" for d in range(dims)],
        col_labels=[str(e + 1) for e in range(epochs)],
        colorbar_label="KL, nats",
        vmax=vmax,
        footer=("active", [str(a) for a in active_units] + [""] * epochs) if active_units else None,
        row_marks=marks,
        notes=notes,
        head=head,
        min_width=caption_width(title, subtitle),
    )
    caption(fig, title, subtitle)
    return fig, grid


def kl_heatmap(
    kl_per_dim: Sequence[Sequence[float]],
    *,
    active_units: Sequence[int] | None = None,
    unit_variance: Sequence[float] | None = None,
    au_threshold: float = 0.01,
    title: str = "KL per latent dimension",
    subtitle: str = "",
) -> Image.Image:
    """Epochs on x, latent dimensions on y (z0 at the top), colour = validation KL in nats on a
    linear scale from 0 (black) to at least :data:`KL_SCALE_MIN` nats: a collapsed trial, all
    of whose KLs are small, stays dark instead of being stretched to its own maximum.
    ``active_units`` (per epoch) is written under the epochs; with ``unit_variance`` (the last
    epoch's Var_x E[z_d]) the units at or below ``au_threshold``, inactive, get a ×.

    The image's ``info["grid"]`` is ``(left, top, cell width, cell height)`` in pixels."""
    fig, grid = kl_heatmap_figure(
        kl_per_dim,
        active_units=active_units,
        unit_variance=unit_variance,
        au_threshold=au_threshold,
        title=title,
        subtitle=subtitle,
    )
    img = render(fig)
    if grid is not None:
        img.info["grid"] = grid  # where the cells are, for readers and tests
    return img


def last_unit_variance(history: Mapping[str, Any], final: Mapping[str, Any]) -> list[float] | None:
    """Var_x E[z_d] per unit at the end: the final figures', else the history's last epoch."""
    if final.get("unit_variance"):
        return list(final["unit_variance"])
    per_epoch = history.get("unit_variance") or []
    return list(per_epoch[-1]) if per_epoch and per_epoch[-1] else None


def reconstructions(model: VAE, x: torch.Tensor, n: int = 32) -> Image.Image:
    """Validation inputs (odd rows) above their reconstructions from the posterior mean."""
    grid = to_image(reconstruction_grid(model, x.to(_device(model)), n=n))
    return captioned(
        upscale(grid),
        "reconstructions (validation)",
        "rows alternate: inputs, then their reconstructions",
    )


def prior_samples(model: VAE, seed: int = 0, n: int = 64) -> Image.Image:
    """Decoder means of ``n`` draws from the prior."""
    return captioned(
        upscale(to_image(sample_grid(model, n=n, seed=seed))),
        "samples from the prior",
        "decoder means of z ~ p(z)",
    )


@torch.no_grad()
def latent_ranges(
    model: VAE,
    data: torch.Tensor,
    span: float = TRAVERSAL_SPAN,
    min_half_width: float = TRAVERSAL_MIN_HALF_WIDTH,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per latent dimension, the ``(low, high)`` a traversal of z_d covers: the mean of
    E_q[z_d] over ``data`` ± ``span`` standard deviations, at least ± ``min_half_width``.

    The standard deviation is the square root of the biased variance A_d that the active-unit
    count thresholds, so an active unit's row covers where its encoder means actually lie.
    """
    model.eval()
    mu, _ = model.encode(data.reshape(-1, *model.shape).to(_device(model)))
    _, var = active_units(mu)
    centre = mu.mean(0)
    half = (span * var.sqrt()).clamp_min(min_half_width)
    return (centre - half).float().cpu(), (centre + half).float().cpu()


@torch.no_grad()
def traverse(
    model: VAE,
    x: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    steps: int = TRAVERSAL_STEPS,
) -> torch.Tensor:
    """Decoded traversals of one example: ``(latent_dim, steps, *event_shape)``.

    Row d sets z_d of the example's posterior mean to each of ``steps`` values evenly spaced in
    [``low[d]``, ``high[d]``] (see :func:`latent_ranges`), the other coordinates kept; pixels
    are the likelihood's mean.
    """
    model.eval()
    x = x.reshape(1, *model.shape).to(_device(model))
    mu, _ = model.encode(x)
    d = mu.shape[-1]
    values = traversal_values(low, high, steps).to(mu.device, mu.dtype)
    z = mu.expand(d, steps, d).clone()
    idx = torch.arange(d, device=mu.device)
    z[idx, :, idx] = values
    out = model.likelihood.mean(model.decode(z.reshape(d * steps, d))).clamp(0, 1)
    return out.reshape(d, steps, *model.shape).float().cpu()


def traversal_values(low: torch.Tensor, high: torch.Tensor, steps: int) -> torch.Tensor:
    """``(latent_dim, steps)``: row d runs evenly from ``low[d]`` to ``high[d]``."""
    frac = torch.linspace(0.0, 1.0, steps, dtype=torch.float32)
    return low.float()[:, None] + (high.float() - low.float())[:, None] * frac


def traversal_picture(
    model: VAE,
    x: torch.Tensor,
    data: torch.Tensor,
    *,
    kl_last: Sequence[float] | None = None,
    example: str = "",
    span: float = TRAVERSAL_SPAN,
    steps: int = TRAVERSAL_STEPS,
) -> Image.Image:
    """:func:`traverse` of ``x`` as a labelled grid: one row per latent dimension, labelled
    with the range it covers (spread of E_q[z_d] over ``data``, see :func:`latent_ranges`) and
    its last-epoch KL; one column per step; the input example at the left."""
    low, high = latent_ranges(model, data, span)
    t = traverse(model, x, low, high, steps)
    d = t.shape[0]
    cells = torch.cat(
        [x.reshape(1, 1, *model.shape).expand(d, 1, *model.shape).float().cpu(), t], dim=1
    )
    grid = to_image(make_grid(cells.flatten(0, 1), nrow=steps + 1, padding=1, pad_value=0.5))
    factor = max(1, min(8, math.ceil(48 / (t.shape[-1] + 1))))  # cells of ~48 px
    big = grid.resize((grid.width * factor, grid.height * factor), Image.Resampling.NEAREST)
    cell = (t.shape[-1] + 1) * factor
    # rows at the floor are not "± 3 sd" wide: say so, the column heads do not hold for them
    floored = ((high - low) / 2 <= TRAVERSAL_MIN_HALF_WIDTH * (1 + 1e-6)).tolist()
    labels = [_row_label(r, low, high, kl_last, floored[r]) for r in range(d)]
    title = "latent traversals (rows: latent dims, each over its own range of z_d)"
    subtitle = (
        (example or "a validation example") + f"; z_d from the mean of E_q[z_d] over "
        f"{data.reshape(-1, *model.shape).shape[0]} validation examples ± {span:g} sd "
        f"(at least ± {TRAVERSAL_MIN_HALF_WIDTH:g}); other dims at the example's posterior mean"
    )
    return labelled_grid(big, cell, labels, _column_labels(span, steps), title, subtitle)


def _row_label(
    r: int,
    low: torch.Tensor,
    high: torch.Tensor,
    kl_last: Sequence[float] | None,
    floored: bool,
) -> str:
    kl = f"  KL {kl_last[r]:.2f}" if kl_last and r < len(kl_last) else ""
    floor = " (min width)" if floored else ""
    return f"z{r}: {fmt(float(low[r]))} .. {fmt(float(high[r]))}{floor}{kl}"


def _column_labels(span: float, steps: int) -> list[str]:
    """Each column's offset from the mean in standard deviations ("mean" in the middle)."""
    out = []
    for v in torch.linspace(-span, span, steps).tolist():
        out.append("mean" if abs(v) < 1e-9 else f"{'+' if v > 0 else '−'}{fmt(abs(v))} sd")
    return out


def _device(model: VAE) -> torch.device:
    return next(model.parameters()).device
