"""The search commands as a user meets them: status, export, and one-line errors."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from tests.conftest import PG_ENV, PG_SKIP
from tests.workers.test_worker import write_spec
from vae_search import records
from vae_search.cli import main
from vae_search.study.spec import StudySpec
from vae_search.workers.worker import WorkerOptions, run_worker


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    text = res.output.strip()
    assert "\n" not in text and "Traceback" not in text, text
    for n in needles:
        assert n in text, text
    return text


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    url = f"sqlite:///{tmp / 'st.db'}"
    spec = StudySpec.from_file(write_spec(tmp / "s.yaml", "clistudy", n_trials=3))
    run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp / "art"), threads=1))
    return url, tmp


def test_status_counts_and_best(finished):
    url, _ = finished
    res = run("status", "--storage", url, "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["study"] == "clistudy"
    assert d["states"]["COMPLETE"] + d["states"]["PRUNED"] == 3
    assert d["pruned"]["collapse"] + d["pruned"]["performance"] == d["states"]["PRUNED"]
    import optuna

    study = optuna.load_study(study_name="clistudy", storage=url)
    # the best trial reported is the completed, non-collapsed trial of lowest value
    feasible = [t for t in study.trials if t.state.name == "COMPLETE" and records.record(t, "final")["active_units"] >= 1]
    assert d["best"]["number"] == min(feasible, key=lambda t: t.value).number
    text = run("status", "clistudy", "--storage", url).output
    assert "best: trial" in text and "complete" in text


def test_export_top_k_into_a_directory(finished, tmp_path):
    url, _ = finished
    res = run("export", "clistudy", "--storage", url, "--top", "2", "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "out").glob("rank*.yaml"))
    assert [f.name.split("-")[0] for f in files] == ["rank1", "rank2"][: len(files)]


def test_export_with_no_completed_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    import optuna

    optuna.create_study(study_name="empty", storage=url)
    one_line_error(run("export", "empty", "--storage", url, "-o", tmp_path / "x.yaml"),
                   "no completed trial", "vae-search status empty")


def test_export_writes_the_best_trial_that_status_shows(tmp_path):
    import optuna
    from optuna.distributions import FloatDistribution

    from vae_search.config import RunConfig
    from vae_search.study.collapse import COLLAPSE_CONSTRAINT

    url = f"sqlite:///{tmp_path / 'c.db'}"
    study = optuna.create_study(study_name="coll", storage=url)
    cfg = RunConfig().to_dict()
    for value, active in ((30.0, 5), (20.0, 0), (25.0, 3)):  # the lowest value collapsed
        study.add_trial(optuna.trial.create_trial(
            params={"schedule.beta": 1.0}, distributions={"schedule.beta": FloatDistribution(0.1, 10)},
            value=value, user_attrs={"config": cfg, "final": {"active_units": active}, "latent_dim": 20},
            system_attrs={f"constraints:{COLLAPSE_CONSTRAINT}": 1.0 - active},
        ))
    best = json.loads(run("status", "coll", "--storage", url, "--json").output)["best"]["number"]
    import yaml

    def exported(*flags):
        res = run("export", "coll", "--storage", url, "-o", tmp_path / "b.yaml", *flags)
        assert res.exit_code == 0, res.output
        return yaml.safe_load((tmp_path / "b.yaml").read_text())["provenance"]["trial"]

    # status, Optuna's best_trial and export agree on trial 2 (value 25, 3 active units) ...
    assert best == study.best_trial.number == exported() == 2
    # ... and the collapsed trial 1 (value 20) only with --include-collapsed
    assert exported("--include-collapsed") == 1


def test_export_to_a_path_it_cannot_use_is_one_line(finished, tmp_path):
    url, _ = finished
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    one_line_error(run("export", "clistudy", "--storage", url, "-o", tmp_path / "adir"),
                   "is a directory; name a file")
    one_line_error(run("export", "clistudy", "--storage", url, "--top", "2", "-o", tmp_path / "afile"),
                   "is a file; --top 2 writes a directory")
    one_line_error(run("export", "clistudy", "--storage", url, "-o", tmp_path / "afile" / "b.yaml"),
                   "cannot write", "afile")


def test_unknown_study_names_the_ones_there(finished):
    url, _ = finished
    one_line_error(run("status", "nope", "--storage", url), "no study 'nope'", "clistudy")


def test_bad_spec_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: x\nspace:\n  prior.kind: {type: categorical, choices: [standard, gauss]}\n")
    one_line_error(run("worker", bad, "--storage", f"sqlite:///{tmp_path / 'a.db'}"), "bad.yaml", "gauss")
    one_line_error(run("worker", tmp_path / "missing.yaml"), "missing.yaml: no such file")


def _pg(user: str, db: str) -> str:
    """A URL on the test PostgreSQL server with another user/database (skip without one)."""
    from sqlalchemy.engine import make_url

    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    u = make_url(base)
    return f"postgresql+psycopg://{user}@{u.host}:{u.port or 5432}/{db}"


@pytest.mark.parametrize(
    "url, needle",
    [
        ("mysql+nosuchdriver://u:pw@h/db", "sqlite:///PATH"),
        ("postgresql+psycopg://bob:hunter2@127.0.0.1:1/db", "127.0.0.1:1"),
        ("PG:bob:hunter2:test", "role bob does not exist"),
        ("PG:postgres:hunter2:no_such_db_vs", "no_such_db_vs"),
    ],
)
def test_bad_storage_urls_are_one_line_without_the_password(tmp_path, url, needle):
    if url.startswith("PG:"):
        _, user, password, db = url.split(":")
        url = _pg(f"{user}:{password}", db)
    spec = write_spec(tmp_path / "s.yaml", "x", n_trials=1)
    text = one_line_error(run("worker", spec, "--storage", url), needle)
    assert "hunter2" not in text and "pw@" not in text


def test_storage_from_the_environment(finished, tmp_path):
    url, _ = finished
    res = run("status", "--json", env={"VAE_SEARCH_STORAGE": url})
    assert res.exit_code == 0 and json.loads(res.output)["study"] == "clistudy"


