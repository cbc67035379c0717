"""``vae-search worker | launch | run | status | export``: the search service's commands."""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from pathlib import Path

import click

from vae_search.errors import StorageError, VaeSearchError

log = logging.getLogger(__name__)

SPEC_CHECKED = "VAE_SEARCH_SPEC_CHECKED"  # set by launch for its workers (vae_search.workers.launch)

_spec_arg = click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
_storage_opt = click.option(
    "--storage", envvar="VAE_SEARCH_STORAGE", show_envvar=True,
    help="Study database URL: sqlite:///FILE (default sqlite:///vae_search.db) or postgresql://USER@HOST/DB.",
)
_study_name_opt = click.option(
    "--study-name", help="Use this study name instead of the spec's `study:` (another study "
    "from the same spec, in the same database).",
)
_artifact_opt = click.option(
    "--artifact-dir", envvar="VAE_SEARCH_ARTIFACTS", show_envvar=True,
    help="Artifact store for checkpoints and pictures (default ./artifacts; shared by all workers).",
)


def _load_spec(path: Path, study_name: str | None = None):
    from vae_search.study.spec import StudySpec

    spec = StudySpec.from_file(path)
    if os.environ.get(SPEC_CHECKED) is None:  # a launcher's workers: the launcher said them
        for w in spec.warnings:
            log.warning("%s", w)
    if study_name is not None:
        if not study_name.strip():
            raise VaeSearchError("--study-name: give a non-empty name")
        spec.study = study_name
    return spec


def _load_study(study_name: str | None, storage: str | None):
    """Load an existing study (the only one in the storage when no name is given)."""
    import optuna

    from vae_search.storage import open_storage, redact, resolve_url
    from vae_search.storage.database import require_database

    url = resolve_url(storage)
    require_database(url)  # reading a study never creates an empty database file
    st = open_storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(st, include_best_trial=False)]
    if study_name is None:
        if len(names) != 1:
            have = ", ".join(names) if names else "none"
            raise VaeSearchError(f"name the study: {redact(url)} holds {len(names)} studies ({have})")
        study_name = names[0]
    if study_name not in names:
        have = ", ".join(names) if names else "none"
        raise StorageError(f"no study {study_name!r} in {redact(url)} (studies there: {have})")
    return optuna.load_study(study_name=study_name, storage=st), url


@click.command("worker")
@_spec_arg
@_storage_opt
@_artifact_opt
@_study_name_opt
@click.option("--n-trials", type=click.IntRange(min=1), help="Run at most this many trials in this worker.")
@click.option("--timeout", type=click.FloatRange(min=0), help="Start no new trial after this many seconds.")
@click.option("--device", help="auto, cpu, cuda or cuda:K for every trial (default: the spec's).")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads per trial.")
@click.option("--index", type=click.IntRange(min=0), help="Worker number: offsets the sampler seed (default: by process id).")
@click.option("--population", type=click.IntRange(min=1),
              help="Hold up to this many trials at once and train those of one network shape as one stacked model "
                   "(default: the spec's population, 1).")
def worker_cmd(spec: Path, storage: str | None, artifact_dir: str | None, study_name: str | None,
               n_trials: int | None, timeout: float | None, device: str | None, threads: int | None,
               index: int | None, population: int | None) -> None:
    """Join the study of SPEC (creating it if missing) and run trials until its budget is met.

    First Ctrl-C or SIGTERM: finish the current trial, then exit. Second: stop now; the trial
    is re-queued with its last checkpoint.
    """
    from vae_search.dashboard.hooks import dashboard_hooks
    from vae_search.workers.worker import GracefulStop, WorkerOptions, run_worker

    s = _load_spec(spec, study_name)
    opts = WorkerOptions(storage=storage, artifact_dir=artifact_dir, n_trials=n_trials, timeout=timeout,
                         device=device, threads=threads, index=index, population=population)
    from vae_search.cli.train_commands import step_progress

    with GracefulStop() as stop, step_progress(sys.stderr.isatty()) as progress:
        try:
            result = run_worker(s, opts, stop, progress=progress,  # type: ignore[arg-type]
                                hooks=dashboard_hooks())
        except KeyboardInterrupt:
            click.secho(stop.stopped_message(), fg="yellow", err=True)
            sys.exit(130)
    log.info("finished: trials %s", result.trials)


