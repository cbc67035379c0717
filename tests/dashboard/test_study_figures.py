"""The study figures: the numbers behind each marker, and where they are stored."""

from __future__ import annotations

import json
import logging

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

from tests.dashboard.conftest import COLLAPSING, GOOD, MIXTURE
from vae_search.dashboard.study_figures import (
    ACTIVE_VS_OBJECTIVE_ID,
    COLLAPSE_MAP_ID,
    SYMBOLS,
    collapse_map,
    refresh_study_figures,
    setting,
    study_figures,
    trial_points,
)


def test_points_follow_the_trials(finished_study):
    points = {p.number: p for p in trial_points(finished_study.load())}
    # one point per finished trial, with its sampled β, rate and latent size
    for n, params in enumerate((GOOD, COLLAPSING, MIXTURE)):
        p = points[n]
        assert (p.beta, p.rate, p.latent_dim, p.prior) == (
            params["schedule.beta"],
            params["schedule.rate"],
            params["model.latent_dim"],
            params["prior.kind"],
        )
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
                                                 "final": {"active_units": 2}}))

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
