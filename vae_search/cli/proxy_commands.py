"""``vae-search storage-proxy | create-study``: the pieces of a deployment."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import click

from vae_search.cli.search_commands import _load_spec, _spec_arg, _storage_opt, _study_name_opt

log = logging.getLogger(__name__)


@click.command("storage-proxy")
@_storage_opt
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; anything but loopback exposes the unauthenticated proxy.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=13000, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Requests served at once.",
)
@click.option(
    "--pool-size",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Database connections kept (one more may open under load).",
)
def storage_proxy_cmd(
    storage: str | None, host: str, port: int, threads: int, pool_size: int
) -> None:
    """Serve the study database to workers over gRPC (Optuna's storage proxy).

    Workers then use --storage grpc://HOST:PORT and hold no database connection, so their
    number is not bounded by the server's max_connections. Behind the proxy there are no
    heartbeats: a killed worker's trial stays RUNNING and is not retried automatically. The
    proxy has no authentication: keep the default 127.0.0.1 or a private network. Ctrl-C or
    SIGTERM stops it.
    """
    from vae_search.storage import redact, resolve_url
    from vae_search.storage.proxy import serve_proxy

    if not storage:
        raise click.UsageError("give the study database with --storage URL or VAE_SEARCH_STORAGE")
    click.echo(f"storage proxy for {redact(resolve_url(storage))}")
    click.echo(f"  workers: --storage grpc://{host}:{port}   (Ctrl-C to stop)")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve_proxy(storage, host, port, threads=threads, pool_size=pool_size)
    except KeyboardInterrupt:
        click.echo("storage proxy stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command("create-study")
@_spec_arg
@_storage_opt
@_study_name_opt
@click.option("--no-data", is_flag=True, help="Do not check or download the spec's dataset.")
def create_study_cmd(spec: Path, storage: str | None, study_name: str | None, no_data: bool) -> None:
    """Create the study of SPEC in the storage (or check the existing one) and run no trial.

    For deployments that start the database, then the study, then the workers. It first checks
    the spec's dataset, downloading a torchvision one where allowed, so that workers sharing its
    data.root find it there and do not race to download it. Running it again is harmless.
    """
    from optuna.trial import TrialState

    from vae_search.storage import redact
    from vae_search.workers.preflight import fetch_data
    from vae_search.workers.worker import open_study

    s = _load_spec(spec, study_name)
    if not no_data:
        fetch_data(s)
    study, url = open_study(s, storage)
    finished = len(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    )
    budget = "no limit" if s.n_trials is None else f"budget {s.n_trials}"
    click.echo(f"study {s.study!r} ready in {redact(url)}: {finished} finished trials ({budget})")


COMMANDS = [storage_proxy_cmd, create_study_cmd]
