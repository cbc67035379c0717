"""`vae-search dashboard`: a real server process over HTTP, and what the command prints."""

from __future__ import annotations

from click.testing import CliRunner

from tests.dashboard.conftest import PNG_MAGIC, get
from vae_search.cli import main
from vae_search.dashboard.study.study_figures import ACTIVE_VS_OBJECTIVE_ID, COLLAPSE_MAP_ID


def test_the_api_lists_the_study_its_trials_and_their_artifacts(dashboard):
    studies = dashboard.json("/api/studies")["study_summaries"]
    # the study is served
    (summary,) = [s for s in studies if s["study_name"] == dashboard.study.name]
    sid = summary["study_id"]
    detail = dashboard.json(f"/api/studies/{sid}")
    assert len(detail["trials"]) == 3
    # the study-level figures are there for the study page
    ids = {g["id"] for g in detail["plotly_graph_objects"]}
    assert {COLLAPSE_MAP_ID, ACTIVE_VS_OBJECTIVE_ID} <= ids
    for t in detail["trials"]:
        pngs = [a for a in t["artifacts"] if a["mimetype"] == "image/png"]
        # every trial shows pictures and a note
        assert pngs, t["number"]
        assert t["note"]["body"].startswith(f"### Trial {t['number']}")
        # the artifact route of optuna-dashboard serves the PNG bytes from our artifact store
        status, body, ctype = get(
            f"{dashboard.base}/artifacts/{sid}/{t['trial_id']}/{pngs[0]['artifact_id']}"
        )
        assert status == 200 and body.startswith(PNG_MAGIC) and ctype == "image/png"


def test_the_command_prints_the_url_and_passes_the_artifact_store(monkeypatch, finished_study):
    calls = []
    monkeypatch.setattr("optuna_dashboard.run_server", lambda *a, **kw: calls.append((a, kw)))
    res = CliRunner().invoke(
        main,
        [
            "dashboard",
            "--storage",
            finished_study.url,
            "--port",
            "8123",
            "--artifact-dir",
            str(finished_study.artifact_dir),
            "--no-refresh",
        ],
    )
    assert res.exit_code == 0, res.output
    # loopback by default: no warning, and the address to open
    assert "no authentication" not in res.output
    assert "http://127.0.0.1:8123/dashboard/" in res.output
    ((args, kw),) = calls
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8123
    # the workers' artifact store, so the pictures show: it reads an artifact they wrote
    some_artifact = next(p.name for p in finished_study.artifact_dir.iterdir())
    with kw["artifact_store"].open_reader(some_artifact) as f:
        assert f.read(1)


def test_a_public_host_prints_the_no_authentication_warning(monkeypatch, finished_study):
    monkeypatch.setattr("optuna_dashboard.run_server", lambda *a, **kw: None)
    res = CliRunner().invoke(
        main, ["dashboard", "--storage", finished_study.url, "--host", "0.0.0.0", "--no-refresh"]
    )
    assert res.exit_code == 0, res.output
    # binding beyond loopback warns that anyone who reaches the port has full access
    assert "warning: the dashboard has no authentication" in res.output


def test_the_storage_password_is_never_printed(monkeypatch):
    seen = []
    monkeypatch.setattr("vae_search.dashboard.server.serve", lambda url, *a, **kw: seen.append(url))
    url = "postgresql://alice:s3cr3t@db.example:5432/vae"
    res = CliRunner().invoke(main, ["dashboard", "--storage", url, "--no-refresh"])
    assert res.exit_code == 0, res.output
    # the server gets the real URL, the terminal only the redacted one
    assert seen and "s3cr3t" in seen[0]
    assert "s3cr3t" not in res.output and "alice:***@db.example" in res.output


def test_a_busy_port_is_one_error_line(monkeypatch, finished_study):
    def busy(*a, **kw):
        raise OSError(98, "Address already in use")

    monkeypatch.setattr("optuna_dashboard.run_server", busy)
    res = CliRunner().invoke(main, ["dashboard", "--storage", finished_study.url, "--no-refresh"])
    # a user error, not a traceback
    assert res.exit_code == 2 and "in use" in res.output and "Traceback" not in res.output
