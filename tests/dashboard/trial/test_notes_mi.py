"""How a trial's note shows the mutual information estimate: noise around 0, and its ceiling."""

from __future__ import annotations

import math

import torch

from vae_search.dashboard.trial.notes import mutual_info_text
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
