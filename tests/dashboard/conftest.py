"""A small finished study, built once by the real worker in-process, with its pictures.

Three enqueued trials on generated shapes: two that keep their latent units (standard and
mixture prior) and one whose huge β collapses it (pruned for collapse). The objective publishes
the pictures and notes and the worker refreshes the study figures, exactly as in a real study.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from vae_search.dashboard.hooks import dashboard_hooks
from vae_search.study.spec import StudySpec
from vae_search.workers.worker import WorkerOptions, open_study, run_worker

STUDY = "dash-test"
GOOD = {"schedule.beta": 0.3, "schedule.rate": 1.0, "model.latent_dim": 4, "prior.kind": "standard"}
MIXTURE = {
    "schedule.beta": 0.5,
    "schedule.rate": 0.5,
    "model.latent_dim": 3,
    "prior.kind": "mog",
    "prior.components": 3,
}
COLLAPSING = {
    "schedule.beta": 40.0,
    "schedule.rate": 40.0,
    "model.latent_dim": 6,
    "prior.kind": "standard",
}


def spec_dict() -> dict[str, Any]:
    return {
        "study": STUDY,
        "objective": "nll_iwae",
        "n_trials": 3,
        "sampler": {"kind": "random", "seed": 0},
        "pruner": {
            "collapse": {"enabled": True, "min_active_units": 1, "patience": 1, "warmup_epochs": 1},
            "performance": {"kind": "none"},
            "constraint": True,
        },
        "storage": {"heartbeat_interval": 5, "grace_period": 20, "max_retry": 1},
        "run": {
            "data": {"name": "shapes", "size": 1200, "image_size": 16},
            "model": {"hidden": [64]},
            "eval": {"iwae_samples": 10, "iwae_max_examples": 100},
            "epochs": 3,
            "batch_size": 64,
            "device": "cpu",
            "threads": 1,
        },
        "space": {
            "schedule.beta": {"type": "float", "low": 0.1, "high": 50.0, "log": True},
            "schedule.rate": {"type": "float", "low": 0.2, "high": 50.0, "log": True},
            "model.latent_dim": {"type": "int", "low": 2, "high": 8},
            "prior.kind": {"type": "categorical", "choices": ["standard", "mog"]},
            "prior.components": {
                "type": "int",
                "low": 2,
                "high": 4,
                "when": {"prior.kind": ["mog"]},
            },
        },
    }


@dataclass
class FinishedStudy:
    url: str
    artifact_dir: Path
    name: str
    root: Path

    def load(self) -> optuna.Study:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.load_study(study_name=self.name, storage=self.url)


@pytest.fixture(scope="session")
def finished_study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FinishedStudy]:
    """The study above, finished, pictures and figures published (built once per session)."""
    root = tmp_path_factory.mktemp("dash-study")
    (root / "spec.yaml").write_text(yaml.safe_dump(spec_dict(), sort_keys=False))
    spec = StudySpec.from_file(root / "spec.yaml")
    url = f"sqlite:///{root / 'study.db'}"
    study, _ = open_study(spec, url)
    for params in (GOOD, COLLAPSING, MIXTURE):
        study.enqueue_trial(params)
    opts = WorkerOptions(storage=url, artifact_dir=str(root / "artifacts"), threads=1)
    run_worker(spec, opts, hooks=dashboard_hooks())  # what `vae-search worker` registers
    yield FinishedStudy(url=url, artifact_dir=root / "artifacts", name=STUDY, root=root)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes, str]:
    """Status, body and content type of a GET."""
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - local test server
        return r.status, r.read(), r.headers.get("Content-Type", "")


@dataclass
class Dashboard:
    base: str
    process: subprocess.Popen
    study: FinishedStudy

    def json(self, path: str) -> Any:
        return json.loads(get(self.base + path)[1])


@pytest.fixture(scope="session")
def dashboard(finished_study: FinishedStudy) -> Iterator[Dashboard]:
    """``vae-search dashboard`` as a real process on a free port, over the finished study."""
    port = free_port()
    log = open(finished_study.root / "dashboard.log", "w+")  # noqa: SIM115 - closed below
    cmd = [
        sys.executable,
        "-m",
        "vae_search",
        "dashboard",
        "--storage",
        finished_study.url,
        "--artifact-dir",
        str(finished_study.artifact_dir),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                get(base + "/api/studies", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"the dashboard did not start: {log.read()}")
                time.sleep(0.2)
        yield Dashboard(base, proc, finished_study)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
