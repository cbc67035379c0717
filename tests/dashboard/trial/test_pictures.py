"""The picture functions: shapes, colours and what a researcher reads off them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import optuna
import torch
from PIL import ImageColor
from torch import nn

from tests.conftest import small_config
from vae_search.dashboard.trial.notes import CollapseRule, trial_note
from vae_search.dashboard.trial.plots import MARK, colormap
from vae_search.dashboard.trial.trial_pictures import (
    kl_heatmap,
    kl_matrix,
    last_unit_variance,
    latent_ranges,
    training_curves,
    training_curves_figure,
    traversal_picture,
    traverse,
)
from vae_search.model.likelihoods import Gaussian
from vae_search.model.priors import StandardPrior
from vae_search.model.vae import VAE, build_vae
from vae_search.study.collapse import CollapsePruner

SHAPE = (1, 16, 16)


def _history(epochs: int = 4, dims: int = 3, dead: int | None = 1) -> dict:
    kl = [
        [0.0 if d == dead else 0.2 * (d + 1) * (e + 1) for d in range(dims)] for e in range(epochs)
    ]
    return {
        "beta": [min(1.0, 0.3 * (e + 1)) for e in range(epochs)],
        "elbo": [100.0 - 10 * e for e in range(epochs)],
        "recon": [95.0 - 10 * e for e in range(epochs)],
        "kl": [sum(row) for row in kl],
        "mutual_info": [0.1 * e for e in range(epochs)],
        "kl_per_dim": kl,
        "seconds": [0.1] * epochs,
    }


def _cell(img, row: int, col: int) -> tuple[int, int, int]:
    left, top, cw, ch = img.info["grid"]
    return img.getpixel((left + col * cw + cw // 2, top + row * ch + ch // 2))


def test_kl_heatmap_draws_a_dead_dimension_black():
    img = kl_heatmap(_history()["kl_per_dim"], active_units=[2, 2, 2, 2])
    for epoch in range(4):
        # dimension 1 has KL 0 at every epoch: its whole row is (inferno's) black
        assert max(_cell(img, 1, epoch)) <= 4
        # the live dimensions are visibly lit at every epoch
        assert sum(_cell(img, 0, epoch)) > 60 and sum(_cell(img, 2, epoch)) > 60
    # brightness grows with KL: the largest value (dim 2, last epoch) is the brightest cell
    cells = {(r, c): sum(_cell(img, r, c)) for r in range(3) for c in range(4)}
    assert max(cells, key=cells.get) == (2, 3)


def test_kl_heatmap_rows_are_dimensions_and_columns_epochs():
    m = kl_matrix(_history(epochs=5, dims=7)["kl_per_dim"])
    # latent dims on y, epochs on x
    assert m.shape == (7, 5)
    img = kl_heatmap(_history(epochs=5, dims=7)["kl_per_dim"])
    left, top, cw, ch = img.info["grid"]
    # the grid fits in the picture
    assert left + 5 * cw <= img.width and top + 7 * ch <= img.height


def test_kl_heatmap_of_an_empty_history_is_a_placeholder():
    assert kl_heatmap([]).width > 0


def test_colormap_runs_from_black_to_bright():
    c = colormap(torch.tensor([0.0, 0.5, 1.0])).int()
    # inferno: 0 is black, and brightness grows with the value
    assert max(c[0].tolist()) <= 4
    assert c[0].sum() < c[1].sum() < c[2].sum()


def _panels(history: dict, latent_dim: int = 3, **kw) -> dict:
    """The training-curve panels by title, drawn, with their visible ticks and tick labels."""
    fig = training_curves_figure(history, latent_dim=latent_dim, **kw)
    fig.canvas.draw()
    out = {}
    for ax in fig.axes:
        out[ax.get_title(loc="left")] = {
            axis: [
                (t.get_position()[0 if axis == "x" else 1], t.get_text())
                for t in getattr(ax, f"get_{axis}ticklabels")()
                if lim[0] <= t.get_position()[0 if axis == "x" else 1] <= lim[1]
            ]
            for axis, lim in (("x", ax.get_xlim()), ("y", sorted(ax.get_ylim())))
        }
    return out


ELBO_PANEL = "validation −ELBO (β = 1) and reconstruction, nats"


def test_training_curves_picture():
    img = training_curves(_history(), latent_dim=3, active_units=[3, 2, 2, 2], title="t")
    # two by two panels of 380 x 240 under a caption
    assert img.width >= 760 and img.height >= 480
    # an empty history (a trial that failed in its first epoch) still gives a picture
    assert training_curves({}, latent_dim=3).height >= 480


class _LinearEncoder(nn.Module):
    """E_q[z|x] = W x + b with fixed weights (log-variance 0): its means are known in closed form."""

    def __init__(self, w: list[list[float]], b: list[float]) -> None:
        super().__init__()
        self.register_buffer("w", torch.tensor(w))
        self.register_buffer("b", torch.tensor(b))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = x @ self.w.T + self.b
        return mu, torch.zeros_like(mu)


# dimension 0 follows the data; dimension 1 ignores it (weights 0): an inactive unit
W, B = [[2.0, -1.0], [0.0, 0.0]], [0.5, 1.5]
X = [[0.0, 1.0], [2.0, -1.0], [4.0, 3.0], [-3.0, 0.0], [1.0, 1.0]]


def _linear_vae() -> VAE:
    """Two latents, data of two numbers; the decoder 0.5 + z / 100 keeps every z it is given
    readable from its output (inside the [0, 1] the traversal clamps to)."""
    decoder = nn.Linear(2, 2)
    with torch.no_grad():
        decoder.weight.copy_(0.01 * torch.eye(2))
        decoder.bias.fill_(0.5)
    likelihood = Gaussian(1, sigma=1.0, learn_sigma=False)
    return VAE((2,), _LinearEncoder(W, B), decoder, StandardPrior(2), likelihood)


def test_traversals_span_the_spread_of_the_encoder_means():
    model, data = _linear_vae(), torch.tensor(X)
    low, high = latent_ranges(model, data)
    # independently: E_q[z_0] = 2 x_0 - x_1 + 0.5 over the five examples, and its biased sd
    mu0 = np.asarray(X) @ np.asarray(W[0]) + B[0]
    centre, sd = mu0.mean(), mu0.std(ddof=0)
    # dimension 0 runs from the mean - 3 sd to the mean + 3 sd of its encoder means
    assert np.allclose([low[0], high[0]], [centre - 3 * sd, centre + 3 * sd], atol=1e-5)
    # dimension 1 is constant (sd 0): the floor keeps a row of ± 0.5 around its value 1.5
    assert np.allclose([low[1], high[1]], [1.0, 2.0], atol=1e-6)
    t = traverse(model, data[2], low, high, steps=7)
    # rows = latent dims, columns = the 7 values, each an output of the data's shape
    assert t.shape == (2, 7, 2)
    z = (t - 0.5) / 0.01  # the decoder's inverse
    # row 0 decodes z_0 = 7 evenly spaced values from mean - 3 sd to mean + 3 sd ...
    assert np.allclose(z[0, :, 0], np.linspace(centre - 3 * sd, centre + 3 * sd, 7), atol=1e-3)
    # ... with z_1 kept at the example's own mean, 1.5
    assert np.allclose(z[0, :, 1], 1.5, atol=1e-3)
    # row 1, the inactive unit, runs over its floor 1.0 .. 2.0, z_0 at the example's 2*4-3+0.5
    assert np.allclose(z[1, :, 1], np.linspace(1.0, 2.0, 7), atol=1e-3)
    assert np.allclose(z[1, :, 0], 5.5, atol=1e-3)


def test_traversal_pictures_have_one_row_per_latent_dimension():
    torch.manual_seed(0)
    x = torch.rand(8, *SHAPE)
    model = build_vae(small_config(model={"latent_dim": 5, "hidden": [16]}), SHAPE)
    img = traversal_picture(model, x[0], x, kl_last=[0.1] * 5)
    # the picture grows with the number of rows
    taller = traversal_picture(
        build_vae(small_config(model={"latent_dim": 10, "hidden": [16]}), SHAPE), x[0], x
    )
    assert taller.height > img.height


def test_notes_say_why_a_trial_ended():
    cfg = small_config(model={"latent_dim": 6})
    h = _history(epochs=2, dims=6)
    note = trial_note(
        4,
        cfg,
        h,
        [6, 0],
        "pruned",
        {"prune_reason": "collapse", "pruned_epoch": 2, "pruned_active_units": 0},
    )
    # the reason, the epoch and the active units at that epoch
    assert "posterior collapse" in note and "epoch 2" in note and "0/6 active units" in note
    assert "6 → 0" in note
    perf = trial_note(
        4,
        cfg,
        h,
        [6, 6],
        "pruned",
        {"prune_reason": "performance", "pruned_epoch": 2, "pruned_active_units": 6},
    )
    assert "**performance**" in perf and "6/6 active units" in perf
    failed = trial_note(5, cfg, h, [6], "failed", {"fail_reason": "loss is nan at epoch 2 step 7"})
    assert "failed" in failed and "loss is nan at epoch 2 step 7" in failed
    done = trial_note(
        6,
        cfg,
        h,
        [6, 5],
        "complete",
        {"final": {"active_units": 5, "nll_iwae": 80.5, "iwae_samples": 10}},
    )
    assert "5/6 active units" in done and "80.50" in done and "k = 10" in done


def test_a_collapse_note_states_the_rule_with_its_numbers():
    cfg = small_config(model={"latent_dim": 10})
    au = [10, 8, 5, 3, 3]
    pruner = CollapsePruner(
        min_active_units=1, min_active_fraction=0.4, patience=2, warmup_epochs=2
    )
    rule = CollapseRule.of(pruner)
    # the live pruner itself prunes this history at epoch 5 and not at epoch 4
    assert pruner.is_collapsed(SimpleNamespace(user_attrs={"active_units": au, "latent_dim": 10}))
    assert not pruner.is_collapsed(
        SimpleNamespace(user_attrs={"active_units": au[:4], "latent_dim": 10})
    )
    info = {"prune_reason": "collapse", "pruned_epoch": 5, "pruned_active_units": 3}
    note = trial_note(7, cfg, _history(epochs=5, dims=10), au, "pruned", info, rule=rule)
    # threshold by hand: max(1, 0.4 * 10) = 4; epochs 4 and 5 (patience 2) are the window after
    # the 2-epoch warm-up; 0.01 is the config's eval.au_threshold
    want = (
        "Pruned at epoch 5: 3/10 active units (variance of E[z_d] over the validation data > "
        "0.01), below the threshold 4 (= max(1, 0.4 × 10)) for 2 epochs (epochs 4–5: 3 → 3) "
        "after a 2-epoch warm-up."
    )
    # Markdown joins the wrapped lines into that sentence; no line of it makes the page scroll
    assert want in " ".join(note.split())
    (sentence,) = [p for p in note.split("\n\n") if p.startswith("Pruned at")]
    assert len(sentence.splitlines()) > 1 and all(len(line) <= 80 for line in sentence.splitlines())
    # a fractional threshold, 0.35 * 10 = 3.5, is written as such, with a single epoch's window
    odd = CollapseRule(min_active_units=1, min_active_fraction=0.35, patience=1, warmup_epochs=0)
    note = trial_note(7, cfg, _history(epochs=5, dims=10), au, "pruned", info, rule=odd)
    assert (
        "below the threshold 3.5 (= max(1, 0.35 × 10)) for 1 epoch (epoch 5: 3) with no warm-up"
        in " ".join(note.split())
    )
    # a plain Optuna pruner has no collapse rule; the note still names the variance threshold
    assert CollapseRule.of(optuna.pruners.MedianPruner()) is None
    plain = trial_note(7, cfg, _history(epochs=5, dims=10), au, "pruned", info)
    assert "3/10 (variance of E[z_d] over the validation data > 0.01)" in plain


def test_tick_labels_are_distinct_and_ordered():
    for lo, hi in ((646.94, 648.12), (1001, 1003)):
        h = _history(epochs=4)
        h["elbo"] = h["recon"] = [lo, lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3, hi]
        ticks = _panels(h)[ELBO_PANEL]["y"]
        labels = [text for _, text in ticks]
        # a narrow range far from 0 (-ELBO late in training): no label twice, none in
        # e-notation, no offset ("+6.47e2") to add in the head
        assert len(ticks) >= 3
        assert len(set(labels)) == len(labels) and not any("e" in t for t in labels)
        # each label reads back as its tick, so they are in the ticks' order
        values = [v for v, _ in ticks]
        assert np.allclose([float(t) for t in labels], values) and values == sorted(values)


def test_epoch_and_count_ticks_are_whole_numbers_that_exist():
    # one epoch: a tick at that epoch only (not 0 and 2, epochs that never ran)
    one = _panels(_history(epochs=1), active_units=[2])
    assert all([v for v, _ in p["x"]] == [1] for p in one.values())
    # eight epochs: whole-number ticks among the epochs that ran
    eight = _panels(_history(epochs=8), active_units=[3, 3, 2, 2, 2, 2, 2, 2])
    for p in eight.values():
        assert {v for v, _ in p["x"]} <= set(range(1, 9)) and len(p["x"]) >= 3


def test_the_active_units_panel_has_whole_number_ticks():
    h = _history(epochs=1)
    h["recon"] = [h["elbo"][0] - 0.4]  # -ELBO and reconstruction 0.4 nats apart
    panels = _panels(h, active_units=[2])
    # only the count panel (0 to 3, where free ticks would fall at halves); β and the nats
    # panels keep fractional ticks
    whole = [title for title, p in panels.items() if all(v == int(v) for v, _ in p["y"])]
    assert whole == ["active units (of 3)"]
    # ... labelled as whole numbers, the latent size included
    assert [text for _, text in panels["active units (of 3)"]["y"]] == ["0", "1", "2", "3"]


def test_a_collapsed_trial_stays_dark_in_the_kl_heatmap():
    # all KL between 0.02 and 0.18 nats: a collapsed trial
    kl = [[0.02 + 0.04 * d for d in range(5)] for _ in range(3)]
    img = kl_heatmap(kl)
    # the colour scale tops at 1 nat, not at 0.18: the largest cell has inferno's colour of
    # 0.18 (dark), not its brightest
    assert _cell(img, 4, 0) == tuple(colormap(torch.tensor(0.18)).tolist())
    assert sum(_cell(img, 4, 0)) < sum(colormap(torch.tensor(1.0)).tolist()) / 3
    # above 1 nat the scale follows the trial's largest KL: that cell is the brightest colour
    lit = kl_heatmap([[0.5, 3.0]])
    assert _cell(lit, 1, 0) == tuple(colormap(torch.tensor(1.0)).tolist())


def _marked_rows(img, rows: int) -> list[int]:
    """Rows with the mark colour (a blue inferno never takes) on their centre line."""
    left, top, cw, ch = img.info["grid"]
    mark = ImageColor.getrgb(MARK)
    return [
        r
        for r in range(rows)
        if any(_near(img.getpixel((x, top + r * ch + ch // 2)), mark) for x in range(img.width))
    ]


def _near(a, b, tol: int = 40) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def test_inactive_units_are_marked_by_their_variance():
    kl = [[0.5, 0.0, 0.3, 0.0]] * 2
    # Var_x E[z_d] at the end: units 1 and 3 at or below δ = 0.01, inactive
    img = kl_heatmap(kl, unit_variance=[0.5, 0.001, 0.02, 0.01], au_threshold=0.01)
    assert _marked_rows(img, 4) == [1, 3]
    # with no variances recorded there is nothing to mark
    assert _marked_rows(kl_heatmap(kl), 4) == []
    # the variances come from the final figures, else the history's last epoch
    assert last_unit_variance({"unit_variance": [[1.0], [0.2]]}, {}) == [0.2]
    assert last_unit_variance({}, {"unit_variance": [0.3]}) == [0.3]
    assert last_unit_variance({}, {}) is None
