"""The rate–distortion plane: every trial placed at (R, D), coloured by β reached, marked by
how it ended, the front, and lines of equal β = 1 ELBO."""

from __future__ import annotations

import math

import optuna
from optuna.trial import TrialState, create_trial

from vae_search.dashboard.study.rate_distortion import rate_distortion_figure, rd_front, rd_points


def _study():
    study = optuna.create_study(directions=["minimize", "minimize"])
    rows = [  # (R, D, beta, active units)
        (2.0, 100.0, 1.0, 3), (5.0, 90.0, 0.5, 4), (4.0, 95.0, 0.8, 3), (9.0, 92.0, 0.3, 4),
        (0.5, 80.0, 0.7, 0),  # would dominate, but collapsed
    ]
    for r, d, b, au in rows:
        study.add_trial(create_trial(values=[d, r], user_attrs={
            "final": {"kl": r, "recon": d, "beta": b, "active_units": au},
            "history": {"kl": [r], "recon": [d], "beta": [b]}}))
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={
        "prune_reason": "collapse", "history": {"kl": [0.01, 0.0], "recon": [130.0, 131.0], "beta": [4.0, 8.0]}}))
    return study


def test_points_front_and_equal_elbo_lines():
    points = rd_points(_study())
    # the pruned trial sits at its last epoch, marked as pruned for collapse, β reached 8
    pruned = [p for p in points if p.ending == "collapse"]
    assert len(points) == 6 and len(pruned) == 1
    assert (pruned[0].rate, pruned[0].distortion, pruned[0].beta) == (0.0, 131.0, 8.0)
    # front: non-dominated completed trials that kept active units, by rate; (9, 92) is
    # dominated by (5, 90), the collapsed (0.5, 80) is left off
    assert [(p.rate, p.distortion) for p in rd_front(points)] == [(2.0, 100.0), (4.0, 95.0), (5.0, 90.0)]
    fig = rate_distortion_figure(points)
    lines = [t for t in fig.data if t.mode == "lines" and t.name != "front"]
    assert lines
    for t in lines:  # R + D constant along each dashed line: slope -1
        (x0, x1), (y0, y1) = t.x, t.y
        assert math.isclose(x0 + y0, x1 + y1) and x1 > x0
    markers = [t for t in fig.data if t.mode == "markers"]
    assert {t.name for t in markers} == {"complete", "pruned: collapse"}
    colour = {t.name: list(t.marker.color) for t in markers}
    # colour is log10 of the β each trial reached
    assert colour["pruned: collapse"] == [math.log10(8.0)]
    assert sorted(colour["complete"]) == sorted(math.log10(b) for b in (1.0, 0.5, 0.8, 0.3, 0.7))
