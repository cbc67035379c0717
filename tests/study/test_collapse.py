"""The collapse pruner, its reasons, the Hyperband subclass and the collapse constraint.

Trials are driven like the objective drives them: set the active-units history, report, ask
``should_prune`` - on real in-memory studies.
"""

from __future__ import annotations

import statistics
import warnings

import optuna
import pytest
from optuna.pruners import HyperbandPruner, MedianPruner
from optuna.trial import TrialState, create_trial

from vae_search.study import (
    CollapseHyperbandPruner,
    CollapsePruner,
    StudySpec,
    build_pruner,
    collapse_constraint,
    collapse_threshold,
    constraints_func,
    prune_reason,
    record_collapse_constraint,
)


def drive(
    study: optuna.Study,
    active_units: list[int],
    values: list[float] | None = None,
    latent_dim: int | None = 10,
) -> tuple[optuna.Trial, list[bool]]:
    """Run the objective's per-epoch protocol; return the trial and should_prune per epoch."""
    trial = study.ask()
    if latent_dim is not None:
        trial.set_user_attr("latent_dim", latent_dim)
    decisions = []
    for epoch in range(1, len(active_units) + 1):
        trial.set_user_attr("active_units", active_units[:epoch])
        trial.report(values[epoch - 1] if values else 1.0, epoch)
        decisions.append(trial.should_prune())
    return trial, decisions


def collapse_study(**kwargs: object) -> optuna.Study:
    return optuna.create_study(pruner=CollapsePruner(**kwargs))  # type: ignore[arg-type]


# -- the collapse rule's boundaries ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("history", "expected"),
    [
        # Collapsed from the start: epochs 1-2 are warm-up, 3 is the first counted, prune at 4.
        ([0, 0, 0, 0], [False, False, False, True]),
        # Healthy warm-up, collapsed at 3 and 4: prune at 4, not at 3.
        ([5, 5, 0, 0], [False, False, False, True]),
        # Recovery at epoch 4 resets the count; collapsed again at 5 and 6: prune at 6.
        ([0, 0, 0, 3, 0, 0], [False, False, False, False, False, True]),
        # Never two collapsed epochs in a row after the warm-up: never pruned.
        ([0, 0, 0, 3, 0, 3], [False] * 6),
        # Collapse during warm-up only.
        ([0, 0, 4, 4], [False] * 4),
    ],
)
def test_warmup_and_patience_boundaries(history: list[int], expected: list[bool]) -> None:
    study = collapse_study(min_active_units=1, patience=2, warmup_epochs=2)
    assert drive(study, history)[1] == expected


def test_no_warmup_patience_one_prunes_at_the_first_epoch() -> None:
    study = collapse_study(min_active_units=1, patience=1, warmup_epochs=0)
    assert drive(study, [0])[1] == [True]


def test_below_means_strictly_less_than_the_threshold() -> None:
    study = collapse_study(min_active_units=2, patience=1, warmup_epochs=0)
    # Exactly at the threshold is healthy; one below is collapsed.
    assert drive(study, [2, 2, 2])[1] == [False, False, False]
    assert drive(study, [1])[1] == [True]


def test_fraction_threshold_scales_with_latent_dim() -> None:
    study = collapse_study(
        min_active_units=None, min_active_fraction=0.25, patience=1, warmup_epochs=0
    )
    # 0.25 * 10 = 2.5: two active units collapse, three do not.
    assert drive(study, [2], latent_dim=10)[1] == [True]
    assert drive(study, [3], latent_dim=10)[1] == [False]
    # 0.25 * 8 = 2.0: two active units are exactly at the threshold, healthy.
    assert drive(study, [2], latent_dim=8)[1] == [False]
    # Without latent_dim the fraction cannot be applied: nothing to prune on.
    assert drive(study, [0], latent_dim=None)[1] == [False]


def test_threshold_is_the_larger_of_units_and_fraction() -> None:
    assert collapse_threshold(10, 3, 0.1) == 3.0
    assert collapse_threshold(64, 3, 0.1) == pytest.approx(6.4)
    assert collapse_threshold(None, 3, 0.5) == 3.0
    assert collapse_threshold(10, None, None) == 0.0


