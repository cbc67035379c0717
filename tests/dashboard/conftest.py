"""A small finished study, built once by the real worker in-process, with its pictures.

Three enqueued trials on generated shapes: two that keep their latent units (standard and
mixture prior) and one whose huge β collapses it (pruned for collapse). Until the objective
calls ``publish_trial`` and the worker ``refresh_study_figures`` themselves, the fixture wires
them in: it subclasses the objective (pictures of a completed trial where the objective uploads
its own, the pruned/failed ones where the trial ends) and refreshes the figures afterwards.
"""

from __future__ import annotations

import inspect
import json
import math
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

import vae_search.search.objective as objective_module
import vae_search.search.worker as worker_module
from vae_search.config import RunConfig
from vae_search.dashboard.publish import publish_trial
from vae_search.dashboard.study_figures import refresh_study_figures
from vae_search.search.spec import StudySpec
from vae_search.search.worker import WorkerOptions, open_study, run_worker

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


@pytest.fixture(scope="session", autouse=True)
def dashboard_commands() -> None:
    """``vae-search dashboard`` and ``report`` in the CLI (until vae_search.cli registers them)."""
    from vae_search.cli import main
    from vae_search.cli.dashboard_commands import COMMANDS

    for c in COMMANDS:
        main.add_command(c)


def wired(module: Any, name: str) -> bool:
    """True once the search layer calls ``name`` itself."""
    return name in inspect.getsource(module)


class PublishingObjective(objective_module.Objective):
    """The objective with ``publish_trial`` wired in, for as long as it is not wired for real."""

    def _upload_pictures(self, trial: optuna.Trial, result: Any) -> None:
        publish_trial(
            trial,
            self.store,
            config=result.config,
            history=trial.user_attrs.get("history") or {},
            model=result.model,
            data=self.data_for(result.config),
            outcome="complete",
            detail={},
        )

    def _publish_end(self, trial: optuna.Trial, outcome: str) -> None:
        cfg = RunConfig.from_dict(trial.user_attrs["config"])
        publish_trial(
            trial,
            self.store,
            config=cfg,
            history=trial.user_attrs.get("history") or {},
            model=None,
            data=None,
            outcome=outcome,
            detail={},
        )

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            value = super().__call__(trial)
        except optuna.TrialPruned:
            self._publish_end(trial, "pruned")
            raise
        if math.isnan(value):
            self._publish_end(trial, "failed")
        return value


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
    with pytest.MonkeyPatch.context() as mp:
        if not wired(objective_module, "publish_trial"):
            mp.setattr(worker_module, "Objective", PublishingObjective)
        run_worker(spec, opts)
    done = FinishedStudy(url=url, artifact_dir=root / "artifacts", name=STUDY, root=root)
    if not wired(worker_module, "refresh_study_figures"):
        refresh_study_figures(done.load())
    yield done


# the CLI with the dashboard commands registered (a no-op once vae_search.cli registers them)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLI_SCRIPT = (
    "import sys\n"
    "from vae_search.cli import main\n"
    "from vae_search.cli.dashboard_commands import COMMANDS\n"
    "for c in COMMANDS:\n"
    "    main.add_command(c)\n"
    "sys.exit(main())\n"
)


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
        "-c",
        CLI_SCRIPT,
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
