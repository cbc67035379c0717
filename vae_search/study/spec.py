"""The study spec: one YAML file that defines a whole search.

Shape (every key but ``study`` has a default; unknown keys are errors)::

    study: quickstart          # study name in the storage
    objective: nll_iwae        # nll_iwae: validation IWAE NLL bound; elbo: validation -ELBO at
                               # beta=1 (minimised); or a list for a multi-objective study:
                               # [distortion, rate], [nll_iwae, rate], [nll_iwae, active_units]
                               # (see vae_search.study.objectives).
    n_trials: 16               # budget: finished trials, counting COMPLETE and PRUNED (not FAIL,
                               # so a crashed or heartbeat-retried trial does not use it up); null
                               # means no limit. See StudySpec.budget_callback.
    timeout: null              # seconds per worker process, or null
    population: 1              # trials a worker holds and trains at once, those of one network
                               # shape as one stacked model (vae_search.train.population)
    final_iwae: null           # the final IWAE bound (run.eval.iwae_samples): null computes it
                               # when the objective reads it (nll_iwae), true always, false never
    sampler: {kind: tpe, seed: 0, options: {}}   # tpe|random|cmaes|gp|qmc|nsgaii|bruteforce;
                               # options are keyword arguments of the Optuna sampler.
    pruner:                    # see vae_search.study.collapse
      collapse: {enabled: true, min_active_units: 1, min_active_fraction: null,
                 patience: 2, warmup_epochs: 2}
      performance: {kind: median, options: {n_startup_trials: 4, n_warmup_steps: 2}}
      constraint: true         # the objective records collapse with Trial.set_constraint
    storage: {heartbeat_interval: 10, grace_period: 30, max_retry: 2}
    run: {...}                 # partial RunConfig, merged over RunConfig() defaults
    space: {...}               # dotted RunConfig paths -> distributions (vae_search.study.space)

Everything is checked when the file is loaded, not in trial 7 (and a spec that cannot do what
it says is refused or warned about, see :mod:`vae_search.study.checks`): the run config, every space key
(a real RunConfig field), every categorical choice and numeric bound (the RunConfig built at that
value must be valid), ``when`` conditions, and sampler / pruner options (the Optuna objects are
built once, and the sampler proposes the space for a few trials of a throwaway in-memory study,
since some options are only read then). All problems come back in one :class:`ConfigError` that
starts with the file path.

Sampler seeds: every worker builds its own sampler, and equal seeds in several processes
propose the same parameters, so :func:`build_sampler` adds the worker index to the seed (except
for ``qmc``, whose low-discrepancy sequence needs the same seed everywhere). ``cmaes`` needs the
``cmaes`` package, ``gp`` and ``qmc`` need ``scipy``: a spec naming them fails at load when they
are missing. ``cmaes``, ``random``, ``qmc`` and ``bruteforce`` ignore constraints.

Pruner: ``performance.kind`` is none | median | percentile | successive_halving | hyperband |
patient | threshold, ``options`` the Optuna pruner's keyword arguments; ``hyperband`` defaults
``max_resource`` to ``run.epochs``. See :mod:`vae_search.study.collapse`.

Multi-objective studies: Optuna refuses ``trial.report`` and ``should_prune`` there, so a
performance pruner cannot run and a spec naming one (``pruner.performance.kind`` other than
``none``) is refused at load; left out, it defaults to ``none``. The collapse rule still acts:
the objective decides from its own per-epoch record (:mod:`vae_search.workers.objective`).

Constraints: Optuna 5 deprecates samplers' ``constraints_func`` in favour of
``Trial.set_constraint``, which stores the value in the trial's system attributes where TPE, GP
and NSGA-II read it (and ``Study.best_trial`` skips infeasible trials). So no
``constraints_func`` is passed; the objective calls
:func:`vae_search.study.collapse.record_collapse_constraint` when ``pruner.constraint`` is true.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.pruners import BasePruner
from optuna.trial import TrialState

from vae_search._typed import from_dict
from vae_search.config import RunConfig, load_yaml, merge, resolve_factory_path
from vae_search.errors import ConfigError
from vae_search.study import checks as _checks
from vae_search.study import space as _space
from vae_search.study.final import FinalizeSpec
from vae_search.study.objectives import directions, objective_names, objective_problems
from vae_search.study.pruning import (
    PerformanceSpec,
    PrunerSpec,
    make_performance_pruner,
    make_pruner,
)
from vae_search.study.references import ReferenceSpec
from vae_search.study.warm_start import WarmStartSpec

SamplerKind = Literal["tpe", "random", "cmaes", "gp", "qmc", "nsgaii", "bruteforce"]

_SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "gp": optuna.samplers.GPSampler,
    "qmc": optuna.samplers.QMCSampler,
    "nsgaii": optuna.samplers.NSGAIISampler,
    "bruteforce": optuna.samplers.BruteForceSampler,
}
_SAME_SEED_EVERYWHERE = ("qmc",)
# Optuna imports these lazily, at the first non-random proposal; check them at load time.
_NEEDS = {"cmaes": ("cmaes",), "gp": ("scipy", "torch"), "qmc": ("scipy",)}

__all__ = ["SamplerSpec", "StorageSpec", "StudySpec", "build_sampler", "sample_run"]


@dataclass
class SamplerSpec:
    """Which Optuna sampler proposes parameters; ``options`` are its keyword arguments."""

    kind: SamplerKind = "tpe"
    seed: int | None = 0
    options: dict[str, Any] = field(default_factory=dict)

    def problems(self) -> list[str]:
        if "seed" in self.options:
            return ["options.seed: set the seed with sampler.seed"]
        return []


@dataclass
class StorageSpec:
    """Heartbeats of the RDB storage: a trial whose worker stops beating for ``grace_period``
    seconds is failed and re-queued (at most ``max_retry`` times; null: no limit). Its retry
    resumes from the last epoch checkpoint, written after an epoch when ``checkpoint_interval``
    seconds have passed since the last one (0: after every epoch); a checkpoint costs three
    storage writes and a file, which matters for epochs of a second or less.

    A running trial reports its -ELBO every epoch (the performance pruners compare reports
    across trials), but writes its per-epoch ``active_units`` and ``history`` user attributes
    only when ``history_interval`` seconds have passed since the last write, and always when
    it ends (0: every epoch); the collapse pruner reads the active units in process."""

    heartbeat_interval: int | None = 10
    grace_period: int | None = 30
    max_retry: int | None = 2
    checkpoint_interval: float = 30.0
    history_interval: float = 30.0

    def problems(self) -> list[str]:
        out = []
        for key in ("checkpoint_interval", "history_interval"):
            if getattr(self, key) < 0:
                out.append(f"{key}: must be >= 0 seconds, got {getattr(self, key)}")
        if self.heartbeat_interval is not None and self.heartbeat_interval < 1:
            out.append(f"heartbeat_interval: must be >= 1 or null, got {self.heartbeat_interval}")
        elif self.heartbeat_interval and self.grace_period is not None:
            if self.grace_period <= self.heartbeat_interval:
                out.append(
                    f"grace_period: must exceed heartbeat_interval ({self.heartbeat_interval}),"
                    f" got {self.grace_period}"
                )
        if self.max_retry is not None and self.max_retry < 0:
            out.append(f"max_retry: must be >= 0 or null, got {self.max_retry}")
        return out


@dataclass
class StudySpec:
    """A search, as read from a study YAML file (see the module docstring)."""

    study: str | None = None
    objective: str | list[str] = "nll_iwae"
    n_trials: int | None = 16
    timeout: float | None = None
    population: int = 1
    final_iwae: bool | None = None
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    storage: StorageSpec = field(default_factory=StorageSpec)
    run: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Any] = field(default_factory=dict)
    finalize: FinalizeSpec | None = None  # a finalists' study (vae_search.study.final)
    references: list[ReferenceSpec] = field(default_factory=list)  # vae_search.study.references
    warm_start: WarmStartSpec | None = None  # vae_search.study.warm_start
    params: list[_space.Param] = field(default_factory=list, init=False)
    source: str = field(default="study spec", init=False)
    warnings: list[str] = field(default_factory=list, init=False)  # see vae_search.study.checks
    _base: RunConfig = field(default_factory=RunConfig, init=False, repr=False)

    def problems(self) -> list[str]:
        out = []
        if not self.study:
            out.append("study: required (the study name)")
        if self.n_trials is not None and self.n_trials < 1:
            out.append(f"n_trials: must be >= 1 or null, got {self.n_trials}")
        if self.timeout is not None and self.timeout <= 0:
            out.append(f"timeout: must be > 0 seconds or null, got {self.timeout}")
        if self.population < 1:
            out.append(f"population: must be at least 1 (trials trained at once), got {self.population}")
        if self.final_iwae is False and "nll_iwae" in objective_names(self.objective):
            out.append("final_iwae: false, but objective nll_iwae is the final IWAE bound; "
                       "use objective: elbo or drop final_iwae")
        return out

    @property
    def objectives(self) -> list[str]:
        """``objective:`` as a list of names."""
        return objective_names(self.objective)

    @property
    def directions(self) -> list[str]:
        """Optuna's ``directions`` for the study."""
        return directions(self.objective)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def distributions(self) -> dict[str, Any]:
        """The search space as Optuna distributions, by parameter name."""
        return {p.key: p.distribution() for p in self.params}

    def our_conditions(self) -> dict[str, Any]:
        """Split, k and epochs of the study's own figures (what ``references`` compare with)."""
        run = self._base
        if self.finalize is not None:
            return {"split": self.finalize.split, "k": self.finalize.k, "epochs": run.epochs}
        return {"split": "val", "k": run.eval.iwae_samples, "epochs": run.epochs}

    def wants_final_iwae(self) -> bool:
        """Whether trials compute the final IWAE bound (see ``final_iwae``)."""
        if self.finalize is not None:  # finalists are judged on the test split's IWAE bound
            return True
        return self.final_iwae if self.final_iwae is not None else "nll_iwae" in self.objectives

    @classmethod
    def from_dict(cls, data: Any, source: str = "study spec") -> StudySpec:
        """Build and check a spec; raise one ConfigError naming every problem."""
        spec, problems = from_dict(cls, data)
        raw = data if isinstance(data, dict) else {}
        # The run config and the space are checked even when other sections are broken, so
        # that one error lists everything.
        run_raw = raw.get("run") or {}
        base = merge(RunConfig().to_dict(), run_raw) if isinstance(run_raw, dict) else None
        run, found = from_dict(RunConfig, base, "run") if base is not None else (None, [])
        problems += found
        if run is not None and run.eval.test and raw.get("finalize") is None:
            problems.append("run.eval.test: a search never reads the test split; remove it and run "
                            "vae-search finalize STUDY, which evaluates the finalists there")
        space_raw = raw.get("space")
        params: list[_space.Param] = []
        if space_raw is None or isinstance(space_raw, dict):
            # Against a broken base every candidate would fail: then check the shape only.
            params, found = _space.parse_space(space_raw, base if run is not None else None)
            problems += found
        objective = raw.get("objective", "nll_iwae")
        if isinstance(objective, str) or (
            isinstance(objective, list) and all(isinstance(n, str) for n in objective)
        ):
            problems += objective_problems(objective)
        # Build the Optuna sampler and pruner once to check their options.
        sampler, _ = from_dict(SamplerSpec, raw.get("sampler"), "sampler")
        if sampler is not None:
            problems += _sampler_problems(sampler, params)
        pruner_raw = raw.get("pruner")
        perf_raw = pruner_raw.get("performance") if isinstance(pruner_raw, dict) else None
        perf, _ = from_dict(PerformanceSpec, perf_raw, "pruner.performance")
        multi = spec is not None and spec.multi_objective
        if multi and perf is not None and isinstance(perf_raw, dict) and perf.kind != "none":
            problems.append(
                f"pruner.performance: {perf.kind} cannot run in a multi-objective study (Optuna refuses"
                " trial.report and should_prune there); set pruner.performance.kind: none (the"
                " collapse pruner still acts)"
            )
        elif multi and spec is not None and not isinstance(perf_raw, dict):
            spec.pruner.performance = PerformanceSpec(kind="none")
        elif perf is not None:
            problems += _pruner_problems(perf, run.epochs if run is not None else 1)
        # a finalists' study reads the bound at finalize's --k, checked there (>= 1)
        if "nll_iwae" in objective_names(raw.get("objective", "nll_iwae") or []) and raw.get("finalize") is None:
            problems += _iwae_problems(run, params)
        # a finalists' study re-trains enqueued configs: it searches nothing
        if raw.get("finalize") is None and (space_raw is None or isinstance(space_raw, dict)):
            problems += _checks.refusals(run, params, space_raw)
        if spec is not None and run is not None:
            spec.source, spec.params, spec._base = source, params, run
            spec.warnings = [f"{source}: {w}" for w in _checks.warnings_for(spec.pruner, run.epochs, spec.n_trials)]
        if spec is None or problems:
            raise ConfigError(f"{source}: " + "; ".join(problems))
        return spec

    @classmethod
    def from_file(cls, path: str | Path) -> StudySpec:
        """Read a study YAML file (``yaml.safe_load``) and check it; a relative
        ``run.model.factory`` file path is taken from the file's folder."""
        raw = load_yaml(path)
        if isinstance(raw, dict) and "run" in raw:
            raw = {**raw, "run": resolve_factory_path(raw["run"], Path(path).parent)}
        return cls.from_dict(raw, source=str(path))

    def base_run(self) -> RunConfig:
        """The fixed part of every trial's run config (``run:`` over RunConfig defaults)."""
        return copy.deepcopy(self._base)

    def budget_callback(self) -> optuna.study.MaxTrialsCallback | None:
        """Stop a worker once ``n_trials`` trials are COMPLETE or PRUNED (None: no budget).

        Each worker checks after its own trial ends, so up to (workers - 1) extra trials may be
        running when the budget is reached.
        """
        if self.n_trials is None:
            return None
        return optuna.study.MaxTrialsCallback(
            self.n_trials, states=(TrialState.COMPLETE, TrialState.PRUNED)
        )