@click.command("launch")
@_spec_arg
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--gpus", help="'all' or a list like 0,1 (indices within any CUDA_VISIBLE_DEVICES): one worker per GPU (see --per-gpu); default CPU.")
@click.option("--per-gpu", type=click.IntRange(min=1), default=1, show_default=True, help="Workers sharing one GPU.")
@_storage_opt
@_artifact_opt
@_study_name_opt
@click.option("--timeout", type=click.FloatRange(min=0), help="Each worker starts no trial after this many seconds.")
@click.pass_context
def launch_cmd(ctx: click.Context, spec: Path, workers: int, gpus: str | None, per_gpu: int,
               storage: str | None, artifact_dir: str | None, study_name: str | None,
               timeout: float | None) -> None:
    """Start local worker processes for SPEC, each on a GPU or a share of the CPU cores, and
    print the study's summary when they end."""
    s, codes = _launch(ctx, spec, workers, gpus, per_gpu, storage, artifact_dir, timeout, study_name)
    _closing_summary(s, storage, artifact_dir, codes)


def _launch(ctx: click.Context, spec: Path, workers: int, gpus: str | None, per_gpu: int, storage: str | None,
            artifact_dir: str | None, timeout: float | None, study_name: str | None = None):
    """Check the data, create the study, run the workers; return the spec and their exit codes."""
    from vae_search.storage import resolve_url
    from vae_search.workers import budget
    from vae_search.workers.launch import launch, plan
    from vae_search.workers.preflight import fetch_data
    from vae_search.workers.progress import StudyProgress
    from vae_search.workers.worker import budget_met_message, open_study

    s = _load_spec(spec, study_name)
    url = resolve_url(storage)
    placements = plan(workers, gpus, per_gpu)
    fetch_data(s)  # check or download once, before the study exists (a bad dataset: one line)
    study, _ = open_study(s, url)  # create the study once, before the workers race for it
    left, running = budget.remaining(study, s.n_trials)
    if left is not None and left <= 0 and running == 0:
        log.warning("%s", budget_met_message(s.study, s.n_trials))  # not once per worker
        return s, []
    progress = StudyProgress(study, s.n_trials, epochs=s.base_run().epochs)
    verbose = ctx.find_root().params.get("verbose", 0)
    # on a terminal the progress line replaces the workers' per-epoch log lines
    verbose = verbose if not progress.tty else -1
    try:
        return s, launch(spec, placements, storage=url, artifact_dir=artifact_dir, timeout=timeout,
                         verbose=verbose, monitor=progress.update, study_name=study_name)
    finally:
        progress.update()
        progress.close()


@click.command("run")
@_spec_arg
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--gpus", help="'all' or a list like 0,1 (default: CPU).")
@click.option("--per-gpu", type=click.IntRange(min=1), default=1, show_default=True)
@_storage_opt
@_artifact_opt
@_study_name_opt
@click.pass_context
def run_cmd(ctx: click.Context, spec: Path, workers: int, gpus: str | None, per_gpu: int,
            storage: str | None, artifact_dir: str | None, study_name: str | None) -> None:
    """The whole search in one command: create the study of SPEC, run local workers to its
    budget, print a summary and the command that opens the dashboard."""
    s, codes = _launch(ctx, spec, workers, gpus, per_gpu, storage, artifact_dir, None, study_name)
    _closing_summary(s, storage, artifact_dir, codes)


def _closing_summary(s, storage: str | None, artifact_dir: str | None, codes: list[int]) -> None:
    """What ``run`` and ``launch`` print when the workers end: the summary, the commands that
    open the dashboard and export the best trial; then the workers' failure, if any."""
    from vae_search.results.summary import summarize
    from vae_search.storage import redact
    from vae_search.storage.checkpoints import resolve_artifact_dir

    study, url = _load_study(s.study, storage)
    click.echo(_format_summary(summarize(study).to_dict()))
    art = resolve_artifact_dir(artifact_dir)
    # commands to paste: a URL with a password is left to VAE_SEARCH_STORAGE, never printed
    secret = redact(url) != url
    where = [] if secret else ["--storage", url]
    if secret:
        click.echo("\n(with VAE_SEARCH_STORAGE set to the study's database URL)", nl=False)
    click.echo("\nopen the dashboard:\n  " + shlex.join(
        ["vae-search", "dashboard", *where, "--artifact-dir", str(art)]))
    if s.multi_objective:
        click.echo("export the Pareto front's configurations:\n  " + shlex.join(
            ["vae-search", "export", s.study, *where, "--pareto", "-o", "front"]))
    else:
        click.echo("export the best configuration:\n  " + shlex.join(
            ["vae-search", "export", s.study, *where, "-o", "best.yaml"]))
    if any(codes):
        raise VaeSearchError(f"worker exit codes {codes}; see the log lines above")


