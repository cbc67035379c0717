"""Serve optuna-dashboard over a study storage, with the artifact store the workers write to.

optuna-dashboard has no authentication: anyone who can reach the port can read, edit and
delete studies. :func:`serve` binds 127.0.0.1 unless told otherwise; the CLI warns about any
other host. URLs are shown through :func:`~vae_search.storage.urls.redact`, never with a
password.
"""

from __future__ import annotations

import errno
import logging
import socket
from pathlib import Path

from vae_search.storage import open_storage, redact
from vae_search.storage.urls import is_loopback

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def exposure_warning(host: str, port: int) -> str | None:
    """The warning to show when the dashboard listens beyond this machine (None: loopback)."""
    if is_loopback(host):
        return None
    return (
        f"warning: the dashboard has no authentication; anyone who can reach {host}:{port} "
        "can read, change and delete the studies in this storage. Bind 127.0.0.1 and use an "
        "SSH tunnel (ssh -L 8080:127.0.0.1:8080 HOST) to reach it from elsewhere."
    )


def port_problem(host: str, port: int) -> str | None:
    """Why the dashboard cannot listen on ``host:port`` (None: it can), found by binding it
    for a moment as the server will (``SO_REUSEADDR``), before anything says it is listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is in use; pick another with --port"
        return f"cannot serve on {host}:{port}: {e.strerror or e}"
    return None


def dashboard_url(host: str, port: int) -> str:
    """The address to open in a browser."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/dashboard/"


def serve(
    storage_url: str, artifact_dir: Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> None:
    """Run optuna-dashboard until interrupted.

    Args:
        storage_url: the study storage (resolved URL).
        artifact_dir: the workers' artifact store; when it does not exist the dashboard still
            runs, without pictures, and a warning says so.
        host: the address to bind.
        port: the port to listen on.
    """
    from optuna.artifacts import FileSystemArtifactStore
    from optuna_dashboard import run_server

    store = None
    if artifact_dir.is_dir():
        store = FileSystemArtifactStore(str(artifact_dir))
    else:
        log.warning(
            "artifact directory %s does not exist: the dashboard shows no pictures "
            "(pass the workers' --artifact-dir)",
            artifact_dir,
        )
    log.debug("optuna-dashboard for %s, artifacts in %s", redact(storage_url), artifact_dir)
    run_server(open_storage(storage_url), host=host, port=port, artifact_store=store)
