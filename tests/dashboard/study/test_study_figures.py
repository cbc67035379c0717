"""The study figures: the numbers behind each marker, and where they are stored."""

from __future__ import annotations

import json
import logging
import math

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

from tests.dashboard.conftest import COLLAPSING, GOOD, MIXTURE
from vae_search import records
from vae_search.dashboard.study.plot_style import HEIGHT, count_ticks
from vae_search.dashboard.study.points import setting, trial_points
from vae_search.dashboard.study.study_figures import (
    ACTIVE_VS_OBJECTIVE_ID,
    COLLAPSE_MAP_ID,
    OUTLINE,
    PLAIN_LINE,
    SYMBOLS,
    active_vs_objective,
    collapse_map,
    refresh_study_figures,
    study_figures,
)


def test_points_follow_the_trials(finished_study):
    study = finished_study.load()
    points = {p.number: p for p in trial_points(study)}
    # one point per finished trial, with its sampled target β, rate and latent size
    for n, params in enumerate((GOOD, COLLAPSING, MIXTURE)):
        p = points[n]
        assert (p.target_beta, p.rate, p.latent_dim, p.prior) == (
            params["schedule.beta"],
            params["schedule.rate"],
            params["model.latent_dim"],
            params["prior.kind"],
        )
        # placed at the β it trained with last, which the warm-up never takes past the target
        assert p.beta == records.trial_history(study.trials[n])["beta"][-1] <= p.target_beta
    # the collapsing trial: pruned for collapse with no active unit left
    assert points[1].prune_reason == "collapse" and points[1].active_fraction == 0.0
    # completed trials carry their objective value, the pruned one none
    assert points[0].value is not None and points[1].value is None


def test_collapse_map_colours_by_active_fraction_and_marks_by_prior(finished_study):
    points = trial_points(finished_study.load())
    fig = collapse_map(points)
    data = [tr for tr in fig.data if tr.x and tr.x[0] is not None]
    # a trace per prior and panel; colours are the active fractions on a shared 0..1 axis
    assert {tr.marker.symbol for tr in data} == {SYMBOLS["standard"], SYMBOLS["mog"]}
    colours = sorted(c for tr in data if tr.xaxis == "x" for c in tr.marker.color)
    assert colours == sorted(p.active_fraction for p in points)
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 1)


def test_figures_are_stored_for_the_dashboard(finished_study):
    study = finished_study.load()
    stored = dict(get_plotly_graph_objects(study._storage.get_study_system_attrs(study._study_id)))
    # both figures are in the study, under fixed ids (a refresh overwrites them)
    assert {COLLAPSE_MAP_ID, ACTIVE_VS_OBJECTIVE_ID} <= set(stored)


def test_a_setting_missing_from_the_space_comes_from_the_config():
    t = create_trial(
        state=TrialState.COMPLETE,
        value=1.0,
        params={"schedule.beta": 2.0},
        distributions={"schedule.beta": FloatDistribution(0.1, 10)},
        user_attrs={
            "config": {
                "schedule": {"beta": 9.0, "rate": 0.7, "kind": "linear"},
                "model": {"latent_dim": 12},
                "prior": {"kind": "vamp"},
            }
        },
    )
    # searched parameters win; the rest is read from the run config
    assert setting(t, "schedule.beta") == 2.0
    assert setting(t, "schedule.rate") == 0.7 and setting(t, "model.latent_dim") == 12
    assert setting(t, "prior.components") is None


def test_refresh_never_raises(caplog):
    study = optuna.create_study()
    with caplog.at_level(logging.WARNING, logger="vae_search.dashboard"):
        refresh_study_figures(study)  # an in-memory study: no RDB; must not raise
    refresh_study_figures(None)  # type: ignore[arg-type]
    assert any("figures" in r.getMessage() for r in caplog.records)


def test_refresh_is_shared_by_the_workers_of_a_study(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    dist = {"schedule.beta": FloatDistribution(0.1, 10)}

    def finish_one() -> None:
        config = {"model": {"latent_dim": 4}, "prior": {"kind": "standard"},
                  "schedule": {"kind": "linear", "rate": 0.5}}
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=1.0,
                                     params={"schedule.beta": 1.0}, distributions=dist,
                                     user_attrs={"config": config, "latent_dim": 4,
                                                 "final": {"active_units": 2, "beta": 1.0}}))

    finish_one()
    assert refresh_study_figures(study, every=3600)  # never stored: refreshed
    finish_one()
    # another worker (a second Study object on the same database) refreshed a moment ago
    other = optuna.load_study(study_name="s", storage=storage)
    assert not refresh_study_figures(other, every=3600)
    # with no new finished trial there is nothing to redraw, however long ago the last refresh
    assert refresh_study_figures(other, every=0)
    assert not refresh_study_figures(study, every=0)
    finish_one()
    assert refresh_study_figures(study, every=0)
    stored = get_plotly_graph_objects(storage.get_study_system_attrs(study._study_id))
    # what the dashboard reads back is the figure of all three trials, chunk for chunk
    for graph_id, fig in study_figures(study).items():
        assert json.loads(stored[graph_id]) == json.loads(fig.to_json())
    markers = [x for tr in json.loads(stored[COLLAPSE_MAP_ID])["data"] if tr.get("xaxis", "x") == "x"
               for x in tr["x"] if x is not None]
    assert markers == [4, 4, 4]  # three trials, at latent size 4


