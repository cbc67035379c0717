"""``vae-search dashboard | report``: look at a study in optuna-dashboard or as one HTML page."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import click

from vae_search.cli.search_commands import _artifact_opt, _load_study, _storage_opt
from vae_search.errors import VaeSearchError

log = logging.getLogger(__name__)


@click.command("dashboard")
@_storage_opt
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; anything but loopback exposes the unauthenticated dashboard.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@_artifact_opt
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Recompute every study's collapse map before serving.",
)
def dashboard_cmd(
    storage: str | None, host: str, port: int, artifact_dir: str | None, refresh: bool
) -> None:
    """Serve optuna-dashboard for the storage's studies, with the pictures the workers wrote.

    It has no authentication: keep the default 127.0.0.1 and reach it from another machine
    through an SSH tunnel. Ctrl-C stops it.
    """
    from vae_search.dashboard.server import dashboard_url, exposure_warning, port_problem, serve
    from vae_search.storage import redact, resolve_url
    from vae_search.storage.checkpoints import resolve_artifact_dir
    from vae_search.storage.database import require_database

    url = resolve_url(storage)
    require_database(url)  # never create an empty database to look at
    problem = port_problem(host, port)  # before "open http://..." is printed
    if problem:
        raise VaeSearchError(problem)
    art = resolve_artifact_dir(artifact_dir)
    warning = exposure_warning(host, port)
    if warning:
        click.secho(warning, fg="yellow", err=True)
    if refresh:
        _refresh_all(url)
    click.echo(f"optuna-dashboard for {redact(url)} (pictures from {art})")
    click.echo(f"  open {dashboard_url(host, port)}   (Ctrl-C to stop)")
    try:
        serve(url, art, host=host, port=port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise VaeSearchError(
                f"port {port} on {host} is in use; pick another with --port"
            ) from e
        raise VaeSearchError(f"cannot serve on {host}:{port}: {e.strerror or e}") from e
    except KeyboardInterrupt:
        click.echo("dashboard stopped")


def _refresh_all(url: str) -> None:
    import optuna

    from vae_search.dashboard.study.study_figures import refresh_study_figures
    from vae_search.storage import open_storage

    storage = open_storage(url)
    for s in optuna.get_all_study_summaries(storage, include_best_trial=False):
        refresh_study_figures(optuna.load_study(study_name=s.study_name, storage=storage))


@click.command("report")
@click.argument("study", required=False)
@_storage_opt
@_artifact_opt
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Best trials shown with their pictures.",
)
def report_cmd(
    study: str | None, storage: str | None, artifact_dir: str | None, output: Path, top: int
) -> None:
    """Write one self-contained HTML page about STUDY: summary, collapse map, the best trials
    with their pictures and the commands that reproduce them. It opens with no network.
    STUDY may be left out when the storage holds one study."""
    from optuna.artifacts import FileSystemArtifactStore

    from vae_search.dashboard.report import write_report
    from vae_search.storage import redact
    from vae_search.storage.checkpoints import resolve_artifact_dir

    s, url = _load_study(study, storage)
    art = resolve_artifact_dir(artifact_dir)
    store = FileSystemArtifactStore(str(art)) if art.is_dir() else None
    if store is None:
        click.secho(
            f"warning: artifact directory {art} does not exist; the report has no "
            "pictures (pass the workers' --artifact-dir)",
            fg="yellow",
            err=True,
        )
    click.echo(str(write_report(s, store, output, storage_label=redact(url), top=top)))


COMMANDS = [dashboard_cmd, report_cmd]