def _iwae_problems(run: RunConfig | None, params: list[_space.Param]) -> list[str]:
    """nll_iwae needs k >= 1 in every trial: in ``run:`` and at every value the space can take."""
    need = "objective nll_iwae needs at least 1 sample"
    out = []
    if run is not None and run.eval.iwae_samples < 1:
        out.append(f"run.eval.iwae_samples: {need} (set it, or use objective: elbo)")
    for p in (p for p in params if p.key == "eval.iwae_samples"):
        for label, value in p.candidates():
            if label == "high":  # high >= low: low is the one that can be too small
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 1:
                out.append(
                    f"space.eval.iwae_samples.{label}: {need}, got {value}"
                    " (raise it to 1 or more, or use objective: elbo)"
                )
    return out


def _sampler_problems(sampler: SamplerSpec, params: list[_space.Param]) -> list[str]:
    missing = [m for m in _NEEDS.get(sampler.kind, ()) if importlib.util.find_spec(m) is None]
    if missing:
        return [
            f"sampler.kind: {sampler.kind} needs {' and '.join(missing)} (pip install {' '.join(missing)})"
        ]
    if sampler.kind == "bruteforce":
        loose = [p.key for p in params if isinstance(p, _space.FloatParam) and p.step is None]
        if loose:
            return [f"sampler.kind: bruteforce needs a step on every float ({', '.join(loose)})"]
    name = _SAMPLERS[sampler.kind].__name__
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make_sampler(sampler)
    except (TypeError, ValueError) as e:
        return [f"sampler.options: {name}: {e}"]
    try:
        _dry_run(sampler, params)
    except Exception as e:  # any failure here would otherwise come in the first trial
        return [
            f"sampler.options: {name} failed a {_DRY_RUN_TRIALS}-trial dry run with options"
            f" {sampler.options} ({type(e).__name__}: {e}); check them against Optuna's {name}"
        ]
    return []