def _format_summary(d: dict) -> str:
    st = d["states"]
    lines = [
        f"study {d['study']}",
        f"  complete {st['COMPLETE']}   pruned {st['PRUNED']} (collapse {d['pruned']['collapse']}, "
        f"performance {d['pruned']['performance']})   failed {st['FAIL']}   running {st['RUNNING']}   "
        f"waiting {st['WAITING']}",
    ]
    p = d["pruned"]
    if p["collapse"]:
        lines.append(f"  collapse pruning stopped {p['collapse']} trial(s) early: {p['collapse_epochs_saved']} of "
                     f"their {p['collapse_epochs_planned']} epochs were not trained")
    b = d["best"]
    if d.get("pareto") is not None:
        lines += _format_front(d)
    elif b is None:
        lines.append("  best: no completed trial yet")
    else:
        lines.append(f"  best: trial {b['number']}  value {b['value']:.3f}  active units "
                     f"{b['active_units']}/{b['latent_dim']}{'  (collapsed)' if b['collapsed'] else ''}")
        for k, v in b["params"].items():
            lines.append(f"    {k:28s} {v:.4g}" if isinstance(v, float) else f"    {k:28s} {v}")
    for r in d["running"]:
        lines.append(f"  running: trial {r['number']} epoch {r['epoch']}/{r['epochs']}")
    if d.get("references"):
        from vae_search.study.references import reference_line

        lines.append("  published figures:")
        lines += [f"    {reference_line(r)}" for r in d["references"]]
    return "\n".join(lines)


def _format_front(d: dict) -> list[str]:
    """The Pareto front of a multi-objective study, one trial a line."""
    front = d["pareto"]
    if not front:
        return ["  Pareto front: no completed trial yet"]
    names = " / ".join(d.get("objectives") or [])
    lines = [f"  Pareto front ({len(front)} trials; {names}):"]
    for t in front:
        values = "  ".join(f"{v:.3f}" for v in t["values"])
        lines.append(f"    trial {t['number']:<4d} {values}   active units {t['active_units']}/"
                     f"{t['latent_dim']}{'  (collapsed)' if t['collapsed'] else ''}")
    return lines


@click.command("status")
@click.argument("study", required=False)
@_storage_opt
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_cmd(study: str | None, storage: str | None, as_json: bool) -> None:
    """Trials of STUDY by state (pruned split into collapse and performance), the best trial
    and the running ones. STUDY may be left out when the storage holds one study."""
    from vae_search.results.summary import summarize

    s, _ = _load_study(study, storage)
    d = summarize(s).to_dict()
    click.echo(json.dumps(d, indent=2) if as_json else _format_summary(d))


@click.command("export")
@click.argument("study")
@_storage_opt
@click.option("--top", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--include-collapsed", is_flag=True,
              help="Rank trials that lost their active units too (by default they are skipped, "
                   "as in status, unless every trial collapsed).")
@click.option("--pareto", is_flag=True,
              help="Write every trial of the Pareto front (a multi-objective study) into the directory -o.")
@click.option("--finalists", is_flag=True,
              help="Write the finalists' winner (vae-search finalize) with its interval in the provenance.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="A YAML file (--top 1, --finalists) or a directory (--top > 1, --pareto).")
def export_cmd(study: str, storage: str | None, top: int, include_collapsed: bool, pareto: bool,
               finalists: bool, output: Path) -> None:
    """Write the best trials of STUDY as run configs for `vae-search train`, with their metrics
    and provenance (the Pareto front's trials with --pareto)."""
    from vae_search.results.export import export, export_finalists, export_pareto
    from vae_search.storage import redact

    s, url = _load_study(study, storage)
    if finalists:
        paths = [export_finalists(s, output, storage=redact(url))]
    elif pareto:
        paths = export_pareto(s, output, include_collapsed=include_collapsed, storage=redact(url))
    else:
        paths = export(s, output, top=top, include_collapsed=include_collapsed, storage=redact(url))
    for p in paths:
        click.echo(str(p))


COMMANDS = [worker_cmd, launch_cmd, run_cmd, status_cmd, export_cmd]