def _trial(
    state: TrialState, beta: float, rate: float, au: list[int] | None, **attrs
) -> FrozenTrial:
    """A trial with a linear schedule that held β at ``beta`` for ``len(au)`` epochs."""
    config = {"model": {"latent_dim": 4}, "prior": {"kind": "standard"},
              "schedule": {"kind": "linear", "rate": rate}}
    history = {"beta": [beta] * len(au)} if au else {}
    return create_trial(
        state=state,
        value=1.0 if state == TrialState.COMPLETE else None,
        params={"schedule.beta": beta},
        distributions={"schedule.beta": FloatDistribution(0.01, 100)},
        user_attrs={"config": config, "history": history, "active_units": au or [], **attrs},
    )


def _study(*trials: FrozenTrial) -> optuna.Study:
    study = optuna.create_study()
    for t in trials:
        study.add_trial(t)
    return study


def test_failed_trials_have_their_own_outline_and_key():
    study = _study(
        _trial(TrialState.COMPLETE, 0.5, 0.3, [4, 4], final={"active_units": 4, "beta": 0.5}),
        _trial(TrialState.FAIL, 2.0, 0.3, [4, 1], fail_reason="loss is nan"),
    )
    fig = collapse_map(trial_points(study))
    lines = {(x, c) for tr in fig.data if tr.xaxis == "x" and tr.x[0] is not None
             for x, c in zip(tr.y, tr.marker.line.color)}
    # the failed trial (β 2) is outlined in the failed colour, the completed one (β 0.5) is not
    assert lines == {(0.5, PLAIN_LINE[0]), (2.0, OUTLINE["failed"])}
    keys = {tr.name: tr.marker.line.color for tr in fig.data if tr.x[0] is None}
    # and the legend says what that outline means
    assert keys["failed"] == OUTLINE["failed"]


def test_an_all_failed_study_says_why_its_map_is_empty():
    study = _study(*(_trial(TrialState.FAIL, 1.0, 0.3, None, fail_reason="oom") for _ in range(5)))
    fig = collapse_map(trial_points(study))
    # not "no finished trial yet": five trials finished, none of them got through an epoch
    assert [a.text for a in fig.layout.annotations if "trial" in a.text] == [
        "5 trials failed before their first epoch"
    ]


def test_log_axes_are_labelled_at_1_2_5_steps():
    study = _study(
        *(_trial(TrialState.COMPLETE, b, r, [4], final={"active_units": 4, "beta": b})
          for b, r in ((0.13, 0.06), (0.4, 0.3), (2.7, 1.4)))
    )
    fig = collapse_map(trial_points(study))
    # β from 0.13 to 2.7: the 1-2-5 values from the one below 0.13 to the one above 2.7
    for axis in (fig.layout.yaxis, fig.layout.yaxis2):
        assert list(axis.tickvals) == [0.1, 0.2, 0.5, 1, 2, 5]
        assert list(axis.ticktext) == ["0.1", "0.2", "0.5", "1", "2", "5"]
        # both panels say what their y axis is
        assert axis.title.text == "β reached"
    # rate from 0.06 to 1.4
    assert list(fig.layout.xaxis2.ticktext) == ["0.05", "0.1", "0.2", "0.5", "1", "2"]


def test_the_beta_colour_bar_is_labelled_in_beta():
    study = _study(
        *(_trial(TrialState.COMPLETE, b, 0.5, [4], final={"active_units": 4, "beta": b})
          for b in (0.6, 1.7))
    )
    fig = active_vs_objective(trial_points(study))
    bar = fig.layout.coloraxis.colorbar
    # ticks at log10 of round β values, labelled with the values themselves
    assert list(bar.ticktext) == ["0.5", "1", "2"]
    assert [round(v, 9) for v in bar.tickvals] == [round(math.log10(b), 9) for b in (0.5, 1, 2)]
    # the markers' colours are log10 of the β reached, on the same scale
    assert sorted(fig.data[0].marker.color) == [math.log10(0.6), math.log10(1.7)]
    # active units are a count: whole-number ticks only (both trials have 4)
    assert list(fig.layout.xaxis.tickvals) == [4]


def test_every_study_figure_fits_the_dashboards_box(finished_study):
    for fig in study_figures(finished_study.load()).values():
        # optuna-dashboard draws a custom figure 450 px high and clips the rest: the figure
        # is that high, and its legend sits right of the plot, not below it
        assert fig.layout.height == HEIGHT == 450
        assert fig.layout.legend.x >= 1 and fig.layout.legend.yanchor == "top"


def test_count_ticks_are_whole_numbers():
    # a handful of units: every count; more: steps of 2 or 5, never 2.5
    assert count_ticks(0, 3) == [0, 1, 2, 3]
    assert count_ticks(0, 16) == [0, 5, 10, 15]
    assert count_ticks(3, 12) == [4, 6, 8, 10, 12]
    # one count: that count alone
    assert count_ticks(4, 4) == [4]
