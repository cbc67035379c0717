"""The ``vae-search`` command line: thin click commands over the library.

Every command's docstring is its help page. A :class:`~vae_search.errors.VaeSearchError`
becomes one red line on stderr and exit code 2; logging is configured here and only here.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from vae_search.errors import VaeSearchError


class _Group(click.Group):
    """Turns user errors into one line and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VaeSearchError as e:
            click.secho(f"error: {e}", fg="red", err=True)
            ctx.exit(2)


@click.group(cls=_Group)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="vae-search")
def main(verbose: int, quiet: bool) -> None:
    """Hyperparameter search for VAEs that fights posterior collapse."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    configure_logging(level, optuna_level=level if verbose >= 1 else max(level, logging.WARNING))


def configure_logging(level: int, optuna_level: int | None = None) -> None:
    """One format for every line on stderr, ours and Optuna's, each saying which worker and
    trial it comes from (``%(who)s``, see :mod:`vae_search.workers.context`)."""
    import optuna.logging

    from vae_search.workers.context import WhoFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(WhoFilter())
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(who)s%(name)s: %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=level, handlers=[handler])
    # Optuna's own handler prints "[I 2026-...]" lines with no worker: pass them to ours
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    logging.getLogger("optuna").setLevel(level if optuna_level is None else optuna_level)


def _register() -> None:
    from vae_search.cli import (
        dashboard_commands,
        finalize_commands,
        proxy_commands,
        search_commands,
        train_commands,
    )

    for module in (train_commands, search_commands, finalize_commands, dashboard_commands, proxy_commands):
        for cmd in module.COMMANDS:
            main.add_command(cmd)


_register()
