"""The gRPC storage proxy and ``create-study``: real processes over a SQLite file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from vae_search import records
from vae_search.cli import main
from vae_search.cli.proxy_commands import COMMANDS
from vae_search.errors import StorageError
from vae_search.storage import proxy

# the commands as they are once registered in vae_search.cli (registered here meanwhile)
CLI = type(main)(
    "vae-search",
    commands={**main.commands, **{c.name: c for c in COMMANDS}},
    callback=main.callback,
    params=main.params,
)
RUN_CLI = (
    "import sys; from vae_search.cli import main; from vae_search.cli.proxy_commands"
    " import COMMANDS; [main.add_command(c) for c in COMMANDS]; main()"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the proxy exited: {proc.communicate()[0]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the proxy did not listen on {port}: {proc.communicate()[0]}")


@pytest.mark.slow
def test_a_worker_runs_its_trials_through_the_proxy(tmp_path, tiny_spec):
    pytest.importorskip("grpc", reason="the storage proxy needs grpcio: pip install -e '.[grpc]'")
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    spec = tiny_spec("proxied", n_trials=2)
    port = free_port()
    env = dict(os.environ, VAE_SEARCH_STORAGE=db)  # the URL through the environment
    server = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "storage-proxy", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, server)
        worker_env = dict(
            os.environ,
            VAE_SEARCH_STORAGE=f"grpc://127.0.0.1:{port}",
            VAE_SEARCH_ARTIFACTS=str(tmp_path / "artifacts"),
        )
        worker = subprocess.run(
            [sys.executable, "-m", "vae_search", "worker", str(spec), "--threads", "1"],
            env=worker_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert "Traceback" not in worker.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        out = server.communicate(timeout=30)[0]
    # SIGTERM stops the proxy cleanly
    assert server.returncode == 0, out
    assert "storage proxy stopped" in out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.load_study(study_name="proxied", storage=db)
    # the trials went through the proxy into the SQLite file
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert all(records.has_record(t, "final") for t in study.trials)


def test_a_proxy_that_does_not_answer_is_one_line(monkeypatch):
    from vae_search.storage import database as storage

    monkeypatch.setattr(storage, "GRPC_WAIT", 0.5)
    port = free_port()  # nothing listens there
    res = CliRunner().invoke(main, ["status", "--storage", f"grpc://127.0.0.1:{port}"])
    # before: a gRPC traceback from the first call (status), or "postgres at GrpcStorageProxy"
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"no storage proxy answers at 127.0.0.1:{port} within 0.5 s" in res.output
    assert "vae-search storage-proxy" in res.output


def test_only_loopback_binds_quietly():
    assert proxy.exposure_warning("127.0.0.1") is None
    assert proxy.exposure_warning("localhost") is None
    assert proxy.exposure_warning("::1") is None
    for host in ("0.0.0.0", "10.1.2.3", "studies.example"):
        assert "no authentication" in proxy.exposure_warning(host)


def test_missing_grpc_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna.storages._grpc.auto_generated.api_pb2_grpc", None)
    # an earlier import left the module on its package too, where `from ... import` finds it
    import optuna.storages._grpc.auto_generated as generated

    monkeypatch.delattr(generated, "api_pb2_grpc", raising=False)
    with pytest.raises(StorageError, match=r"needs pip install 'vae-search\[grpc\]'"):
        proxy.check_grpc()


def test_the_proxy_needs_a_database_url(tmp_path, monkeypatch):
    monkeypatch.delenv("VAE_SEARCH_STORAGE", raising=False)
    res = CliRunner().invoke(CLI, ["storage-proxy"])
    assert res.exit_code == 2 and "--storage URL or VAE_SEARCH_STORAGE" in res.output
    res = CliRunner().invoke(CLI, ["storage-proxy", "--storage", "grpc://127.0.0.1:13000"])
    # a proxy in front of a proxy is refused in one line
    assert res.exit_code == 2 and "not a proxy" in res.output and "Traceback" not in res.output


def test_create_study_creates_it_once_and_runs_nothing(tmp_path: Path, tiny_spec):
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    spec = tiny_spec("made", n_trials=7)
    for _ in range(2):  # running it again is harmless
        res = CliRunner().invoke(CLI, ["create-study", str(spec), "--storage", db])
        assert res.exit_code == 0, res.output
        assert "study 'made' ready" in res.output and "0 finished trials (budget 7)" in res.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summaries = optuna.get_all_study_summaries(db)
    assert [(s.study_name, s.n_trials) for s in summaries] == [("made", 0)]


def test_create_study_fetches_the_data_once_for_the_workers(tmp_path: Path, tiny_spec):
    import numpy as np
    import yaml

    from vae_search.data.testing import write_mnist

    db = f"sqlite:///{tmp_path / 'studies.db'}"
    spec = tiny_spec("mn", n_trials=3)
    raw = yaml.safe_load(spec.read_text())
    root = tmp_path / "data"
    raw["run"]["data"] = {"name": "mnist", "root": str(root), "download": False}
    spec.write_text(yaml.safe_dump(raw))
    # no files and no download: one line naming the folder, and no study created
    res = CliRunner().invoke(CLI, ["create-study", str(spec), "--storage", db])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"mnist: dataset files not found in {root / 'MNIST' / 'raw'}" in res.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert optuna.get_all_study_summaries(db) == []
    # --no-data creates the study all the same (a database host without the data)
    res = CliRunner().invoke(CLI, ["create-study", str(spec), "--storage", db, "--no-data"])
    assert res.exit_code == 0 and "study 'mn' ready" in res.output
    # with the files in data.root (what a download leaves there) the check passes
    rng = np.random.default_rng(0)
    write_mnist(root, rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
                rng.integers(0, 256, (5, 28, 28), dtype=np.uint8))
    res = CliRunner().invoke(CLI, ["create-study", str(spec), "--storage", db])
    assert res.exit_code == 0, res.output
