"""Study specs: the shipped files, sampling run configs, and one error naming every problem."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import FixedTrial, TrialState

from vae_search.config import RunConfig
from vae_search.errors import ConfigError
from vae_search.study import StudySpec, build_pruner, build_sampler, sample_run
from vae_search.study.collapse import CollapsePruner
from vae_search.study.spec import SamplerSpec, make_sampler

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))
BENCHMARK_SPECS = sorted((ROOT / "benchmarks" / "specs").glob("*.yaml"))


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _error(tmp_path: Path, data: object) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        StudySpec.from_file(path)
    message = str(info.value)
    # Every spec error is one line that starts with the file it came from.
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    return message


# -- shipped study files --------------------------------------------------------------------
def test_the_readme_spec_example_is_a_valid_spec(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"## Study specs.*?```yaml\n(.*?)```", readme, re.S).group(1)
    path = tmp_path / "readme.yaml"
    path.write_text(block)
    spec = StudySpec.from_file(path)
    # every key it shows is one the spec reads, with the value it shows
    shown = yaml.safe_load(block)
    assert spec.n_trials == shown["n_trials"] and list(spec.space) == list(shown["space"])
    assert {k: getattr(spec.storage, k) for k in shown["storage"]} == shown["storage"]
    sample_run(FixedTrial({"schedule.beta": 1.0, "schedule.rate": 0.5, "model.latent_dim": 4,
                           "prior.kind": "mog", "prior.components": 3}), spec)


def test_the_four_study_files_ship() -> None:
    assert {p.stem for p in STUDIES} >= {"quickstart", "mnist", "fashion-mnist", "cifar10"}


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_study_loads_and_samples_valid_runs(path: Path) -> None:
    spec = StudySpec.from_file(path)
    assert spec.study == path.stem
    # Heartbeats are on in every shipped study (workers may die).
    assert spec.storage.heartbeat_interval and spec.storage.grace_period
    build_pruner(spec)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        trial = study.ask()
        run = sample_run(trial, spec)
        assert isinstance(run, RunConfig)
        # The sampled values land in the run config; fixed values come from run:.
        assert run.model.latent_dim == trial.params["model.latent_dim"]
        assert run.data.name == spec.base_run().data.name
        # prior.components is sampled exactly when prior.kind is a mixture.
        assert ("prior.components" in trial.params) == (run.prior.kind in ("mog", "vamp"))
        study.tell(trial, 0.0)


@pytest.mark.parametrize("path", BENCHMARK_SPECS, ids=lambda p: p.stem)
def test_shipped_benchmark_spec_loads(path: Path) -> None:
    # The benchmarks' specs go through the same load-time checks (sampler dry run included).
    spec = StudySpec.from_file(path)
    sample_run(optuna.create_study().ask(), spec)


def test_quickstart_is_small_enough_for_two_cpu_cores() -> None:
    run = StudySpec.from_file(next(p for p in STUDIES if p.stem == "quickstart")).base_run()
    assert run.data.name == "shapes" and run.device == "cpu"
    # 12000 images of 32x32 and 8 epochs: the whole study took ~50 s with 2 workers on 2 cores
    assert run.data.size <= 20000 and run.data.image_size <= 32 and run.epochs <= 8
    assert run.eval.iwae_samples <= 100


def test_mnist_matches_the_seed_setting() -> None:
    spec = StudySpec.from_file(next(p for p in STUDIES if p.stem == "mnist"))
    run = spec.base_run()
    assert (run.model.hidden, run.model.likelihood, run.data.binarize) == (
        [400],
        "bernoulli",
        "dynamic",
    )
    latent = next(p for p in spec.params if p.key == "model.latent_dim")
    assert (latent.low, latent.high) == (2, 64)


# -- sampling ---------------------------------------------------------------------------------
def test_base_run_merges_run_over_defaults(spec_dict) -> None:
    spec = StudySpec.from_dict(spec_dict())
    run = spec.base_run()
    assert run.epochs == 4 and run.data.size == 200
    # Keys not given keep RunConfig's defaults.
    assert run.optim.lr == RunConfig().optim.lr
    # base_run hands out copies: mutating one does not leak into the next trial.
    run.model.hidden.append(7)
    assert spec.base_run().model.hidden == RunConfig().model.hidden


def test_list_choices_travel_as_labels_and_decode_back(spec_dict) -> None:
    spec = StudySpec.from_dict(spec_dict())
    fixed = {"schedule.beta": 1.0, "model.latent_dim": 3, "prior.kind": "standard"}
    for label, hidden in (("512-256", [512, 256]), ("256", [256]), ("[]", [])):
        run = sample_run(FixedTrial({**fixed, "model.hidden": label}), spec)
        assert run.model.hidden == hidden


def test_conditional_parameter_follows_its_condition(spec_dict) -> None:
    spec = StudySpec.from_dict(spec_dict())
    base = {"schedule.beta": 1.0, "model.latent_dim": 3, "model.hidden": "256"}
    run = sample_run(FixedTrial({**base, "prior.kind": "mog", "prior.components": 7}), spec)
    assert (run.prior.kind, run.prior.components) == ("mog", 7)
    # Inactive: components is not asked for and keeps the run: value.
    trial = FixedTrial({**base, "prior.kind": "standard", "prior.components": 7})
    run = sample_run(trial, spec)
    assert run.prior.components == spec.base_run().prior.components
    assert "prior.components" not in trial.params


def test_scalar_condition_and_nested_conditions(spec_dict) -> None:
    space = {
        "model.arch": {"type": "categorical", "choices": ["mlp", "conv"]},
        "model.activation": {
            "type": "categorical",
            "choices": ["relu", "tanh"],
            "when": {"model.arch": "conv"},  # a scalar is one allowed value
        },
        "model.latent_dim": {
            "type": "int",
            "low": 2,
            "high": 8,
            "when": {"model.activation": "tanh"},
        },
    }
    spec = StudySpec.from_dict(spec_dict(space=space))
    # latent_dim depends on activation, which depends on arch: mlp switches both off.
    trial = FixedTrial({"model.arch": "mlp", "model.activation": "tanh", "model.latent_dim": 3})
    assert sample_run(trial, spec).model.latent_dim == spec.base_run().model.latent_dim
    trial = FixedTrial({"model.arch": "conv", "model.activation": "tanh", "model.latent_dim": 3})
    assert sample_run(trial, spec).model.latent_dim == 3


def test_parameters_are_suggested_in_file_order(spec_dict) -> None:
    spec = StudySpec.from_dict(spec_dict())
    study = optuna.create_study()
    trial = study.ask()
    sample_run(trial, spec)
    keys = [k for k in spec_dict()["space"] if k in trial.params]
    assert list(trial.params) == keys


def test_seeds_differ_per_worker_but_qmc_shares_one(spec_dict) -> None:
    spec = StudySpec.from_dict(spec_dict(sampler={"kind": "random", "seed": 3}))

    def first(worker: int | None, spec: StudySpec) -> dict:
        study = optuna.create_study(sampler=build_sampler(spec, worker=worker))
        trial = study.ask()
        sample_run(trial, spec)
        return trial.params

    # Same worker, same proposals (reproducible); another worker, other proposals.
    assert first(0, spec) == first(0, spec)
    assert first(0, spec) != first(1, spec)
    # No index: offset by the process id, so still unlike worker 0.
    assert first(None, spec) != first(0, spec)
    # QMC walks one low-discrepancy sequence by trial number: every worker needs the same seed.
    qmc = SamplerSpec(kind="qmc", seed=3)
    assert make_sampler(qmc, worker=0)._seed == make_sampler(qmc, worker=5)._seed == 3


@pytest.mark.parametrize(
    ("kind", "needs"),
    [("tpe", ()), ("random", ()), ("nsgaii", ()), ("cmaes", ("cmaes",))]
    + [("gp", ("scipy", "torch")), ("qmc", ("scipy",))],
)
def test_every_sampler_kind_builds_and_samples(
    tmp_path: Path, spec_dict, kind: str, needs: tuple[str, ...]
) -> None:
    data = spec_dict(sampler={"kind": kind, "seed": 0, "options": {}})
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        # Without the optional package the spec fails at load, saying what to install.
        assert f"sampler.kind: {kind} needs {' and '.join(missing)}" in _error(tmp_path, data)
        return
    spec = StudySpec.from_dict(data)
    study = optuna.create_study(sampler=build_sampler(spec))
    for i in range(12):  # past the random start-up trials
        trial = study.ask()
        run = sample_run(trial, spec)
        study.tell(trial, float(run.model.latent_dim + i % 3))


def test_budget_counts_complete_and_pruned_only(spec_dict) -> None:
    callback = StudySpec.from_dict(spec_dict(n_trials=2)).budget_callback()
    assert callback is not None
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    study.add_trial(optuna.trial.create_trial(value=1.0))
    # One COMPLETE + one FAIL: the budget of 2 is not used up, so the worker goes on.
    study.optimize(lambda t: 0.0, n_trials=5, callbacks=[callback])
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 2
    assert StudySpec.from_dict(spec_dict(n_trials=None)).budget_callback() is None


def test_default_pruner_is_collapse_around_median(spec_dict) -> None:
    pruner = build_pruner(StudySpec.from_dict(spec_dict()))
    assert isinstance(pruner, CollapsePruner)
    assert isinstance(pruner._wrapped, optuna.pruners.MedianPruner)


# -- errors -----------------------------------------------------------------------------------
def test_bad_categorical_choice_names_key_index_and_allowed(tmp_path: Path, spec_dict) -> None:
    data = spec_dict()
    data["space"]["prior.kind"]["choices"] = ["standard", "gauss"]
    data["space"].pop("prior.components")
    message = _error(tmp_path, data)
    assert (
        f"{tmp_path / 'x.yaml'}: space.prior.kind.choices[1]: 'gauss' is not one of"
        " 'standard', 'mog', 'vamp'" in message
    )


def test_every_problem_is_reported_at_once(tmp_path: Path, spec_dict) -> None:
    data = spec_dict(
        objective="accuracy",
        colour="blue",
        sampler={"kind": "tpe", "options": {"n_startup": 3}},
        pruner={
            "collapse": {"patience": 0},
            "performance": {"kind": "median", "options": {"warmup": 1}},
        },
        run={"model": {"latent_dim": 0}},
    )
    data["space"]["model.latnt_dim"] = {"type": "int", "low": 1, "high": 3}
    message = _error(tmp_path, data)
    for expected in (
        "objective: 'accuracy' is not one of 'nll_iwae', 'elbo'",
        "colour: unknown key",
        "sampler.options: TPESampler",
        "n_startup",
        "pruner.collapse.patience: must be at least 1, got 0",
        "pruner.performance.options: median",
        "run.model.latent_dim: must be at least 1, got 0",
        "space.model.latnt_dim: not a run config field (model has:",
    ):
        assert expected in message, expected


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"model.latent_dim": {"type": "float", "low": 2, "high": 8}},
            "space.model.latent_dim.low: 2.0 is not an integer",
        ),
        (
            {"schedule.beta": {"type": "float", "low": 0.0, "high": 1.0, "log": True}},
            "space.schedule.beta.low: `low > 0` must hold for `log=True`",
        ),
        (
            {"schedule.beta": {"type": "float", "low": 2.0, "high": 1.0}},
            "space.schedule.beta.low:",
        ),
        ({"schedule.beta": {"type": "float", "high": 1.0}}, "space.schedule.beta.low: required"),
        (
            {"schedule.beta": {"type": "uniform", "low": 0, "high": 1}},
            "space.schedule.beta.type: 'uniform' is not one of 'float', 'int', 'categorical'",
        ),
        ({"model": {"type": "int", "low": 1, "high": 2}}, "space.model: names a section"),
        (
            {"model.hidden": {"type": "categorical", "choices": [[256], [-3]]}},
            "space.model.hidden.choices[1]: widths must be positive, got [-3]",
        ),
        (
            {"model.hidden": {"type": "categorical", "choices": [[256], [256]]}},
            "space.model.hidden.choices: duplicate choice(s) '256'",
        ),
        (
            {"schedule.rate": {"type": "float", "low": -1.0, "high": 1.0}},
            "space.schedule.rate.low: must be > 0 for a linear schedule, got -1.0",
        ),
        (
            {"prior.components": {"type": "int", "low": 2, "high": 9, "when": {"x.y": ["a"]}}},
            "space.prior.components.when.x.y: must name an earlier categorical",
        ),
        (
            {
                "prior.kind": {"type": "categorical", "choices": ["standard", "mog"]},
                "prior.components": {
                    "type": "int",
                    "low": 2,
                    "high": 9,
                    "when": {"prior.kind": ["vamp"]},
                },
            },
            "space.prior.components.when.prior.kind[0]: 'vamp' is not one of the choices",
        ),
        (
            {
                "prior.kind": {"type": "categorical", "choices": ["standard", "mog"]},
                "prior.components": {
                    "type": "int",
                    "low": 2,
                    "high": 20,
                    "when": {"prior.kind": []},
                },
            },
            "space.prior.components.when.prior.kind: list at least one value of prior.kind's"
            " choices ['standard', 'mog'], got []",
        ),
        (
            {"model.latent_dim": {"type": ["int"], "low": 2, "high": 8}},
            "space.model.latent_dim.type: ['int'] is not one of 'float', 'int', 'categorical'",
        ),
        (
            {"model.latent_dim": {"type": {"a": 1}, "low": 2, "high": 8}},
            "space.model.latent_dim.type: {'a': 1} is not one of 'float', 'int', 'categorical'",
        ),
    ],
)
def test_space_errors(tmp_path: Path, spec_dict, entry: dict, expected: str) -> None:
    assert expected in _error(tmp_path, spec_dict(space=entry))


def test_bruteforce_needs_stepped_floats(tmp_path: Path, spec_dict) -> None:
    message = _error(tmp_path, spec_dict(sampler={"kind": "bruteforce"}))
    assert "sampler.kind: bruteforce needs a step on every float (schedule.beta)" in message


def test_missing_study_name_and_patient_without_patience(tmp_path: Path, spec_dict) -> None:
    data = spec_dict(pruner={"performance": {"kind": "patient", "options": {}}})
    del data["study"]
    message = _error(tmp_path, data)
    assert "study: required" in message
    assert "pruner.performance.options: patient: needs options.patience" in message


def test_missing_and_malformed_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        StudySpec.from_file(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: malformed YAML"):
        StudySpec.from_file(bad)
    assert _error(tmp_path, ["not", "a", "mapping"])


def test_iwae_objective_needs_iwae_samples() -> None:
    with pytest.raises(ConfigError, match="run.eval.iwae_samples: objective nll_iwae needs at least 1"):
        StudySpec.from_dict({"study": "x", "run": {"eval": {"iwae_samples": 0}}}, source="s.yaml")
    # the -ELBO objective does not need the IWAE estimate
    StudySpec.from_dict({"study": "x", "objective": "elbo", "run": {"eval": {"iwae_samples": 0}},
                         "space": {"schedule.beta": {"type": "float", "low": 0.5, "high": 2.0}}})


def test_an_empty_list_choice_is_a_valid_condition(spec_dict) -> None:
    # [] is one of model.hidden's choices (the linear VAE), so when: {model.hidden: []} is fine.
    space = spec_dict()["space"]
    space["model.latent_dim"]["when"] = {"model.hidden": []}
    space = {"model.hidden": space.pop("model.hidden"), **space}
    spec = StudySpec.from_dict(spec_dict(space=space))
    latent = next(p for p in spec.params if p.key == "model.latent_dim")
    assert latent.when == {"model.hidden": [[]]}


def test_sampler_options_of_the_wrong_type_fail_at_load(tmp_path: Path, spec_dict) -> None:
    # TPE only reads n_startup_trials when it proposes: the dry run at load time finds it.
    data = spec_dict(sampler={"kind": "tpe", "options": {"n_startup_trials": "x"}})
    message = _error(tmp_path, data)
    assert (
        "sampler.options: TPESampler failed a 3-trial dry run with options"
        " {'n_startup_trials': 'x'} (TypeError: '<' not supported" in message
    )
    # An option read only past the start-up trials is caught too (gamma must be callable).
    data = spec_dict(sampler={"kind": "tpe", "options": {"n_startup_trials": 1, "gamma": 3}})
    assert "(TypeError: 'int' object is not callable)" in _error(tmp_path, data)


def test_sampler_dry_run_is_quiet_and_leaves_logging_as_it_was(
    spec_dict, caplog: pytest.LogCaptureFixture
) -> None:
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)  # where "study created" lines show
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level("DEBUG", logger="optuna"):
            StudySpec.from_dict(spec_dict(sampler={"kind": "tpe", "seed": None}))
        # No "A new study created in memory" or "Trial 0 finished" lines from the dry run.
        assert [r.getMessage() for r in caplog.records if r.name.startswith("optuna")] == []
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.disable_propagation()
        optuna.logging.set_verbosity(before)


def test_bruteforce_dry_run_survives_a_grid_smaller_than_the_dry_run(spec_dict) -> None:
    # BruteForceSampler stops the study once its grid (here one point) is done.
    space = {"prior.kind": {"type": "categorical", "choices": ["mog"]}}
    spec = StudySpec.from_dict(spec_dict(sampler={"kind": "bruteforce"}, space=space))
    assert [p.key for p in spec.params] == ["prior.kind"]


@pytest.mark.parametrize(
    ("bad", "good", "expected"),
    [
        (
            {"type": "int", "low": 0, "high": 5},
            {"type": "int", "low": 1, "high": 5},
            "space.eval.iwae_samples.low: objective nll_iwae needs at least 1 sample, got 0",
        ),
        (
            {"type": "categorical", "choices": [10, 0]},
            {"type": "categorical", "choices": [10, 1]},
            "space.eval.iwae_samples.choices[1]: objective nll_iwae needs at least 1 sample, got 0",
        ),
    ],
)
def test_iwae_objective_needs_iwae_samples_in_the_space_too(
    tmp_path: Path, spec_dict, bad: dict, good: dict, expected: str
) -> None:
    # A trial drawing k = 0 would have no IWAE bound to minimise.
    assert expected in _error(tmp_path, spec_dict(space={"eval.iwae_samples": bad}))
    StudySpec.from_dict(spec_dict(space={"eval.iwae_samples": good}))
    # the -ELBO objective may search k down to 0 (no IWAE estimate)
    StudySpec.from_dict(spec_dict(objective="elbo", space={"eval.iwae_samples": bad}))


def test_a_field_that_fails_its_type_is_reported_once(tmp_path: Path, spec_dict) -> None:
    data = spec_dict(study=5, n_trials=0)
    data["space"]["schedule.beta"]["low"] = "a"
    data["space"]["prior.kind"]["choices"] = "standard"
    data["space"].pop("prior.components")
    message = _error(tmp_path, data)
    # Each bad value once, by its type; no later rule about the same field contradicts it.
    assert "study: 5 is not a string or null" in message and "study: required" not in message
    assert "space.schedule.beta.low: 'a' is not a number or null" in message
    assert "space.schedule.beta.low: required" not in message
    assert "space.prior.kind.choices: 'standard' is not a list;" in message + ";"
    assert "Any" not in message and "must list at least one value" not in message
    # An independent problem of the same section is still reported with them.
    assert "n_trials: must be >= 1 or null, got 0" in message
