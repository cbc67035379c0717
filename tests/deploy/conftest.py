"""Fixtures of the deployment tests: PostgreSQL, tiny specs, real worker processes.

The PostgreSQL tests skip unless ``VAE_SEARCH_TEST_POSTGRES_URL`` is set. The restart test
also needs to restart that server: ``VAE_SEARCH_TEST_PG_RESTART`` (a shell command), else
``pg_ctlcluster`` on the local cluster that listens on the URL's port.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.conftest import PG_ENV, drop_study  # the pg_url fixture lives there too

RESTART_ENV = "VAE_SEARCH_TEST_PG_RESTART"

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def pg_study(pg_url: str) -> Iterator[str]:
    """A fresh study name on PostgreSQL, deleted afterwards."""
    name = f"vs-deploy-{uuid.uuid4().hex[:12]}"
    yield name
    drop_study(pg_url, name)


def write_tiny_spec(
    path: Path,
    name: str,
    *,
    n_trials: int,
    heartbeat: int = 1,
    grace: int = 3,
    max_retry: int = 5,
    epochs: int = 1,
    size: int = 300,
) -> Path:
    """A spec whose trials take well under a second: 1 epoch of 8x8 shapes, hidden [8]."""
    spec = {
        "study": name,
        "objective": "nll_iwae",
        "n_trials": n_trials,
        "sampler": {"kind": "random", "seed": 0},
        "pruner": {
            "collapse": {"enabled": False},
            "performance": {"kind": "none"},
            "constraint": False,
        },
        "storage": {"heartbeat_interval": heartbeat, "grace_period": grace, "max_retry": max_retry},
        "run": {
            "data": {"name": "shapes", "size": size, "image_size": 8},
            "model": {"hidden": [8]},
            "eval": {"iwae_samples": 2, "iwae_max_examples": 50},
            "epochs": epochs,
            "batch_size": 64,
            "device": "cpu",
            "threads": 1,
            "images": False,
        },
        "space": {
            "schedule.beta": {"type": "float", "low": 0.2, "high": 2.0, "log": True},
            "model.latent_dim": {"type": "int", "low": 2, "high": 6},
        },
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``tiny_spec(name, n_trials=..., **options)`` writes a tiny spec in tmp_path."""
    return lambda name, **kw: write_tiny_spec(tmp_path / f"{name}.yaml", name, **kw)


@dataclass
class Workers:
    """Worker processes started with their output in log files (no pipe can fill up)."""

    spec: Path
    url: str
    directory: Path
    procs: dict[int, subprocess.Popen] = field(default_factory=dict)

    def start(self, index: int, *extra: str) -> subprocess.Popen:
        env = dict(
            os.environ,
            VAE_SEARCH_STORAGE=self.url,
            OMP_NUM_THREADS="1",
            VAE_SEARCH_ARTIFACTS=str(self.directory / "artifacts"),
        )
        log = open(self.log_path(index), "w")  # noqa: SIM115 - the child writes it
        cmd = [
            sys.executable,
            "-m",
            "vae_search",
            "worker",
            str(self.spec),
            "--index",
            str(index),
            "--threads",
            "1",
            *extra,
        ]
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[index] = proc
        return proc

    def log_path(self, index: int) -> Path:
        return self.directory / f"worker-{index}.log"

    def log(self, index: int) -> str:
        return self.log_path(index).read_text()

    def wait(self, timeout: float) -> dict[int, int]:
        """Every worker's exit code; kills them all and fails when ``timeout`` runs out."""
        import time

        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill_all()
                tails = "\n".join(f"--- worker {i}\n{self.log(i)[-1500:]}" for i in self.procs)
                pytest.fail(f"workers still running after {timeout:.0f} s:\n{tails}")
        return {i: p.returncode for i, p in self.procs.items()}

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[Path, str], Workers]]:
    """Factory of :class:`Workers`; every process it started is killed at the end."""
    made: list[Workers] = []

    def make(spec: Path, url: str) -> Workers:
        made.append(Workers(spec, url, tmp_path))
        return made[-1]

    yield make
    for w in made:
        w.kill_all()


@pytest.fixture
def pg_restart(pg_url: str) -> Callable[[str], None]:
    """``pg_restart(action)`` runs start | stop | restart on the server of the test URL, or skip."""
    custom = os.environ.get(RESTART_ENV)
    if custom:
        return lambda action: subprocess.run(
            f"{custom} {shlex.quote(action)}", shell=True, check=True, timeout=120
        )  # noqa: S602
    ctl, ls = shutil.which("pg_ctlcluster"), shutil.which("pg_lsclusters")
    url = make_url(pg_url)
    if not ctl or not ls or (url.host or "localhost") not in ("localhost", "127.0.0.1", "::1"):
        pytest.skip(f"cannot restart the server of {PG_ENV}: set {RESTART_ENV}")
    port = str(url.port or 5432)
    rows = subprocess.run([ls, "--no-header"], capture_output=True, text=True, check=True)
    cluster = next(
        (r.split()[:2] for r in rows.stdout.splitlines() if r.split()[2:3] == [port]), None
    )
    if cluster is None:
        pytest.skip(f"no local cluster listens on port {port}: set {RESTART_ENV}")
    return lambda action: subprocess.run(
        [ctl, "--skip-systemctl-redirect", *cluster, action],
        check=True,
        timeout=120,
        capture_output=True,
    )
