"""How a trial's note, its curves and the report show the mutual information estimate: noise
around 0, and its ceiling log(eval batch)."""

from __future__ import annotations

import math

import optuna
import pytest
import torch

from tests.conftest import small_config
from vae_search import records
from vae_search.dashboard.report import render_report
from vae_search.dashboard.trial.notes import mutual_info_text
from vae_search.dashboard.trial.trial_pictures import training_curves_figure
from vae_search.metrics import mutual_info_batch


def test_a_negative_estimate_is_shown_as_noise_around_zero():
    text = mutual_info_text(-0.02, 1000)
    assert text.startswith("≈ 0 nats") and "-0.02" in text and "noise" in text


def test_an_estimate_at_log_batch_is_marked_as_the_ceiling():
    # an encoder whose posteriors are far apart puts every example in its own mode: the He et
    # al. estimate is then log(b) (closed form), the most one batch of b examples can show
    b, d = 1000, 4
    mu = torch.arange(b, dtype=torch.float64).unsqueeze(1).repeat(1, d) * 100.0
    logvar = torch.full((b, d), -4.0, dtype=torch.float64)
    z = mu + torch.randn(b, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * math.exp(-2)
    mi = float(mutual_info_batch(mu, logvar, z))
    assert abs(mi - math.log(b)) < 0.1  # up to the sampling noise of the entropy term
    text = mutual_info_text(mi, b)
    assert "ceiling log 1000 = 6.91" in text and "raise eval.batch_size" in text


def test_an_estimate_with_room_is_a_plain_number():
    assert mutual_info_text(2.5, 1000) == "2.50 nats"
    # below 95% of log(500) = 6.21 is not at the ceiling; above is
    assert "ceiling" not in mutual_info_text(0.94 * math.log(500), 500)
    assert "ceiling" in mutual_info_text(0.96 * math.log(500), 500)


KL_PANEL = "KL and mutual information I(x; z), nats"


def _reference_lines(history: dict, eval_batch: int | None) -> dict[float, str]:
    """The KL and MI panel's dotted reference lines: height -> the label written on it."""
    fig = training_curves_figure(history, latent_dim=4, eval_batch=eval_batch)
    ax = next(a for a in fig.axes if a.get_title(loc="left") == KL_PANEL)
    heights = [float(ln.get_ydata()[0]) for ln in ax.get_lines() if ln.get_linestyle() == ":"]
    labels = {float(t.xy[1]): t.get_text() for t in ax.texts}  # each label sits on its line
    return {h: labels.get(h, "") for h in heights}


def _history(mi: list[float]) -> dict:
    n = len(mi)
    return {"beta": [1.0] * n, "elbo": [90.0] * n, "recon": [80.0] * n, "kl": [10.0] * n,
            "mutual_info": mi}


def test_the_curves_draw_the_ceiling_when_the_estimate_reaches_it():
    b = 1000
    ceiling = math.log(b)  # 6.9078, what the closed-form case above reaches
    lines = _reference_lines(_history([5.0, 0.96 * ceiling, 6.9]), b)
    assert list(lines) == [pytest.approx(ceiling)]
    label = next(iter(lines.values()))
    assert "ceiling" in label and "log 1000 = 6.91" in label
    # with room left (below 95% of log b), or a batch that leaves room, no line
    assert _reference_lines(_history([5.0, 0.94 * ceiling]), b) == {}
    assert _reference_lines(_history([5.0, 6.9]), 100_000) == {}
    # the batch unknown: nothing claimed
    assert _reference_lines(_history([6.9]), None) == {}


def test_the_curves_mark_zero_when_an_estimate_is_negative():
    lines = _reference_lines(_history([0.03, -0.02, 0.0]), 1000)
    assert list(lines) == [0.0] and "noise around 0" in lines[0.0]
    assert _reference_lines(_history([0.03, 0.01]), 1000) == {}


def test_the_report_reads_the_estimate_as_the_note_does(tmp_path):
    """A collapsed trial's negative estimate and a saturated one's, in the report's figures."""
    cfg = small_config(eval={"batch_size": 1000}).to_dict()
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'r.db'}", study_name="mi")
    for value, mi in ((90.0, -0.02), (80.0, 6.9)):
        study.add_trial(optuna.trial.create_trial(value=value, system_attrs={
            records.key(records.CONFIG): cfg, records.key(records.LATENT_DIM): 4,
            records.key(records.FINAL): {"nll_iwae": value, "active_units": 2, "latent_dim": 4,
                                         "mutual_info": mi},
        }))
    page = render_report(study, None, storage_label="r.db")
    assert "<th>mutual_info</th><td>≈ 0 nats (the estimate -0.02 is noise around 0)</td>" in page
    assert "<th>mutual_info</th><td>6.90 nats, at the estimator&#x27;s ceiling log 1000 = 6.91" in page
