"""The first hour of a new user: every mistake is one line, reading commands create nothing,
--study-name works everywhere, worker logs say who is talking, the quickstart shows collapse."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from tests.workers.test_records import assert_narrow
from tests.workers.test_worker import write_spec
from vae_search import records
from vae_search.cli import main
from vae_search.study.spec import StudySpec
from vae_search.workers.launch import Placement, worker_command
from vae_search.workers.worker import WorkerOptions, run_worker

ROOT = Path(__file__).parents[2]


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def _cli(*args, cwd=None, env=None, timeout=300):
    """The real command in its own process, as a user runs it (stdout, stderr, exit code)."""
    return subprocess.run([sys.executable, "-m", "vae_search", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})


def _names(url: str) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(url, include_best_trial=False)]


@pytest.mark.parametrize("args", [
    ["status"], ["status", "--json"], ["export", "quickstart", "-o", "best.yaml"], ["report"],
    ["dashboard", "--port", "65001"],
])
def test_reading_commands_in_an_empty_folder_create_no_file(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VAE_SEARCH_STORAGE", raising=False)
    res = run(*args)
    # one line saying there is no database and how to get one; the folder stays empty
    assert res.exit_code == 2, res.output
    assert res.output.strip().count("\n") == 0 and "no study database at" in res.output
    assert list(tmp_path.iterdir()) == []


def _bad_data(tmp_path: Path, case: str) -> dict:
    if case == "nan":
        a = np.random.default_rng(0).random((50, 8, 8), dtype=np.float32)
        a[3, 2, 2] = np.nan
        np.save(tmp_path / "d.npy", a)
        return {"name": "array", "path": str(tmp_path / "d.npy")}
    if case == "empty":
        np.save(tmp_path / "d.npy", np.zeros((0, 8, 8), dtype=np.float32))
        return {"name": "array", "path": str(tmp_path / "d.npy")}
    if case == "no-arrays":
        np.savez(tmp_path / "d.npz")
        return {"name": "array", "path": str(tmp_path / "d.npz")}
    if case == "missing":
        return {"name": "array", "path": str(tmp_path / "nothing.npy")}
    (tmp_path / "images").mkdir()
    return {"name": "image-folder", "path": str(tmp_path / "images")}


@pytest.mark.parametrize("case", ["nan", "empty", "no-arrays", "missing", "empty-folder"])
@pytest.mark.parametrize("command", ["run", "launch", "create-study"])
def test_bad_data_is_one_line_before_any_study_exists(tmp_path, case, command):
    spec = write_spec(tmp_path / "s.yaml", "baddata", n_trials=2, data=_bad_data(tmp_path, case))
    db = tmp_path / "st.db"
    res = run(command, spec, "--storage", f"sqlite:///{db}")
    # at most 2 lines (here: one), exit 2, no traceback, and no study (no database) left behind
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert 1 <= len(lines) <= 2 and "Traceback" not in res.output, res.output
    assert "error:" in lines[-1]
    assert not db.exists() or "baddata" not in _names(f"sqlite:///{db}")


@pytest.mark.slow
def test_a_storage_error_through_run_is_one_line(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", "x", n_trials=1, epochs=4)  # a spec with nothing to warn about
    res = _cli("run", spec, "--storage", "postgresql://bob:hunter2@127.0.0.1:1/db", cwd=tmp_path)
    out = (res.stdout + res.stderr).strip()
    # the error alone: no "opening study storage" INFO line before it, no password
    assert res.returncode == 2 and out.count("\n") == 0, out
    assert "127.0.0.1:1" in out and "hunter2" not in out


def test_the_dashboard_on_a_busy_port_is_one_line_and_never_says_it_listens(tmp_path):
    url = f"sqlite:///{tmp_path / 'st.db'}"
    assert run("create-study", write_spec(tmp_path / "s.yaml", "x", n_trials=1), "--no-data",
               "--storage", url).exit_code == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = run("dashboard", "--storage", url, "--port", port, "--no-refresh")
    text = res.output.strip()
    assert res.exit_code == 2 and text.count("\n") == 0, text
    assert f"port {port} on 127.0.0.1 is in use" in text and "Listening" not in text and "open" not in text


def test_study_name_overrides_the_spec_on_create_study_and_worker(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", "fromspec", n_trials=1)
    url = f"sqlite:///{tmp_path / 'st.db'}"
    assert run("create-study", spec, "--no-data", "--storage", url, "--study-name", "second").exit_code == 0
    res = run("worker", spec, "--storage", url, "--artifact-dir", tmp_path / "a", "--study-name", "third",
              "--index", "0")
    assert res.exit_code == 0, res.output
    # two studies from one spec, neither under the spec's own name; the worker ran its trial
    assert sorted(_names(url)) == ["second", "third"]
    assert len(optuna.load_study(study_name="third", storage=url).trials) == 1
    # launch hands the name to every worker it starts
    cmd, _ = worker_command(spec, Placement(0, None, 1), storage=url, artifact_dir=None, timeout=None,
                            verbose=0, study_name="fourth")
    assert cmd[cmd.index("--study-name") + 1] == "fourth"


WHO = re.compile(r"^\d\d:\d\d:\d\d (INFO|WARNING) \[w(\d) #(\d+)\] vae_search\.train\.loop: epoch ")


@pytest.mark.slow
def test_launch_with_study_name_logs_who_is_talking_and_ends_with_the_summary(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", "fromspec", n_trials=3)
    url = f"sqlite:///{tmp_path / 'st.db'}"
    res = _cli("launch", spec, "--workers", "2", "--storage", url, "--artifact-dir", tmp_path / "a",
               "--study-name", "named", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert _names(url) == ["named"]
    trials = optuna.load_study(study_name="named", storage=url).trials
    # every per-epoch line of the two interleaved workers says which worker and which trial
    epoch_lines = [ln for ln in res.stderr.splitlines() if "vae_search.train.loop: epoch" in ln]
    assert epoch_lines and all(WHO.match(ln) for ln in epoch_lines), epoch_lines
    seen = {(int(m[2]), int(m[3])) for m in map(WHO.match, epoch_lines)}
    assert {t for _, t in seen} == {t.number for t in trials}
    assert {w for w, _ in seen} <= {0, 1}
    # Optuna's lines come through our format (no "[I 2026-..." lines), none says it twice
    assert not re.search(r"^\[[IWE] \d{4}-", res.stderr, re.M), res.stderr
    assert res.stderr.count("Using an existing study") == 0
    # the spec's warning (epochs 3: warm-up 1 + patience 2 prunes at the last epoch) is said
    # once, by the launcher, not again by each worker or by the closing summary
    assert res.stderr.count("pruner.collapse: warmup_epochs 1 + patience 2 >= run.epochs 3") == 1, res.stderr
    # launch ends as run does
    assert "study named" in res.stdout and "open the dashboard" in res.stdout


@pytest.mark.slow
def test_rerunning_a_finished_study_says_its_budget_is_met(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", "done", n_trials=1)
    url = f"sqlite:///{tmp_path / 'st.db'}"
    first = _cli("run", spec, "--workers", "1", "--storage", url, "--artifact-dir", tmp_path / "a",
                 "--study-name", "once", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = _cli("run", spec, "--workers", "2", "--storage", url, "--artifact-dir", tmp_path / "a",
                 "--study-name", "once", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    # said once, with the way out, and no worker started to say "ran 0 trial(s)"
    assert again.stderr.count("has met its budget of 1 trials") == 1, again.stderr
    assert "raise n_trials" in again.stderr and "--study-name" in again.stderr
    assert "started worker" not in again.stderr and "ran 0 trial" not in again.stderr
    assert "study once" in again.stdout and len(optuna.load_study(study_name="once", storage=url).trials) == 1


def test_a_worker_without_index_is_named_by_its_pid(tmp_path, caplog):
    import logging

    spec = StudySpec.from_file(write_spec(tmp_path / "s.yaml", "anon", n_trials=1))
    with caplog.at_level(logging.INFO):
        run_worker(spec, WorkerOptions(storage=f"sqlite:///{tmp_path / 'st.db'}",
                                       artifact_dir=str(tmp_path / "a"), threads=1))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "worker None" not in text and "as worker without --index" in text
    assert f"pid {os.getpid()}" in text


@pytest.mark.slow
def test_the_quickstart_prunes_for_collapse_and_the_summary_agrees_with_status(tmp_path):
    """The shipped quickstart spec at its real size through ``vae-search run``, as a user runs
    it, with one worker and a budget of three trials (the first worker's first three: the
    sampler's random start-up, the same in every run): one of them collapses."""
    text = (ROOT / "studies" / "quickstart.yaml").read_text()
    assert re.search(r"^n_trials: 16 ", text, re.M)
    (tmp_path / "qs.yaml").write_text(re.sub(r"^n_trials: 16 ", "n_trials: 3 ", text, flags=re.M))
    spec = StudySpec.from_file(tmp_path / "qs.yaml")
    url = f"sqlite:///{tmp_path / 'st.db'}"
    res = _cli("run", tmp_path / "qs.yaml", "--workers", 1, "--storage", url, cwd=tmp_path, timeout=900)
    assert res.returncode == 0, res.stderr
    status = json.loads(run("status", "--json", "--storage", url).output)
    study = optuna.load_study(study_name="quickstart", storage=url)
    pruned = [t for t in study.trials if records.record(t, "prune_reason") == "collapse"]
    assert len(pruned) >= 1
    # status counts what the trials say, and the epochs saved are the epochs never trained
    assert status["pruned"]["collapse"] == len(pruned)
    saved = sum(spec.base_run().epochs - len(t.intermediate_values) for t in pruned)
    assert status["pruned"]["collapse_epochs_saved"] == saved > 0
    # run's closing summary says the same numbers
    p = status["pruned"]
    assert f"pruned {p['collapse'] + p['performance']} (collapse {p['collapse']}, performance " in res.stdout
    assert (f"collapse pruning stopped {len(pruned)} trial(s) early: {saved} of "
            f"their {p['collapse_epochs_planned']} epochs") in res.stdout, res.stdout
    assert f"best: trial {status['best']['number']}  value {status['best']['value']:.3f}" in res.stdout
    # each prune is said cause first, with the numbers of the rule it broke (the quickstart's
    # min_active_fraction 0.5: half the latent units, at least 1), read back from its records
    for t in pruned:
        au, d = records.record(t, "pruned_active_units"), records.latent_dim(t)
        assert (f"[w0 #{t.number}] vae_search.workers.objective: pruned (collapse: only {au}/{d} "
                f"latent units active at epoch {records.record(t, 'pruned_epoch')} "
                f"(needs {max(1, 0.5 * d):g}))") in res.stderr, res.stderr
    # plain Optuna prints the quickstart's best trial (its real space) in a narrow table
    assert_narrow("quickstart", url)


def _setuptools_warnings(project_dir: Path) -> tuple[list[str], object]:
    """The deprecation warnings setuptools gives when it reads ``project_dir``'s pyproject.toml
    (what every ``pip install`` of it prints), and the metadata it read."""
    import warnings

    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution
    from setuptools.warnings import SetuptoolsDeprecationWarning

    cwd = os.getcwd()
    os.chdir(project_dir)  # the readme and packages are found from there
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dist = apply_configuration(Distribution(), "pyproject.toml")
    finally:
        os.chdir(cwd)
    return [str(w.message) for w in caught if issubclass(w.category, SetuptoolsDeprecationWarning)], dist


def test_installing_gives_no_license_deprecation_warning(tmp_path):
    said, dist = _setuptools_warnings(ROOT)
    assert not [w for w in said if "license" in w.lower()], said
    assert dist.metadata.license_expression == "MIT"
    # the form the issue saw (a TOML table) warns: the check above would catch it
    old = (ROOT / "pyproject.toml").read_text().replace('license = "MIT"', 'license = {text = "MIT"}')
    (tmp_path / "pyproject.toml").write_text(old)
    (tmp_path / "README.md").write_text("x")
    said, _ = _setuptools_warnings(tmp_path)
    assert [w for w in said if "license" in w.lower()], said


@pytest.mark.skipif(subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode != 0,
                    reason="not a git checkout")
def test_the_study_lock_file_is_ignored_by_git():
    # the file lock beside a SQLite study (vae_search.db.lock), wherever a study is run
    for path in ("vae_search.db.lock", "runs/x/other.db.lock", "vae_search.db"):
        res = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "--no-index", path])
        assert res.returncode == 0, path
    assert subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "--no-index", "studies/x.yaml"]).returncode == 1


def test_a_performance_prune_names_the_elbo_not_the_units():
    from vae_search.workers.objective import pruned_message

    # the case: every unit active, pruned for its -ELBO; the units are a fact beside it
    text = pruned_message("performance", epoch=3, active_units=30, latent_dim=30, threshold=1)
    assert text.startswith("performance: -ELBO worse than the pruner's cut at epoch 3")
    assert "30/30 active units" not in text and "(active units 30/30)" in text


def test_optunas_own_lines_come_in_our_format(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", "fmt", n_trials=1, epochs=4)
    url = f"sqlite:///{tmp_path / 'st.db'}"
    # -v lets Optuna's INFO lines through: "A new study created", then "Using an existing study"
    lines = []
    for _ in range(2):
        res = _cli("-v", "create-study", spec, "--no-data", "--storage", url, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        lines += res.stderr.splitlines()
    theirs = [ln for ln in lines if " optuna." in ln]
    assert len(theirs) == 2, lines
    assert all(re.match(r"^\d\d:\d\d:\d\d INFO optuna\.[\w.]+: ", ln) for ln in theirs), theirs
    assert not [ln for ln in lines if re.match(r"^\[[IWE] \d{4}-", ln)], lines
