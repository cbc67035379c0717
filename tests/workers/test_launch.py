"""Placing workers on GPUs or CPU shares, and `vae-search run` end to end."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest

from tests.workers.test_worker import write_spec
from vae_search.errors import ConfigError
from vae_search.workers import launch as launch_mod
from vae_search.workers.launch import Placement, plan, worker_command


def test_cpu_workers_share_the_cores():
    assert plan(3, None, 1, cpu_count=8) == [Placement(i, None, 2) for i in range(3)]
    # never fewer than one thread, even with more workers than cores
    assert {p.threads for p in plan(8, None, 1, cpu_count=2)} == {1}


def test_gpu_workers_round_robin_with_several_per_gpu():
    placed = plan(4, "0,2", 2, cpu_count=16)
    assert [p.gpu for p in placed] == [0, 2, 0, 2]
    # and they share the CPU cores too (data generation, pictures): 16 // 4 threads each
    assert {p.threads for p in placed} == {4}
    with pytest.raises(ConfigError, match="raise --per-gpu to 3"):
        plan(5, "0,1", 2)
    with pytest.raises(ConfigError, match="'x,1' is not 'all'"):
        plan(1, "x,1", 1)


def test_gpus_all_without_cuda(monkeypatch):
    monkeypatch.setattr(launch_mod, "visible_gpus", lambda: [])
    with pytest.raises(ConfigError, match="no CUDA device is visible"):
        plan(1, "all", 1)
    monkeypatch.setattr(launch_mod, "visible_gpus", lambda: [0, 1, 2])
    assert [p.gpu for p in plan(3, "all", 1)] == [0, 1, 2]


def test_worker_command_pins_the_device_and_keeps_the_password_off_the_command_line(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    url = "postgresql+psycopg://u:s3cret@h/db"
    cmd, env = worker_command(tmp_path / "s.yaml", Placement(1, 3, 2), storage=url, artifact_dir=None,
                              timeout=None, verbose=0)
    assert env["CUDA_VISIBLE_DEVICES"] == "3" and cmd[cmd.index("--device") + 1] == "cuda"
    assert cmd[cmd.index("--threads") + 1] == "2" and env["OMP_NUM_THREADS"] == "2"
    assert env["VAE_SEARCH_STORAGE"] == url and not any("s3cret" in c for c in cmd)
    cmd, env = worker_command(tmp_path / "s.yaml", Placement(0, None, 4), storage=None, artifact_dir=None,
                              timeout=None, verbose=0)
    assert cmd[cmd.index("--threads") + 1] == "4" and env["OMP_NUM_THREADS"] == "4"


def test_gpu_indices_count_within_an_inherited_cuda_visible_devices(tmp_path, monkeypatch):
    # Slurm (or a user) gave the launcher physical GPUs 4 and 5: torch there sees them as 0, 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    placed = plan(4, "0,1", 2)
    envs = [worker_command(tmp_path / "s.yaml", p, storage=None, artifact_dir=None, timeout=None,
                           verbose=0)[1] for p in placed]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["4", "5", "4", "5"]
    with pytest.raises(ConfigError, match="CUDA_VISIBLE_DEVICES=4,5 leaves 2 GPU"):
        plan(1, "2", 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1f2e,GPU-9a8b")  # UUIDs pass through as they are
    assert worker_command(tmp_path / "s.yaml", Placement(0, 1, None), storage=None, artifact_dir=None,
                          timeout=None, verbose=0)[1]["CUDA_VISIBLE_DEVICES"] == "GPU-9a8b"


@pytest.mark.slow
def test_run_command_reaches_the_budget_and_prints_a_summary(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", "runcmd", n_trials=4)
    url = f"sqlite:///{tmp_path / 'st.db'}"
    res = subprocess.run([sys.executable, "-m", "vae_search", "run", str(spec), "--workers", "2",
                          "--storage", url, "--artifact-dir", str(tmp_path / "art")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "study runcmd" in res.stdout and "best: trial" in res.stdout
    assert "vae-search dashboard --storage" in res.stdout
    trials = optuna.load_study(study_name="runcmd", storage=url).trials
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == 4 == len(trials)


@pytest.mark.slow
@pytest.mark.postgres
def test_run_prints_commands_to_paste_without_the_password(tmp_path, pg_url):
    from sqlalchemy.engine import make_url

    from tests.conftest import drop_study

    parsed = make_url(pg_url)
    if parsed.password is None:  # a trust-auth server takes any password: give it one to hide
        parsed = parsed.set(password="s3cret-run")
    url = parsed.render_as_string(hide_password=False)
    spec = write_spec(tmp_path / "s.yaml", "runpw", n_trials=2)
    try:
        res = subprocess.run([sys.executable, "-m", "vae_search", "run", str(spec), "--workers", "1",
                              "--artifact-dir", str(tmp_path / "art")], capture_output=True, text=True,
                             timeout=300, env={**os.environ, "VAE_SEARCH_STORAGE": url})
    finally:
        drop_study(url, "runpw")
    assert res.returncode == 0, res.stderr
    # neither the password nor a pasted-in "***" placeholder: the commands read the environment
    assert str(parsed.password) not in res.stdout + res.stderr and "***" not in res.stdout
    assert "with VAE_SEARCH_STORAGE set" in res.stdout
    assert "vae-search export runpw -o best.yaml" in res.stdout