def test_no_history_means_no_collapse_decision() -> None:
    study = collapse_study(min_active_units=1, patience=1, warmup_epochs=0)
    trial = study.ask()
    trial.report(1.0, 1)
    assert not trial.should_prune()


@pytest.mark.parametrize(
    "kwargs",
    [{"patience": 0}, {"warmup_epochs": -1}, {"min_active_units": -1}, {"min_active_fraction": 2}],
)
def test_bad_arguments_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        CollapsePruner(**kwargs)


# -- wrapped performance pruner and reasons -------------------------------------------------------
def median_study() -> optuna.Study:
    pruner = CollapsePruner(
        min_active_units=1,
        patience=1,
        warmup_epochs=0,
        wrapped=MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    study = optuna.create_study(pruner=pruner)
    for _ in range(3):
        steps = {1: 1.0, 2: 1.0, 3: 1.0}
        study.add_trial(create_trial(value=1.0, intermediate_values=steps))
    return study


def test_wrapped_median_still_prunes_a_healthy_but_bad_trial() -> None:
    study = median_study()
    trial, decisions = drive(study, [8, 8], values=[5.0, 5.0])
    # 8 active units is healthy, but 5.0 is worse than the median 1.0: pruned at epoch 1.
    assert decisions[0] is True
    frozen = study._storage.get_trial(trial._trial_id)
    assert prune_reason(study.pruner, study, frozen) == "performance"


def test_collapse_reason_wins_for_a_collapsed_good_trial() -> None:
    study = median_study()
    trial, decisions = drive(study, [0], values=[0.5])
    assert decisions == [True]
    frozen = study._storage.get_trial(trial._trial_id)
    assert prune_reason(study.pruner, study, frozen) == "collapse"


def test_healthy_good_trial_has_no_reason() -> None:
    study = median_study()
    trial, decisions = drive(study, [8], values=[0.5])
    assert decisions == [False]
    assert prune_reason(study.pruner, study, study._storage.get_trial(trial._trial_id)) is None


def test_plain_optuna_pruner_gives_no_reason() -> None:
    study = optuna.create_study(pruner=MedianPruner())
    trial = study.ask()
    trial.report(1.0, 1)
    assert prune_reason(study.pruner, study, study._storage.get_trial(trial._trial_id)) is None


# -- Hyperband --------------------------------------------------------------------------------
def hyperband_run(pruner: optuna.pruners.BasePruner) -> dict[int, str | None]:
    """40 trials with healthy active units; returns {pruned trial number: reason}."""
    pruned: dict[int, str | None] = {}

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("latent_dim", 8)
        for step in range(1, 10):
            trial.set_user_attr("active_units", [6] * step)
            trial.report(x + 1.0 / step, step)
            if trial.should_prune():
                frozen = study._storage.get_trial(trial._trial_id)
                pruned[trial.number] = prune_reason(study.pruner, study, frozen)
                raise optuna.TrialPruned()
        return x

    study = optuna.create_study(
        study_name="hb", sampler=optuna.samplers.RandomSampler(seed=0), pruner=pruner
    )
    study.optimize(objective, n_trials=40)
    return pruned


def test_hyperband_subclass_is_a_hyperband_pruner_and_prunes_like_one() -> None:
    options = {"min_resource": 1, "max_resource": 9, "reduction_factor": 3}
    ours = CollapseHyperbandPruner(min_active_units=1, patience=1, warmup_epochs=0, **options)
    # Samplers filter by bracket only for HyperbandPruner instances.
    assert isinstance(ours, HyperbandPruner) and isinstance(ours, CollapsePruner)
    pruned = hyperband_run(ours)
    # With healthy active units it prunes exactly the trials plain Hyperband prunes.
    assert set(pruned) == set(hyperband_run(HyperbandPruner(**options)))
    assert pruned and set(pruned.values()) == {"performance"}


def test_hyperband_subclass_keeps_bracket_filtering_and_prunes_collapse() -> None:
    pruner = CollapseHyperbandPruner(1, None, 1, 0, min_resource=1, max_resource=9)
    study = optuna.create_study(pruner=pruner)
    study.add_trial(create_trial(value=1.0, intermediate_values={1: 1.0, 9: 1.0}))
    trial, decisions = drive(study, [0], values=[0.1])
    assert decisions == [True]
    frozen = study._storage.get_trial(trial._trial_id)
    assert prune_reason(pruner, study, frozen) == "collapse"
    # What Optuna's samplers call to restrict themselves to a trial's bracket.
    filtered = optuna.pruners._filter_study(study, frozen)
    assert type(filtered).__name__ == "_BracketStudy"


def test_build_pruner_picks_the_hyperband_subclass(spec_dict) -> None:
    spec = StudySpec.from_dict(spec_dict(pruner={"performance": {"kind": "hyperband"}}))
    pruner = build_pruner(spec)
    assert isinstance(pruner, CollapseHyperbandPruner)
    # max_resource defaults to the run's epochs.
    assert pruner._max_resource == spec.base_run().epochs
    off = {"collapse": {"enabled": False}, "performance": {"kind": "hyperband"}}
    plain = build_pruner(StudySpec.from_dict(spec_dict(pruner=off)))
    assert type(plain) is HyperbandPruner


@pytest.mark.parametrize(
    ("performance", "wrapped"),
    [
        ({"kind": "none"}, type(None)),
        ({"kind": "percentile", "options": {"percentile": 25.0}}, optuna.pruners.PercentilePruner),
        ({"kind": "successive_halving"}, optuna.pruners.SuccessiveHalvingPruner),
        ({"kind": "patient", "options": {"patience": 2}}, optuna.pruners.PatientPruner),
        ({"kind": "threshold", "options": {"upper": 1000.0}}, optuna.pruners.ThresholdPruner),
    ],
)
def test_build_pruner_wraps_each_performance_kind(spec_dict, performance, wrapped) -> None:
    pruner = build_pruner(StudySpec.from_dict(spec_dict(pruner={"performance": performance})))
    assert isinstance(pruner, CollapsePruner) and isinstance(pruner._wrapped, wrapped)


# -- the collapse constraint ---------------------------------------------------------------------
def test_constraint_is_positive_exactly_when_collapsed() -> None:
    assert collapse_constraint(0, 1.0) == 1.0  # collapsed: infeasible
    assert collapse_constraint(1, 1.0) == 0.0  # at the threshold: feasible
    assert collapse_constraint(3, 2.5) == -0.5


def constrained_study(record: bool, n_trials: int = 40) -> optuna.Study:
    """The lowest values lie where the model collapses (x < 0.3), as with a large beta."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        active = 0 if x < 0.3 else 5
        if record:
            record_collapse_constraint(trial, active, threshold=1.0)
        return x

    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=10)
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated constraints_func in use
        study.optimize(objective, n_trials=n_trials)
    return study


def test_recorded_constraint_is_read_by_optuna_and_constraints_func() -> None:
    study = constrained_study(record=True, n_trials=15)
    for t in study.trials:
        expected = 1.0 if t.params["x"] < 0.3 else -4.0
        assert t.constraints == {"collapse": expected}
        assert constraints_func(t) == [expected]
    # best_trial skips infeasible (collapsed) trials although their values are lower.
    assert study.best_trial.params["x"] >= 0.3
    assert min(t.value for t in study.trials if t.state == TrialState.COMPLETE) < 0.3


def test_tpe_steers_away_from_collapse_with_the_constraint() -> None:
    def late_median(study: optuna.Study) -> float:
        return statistics.median(t.params["x"] for t in study.trials[10:])

    # Without the constraint TPE chases the low values deep into the collapsed region (x < 0.3);
    # with it those trials are infeasible and TPE works at the feasible edge, x just above 0.3.
    assert late_median(constrained_study(record=False)) < 0.2
    assert late_median(constrained_study(record=True)) > 0.28


def test_constraints_func_defaults_to_feasible() -> None:
    assert constraints_func(create_trial(value=1.0)) == [0.0]