# Some options are only read when the sampler proposes (TPE compares n_startup_trials with the
# trial count; relative sampling starts at the second trial): three proposals reach both paths.
_DRY_RUN_TRIALS = 3


def _dry_run(sampler: SamplerSpec, params: list[_space.Param]) -> None:
    """Let the sampler propose the space a few times in a throwaway in-memory study."""
    # seed: null would make loading the same file pass or fail at random
    seeded = dataclasses.replace(sampler, seed=0 if sampler.seed is None else sampler.seed)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # no "study created" / "trial failed"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = optuna.create_study(sampler=make_sampler(seeded))
            # optimize, not ask/tell: bruteforce calls study.stop() once its grid is done
            study.optimize(lambda trial: _propose(trial, params), n_trials=_DRY_RUN_TRIALS)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _propose(trial: optuna.Trial, params: list[_space.Param]) -> float:
    _space.sample(trial, params)  # what sample_run asks of a trial, without training
    return 0.0


def _pruner_problems(perf: PerformanceSpec, epochs: int) -> list[str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make_performance_pruner(perf, epochs)
    except (TypeError, ValueError) as e:
        return [f"pruner.performance.options: {perf.kind}: {e}"]
    return []


def build_pruner(spec: StudySpec) -> BasePruner:
    """The study's pruner: collapse rule (if enabled) around the performance pruner."""
    return make_pruner(spec.pruner, epochs=spec.base_run().epochs)


def build_sampler(spec: StudySpec, *, worker: int | None = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler for worker number ``worker``: its seed is ``seed + worker``.

    Give every concurrent worker its own number, or they propose the same parameters (seen:
    two hand-started workers with equal seeds ran identical random start-up trials). ``None``
    offsets by the process id instead: distinct, but not reproducible.
    """
    return make_sampler(spec.sampler, worker=worker)


def make_sampler(spec: SamplerSpec, *, worker: int | None = 0) -> optuna.samplers.BaseSampler:
    """:func:`build_sampler` from the ``sampler:`` section alone."""
    seed = spec.seed
    if seed is not None and spec.kind not in _SAME_SEED_EVERYWHERE:
        seed = (seed + (os.getpid() if worker is None else worker)) % 2**32
    with warnings.catch_warnings():  # qmc and bruteforce are "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _SAMPLERS[spec.kind](seed=seed, **spec.options)


def sample_run(trial: optuna.Trial, spec: StudySpec) -> RunConfig:
    """Suggest every space parameter in order (honouring ``when``) and build the run config.

    Works with any trial that has ``suggest_*`` (``optuna.trial.FixedTrial`` included).
    """
    chosen = _space.sample(trial, spec.params)
    merged = merge(spec._base.to_dict(), _space.nest(chosen))
    return RunConfig.from_dict(merged, source=f"{spec.source}: trial {trial.number}")
