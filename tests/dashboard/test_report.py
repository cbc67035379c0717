"""`vae-search report`: one self-contained HTML page."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from vae_search import records
from vae_search.cli import main
from vae_search.dashboard.report import paste_url, render_report
from vae_search.dashboard.trial.publish import PICTURES

REMOTE = re.compile(
    r"""<(script|img|link|iframe)\b[^>]*\b(src|href)\s*=\s*["']?(https?:)?//""", re.I
)


@pytest.fixture(scope="module")
def report(finished_study, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("report") / "report.html"
    res = CliRunner().invoke(
        main,
        [
            "report",
            finished_study.name,
            "--storage",
            finished_study.url,
            "--artifact-dir",
            str(finished_study.artifact_dir),
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    return out.read_text(encoding="utf-8")


def test_the_report_names_the_study_and_summarises_it(report, finished_study):
    assert f"Study {finished_study.name}" in report
    # states and the pruned split are in the summary
    assert "pruned for collapse</th><td>1<" in report
    assert "Best trial: " in report


def test_the_report_holds_its_pictures_inline(report):
    # two completed trials, each with all its pictures as data URIs
    assert report.count("src='data:image/png;base64,") == 2 * len(PICTURES)
    assert "picture not written" not in report


def test_the_report_is_self_contained(report):
    # no script, image, stylesheet or frame is fetched from the network
    assert not REMOTE.search(report)
    # plotly's JavaScript is inlined once, and both figures are drawn by it
    assert report.count("Plotly.newPlot(") == 3  # collapse map, active units, rate–distortion
    assert len(report) > 1_000_000  # the inlined plotly bundle


def test_the_report_gives_the_commands_that_reproduce_the_best_trials(report, finished_study):
    assert f"vae-search export {finished_study.name} --storage" in report
    assert "vae-search train best.yaml" in report
    # the run config of each best trial as YAML
    assert report.count("run config (YAML)") == 2 and "latent_dim:" in report


def test_missing_artifacts_are_said_in_the_page(finished_study, tmp_path):
    empty = tmp_path / "empty-store"
    empty.mkdir()
    out = tmp_path / "r.html"
    res = CliRunner().invoke(
        main,
        [
            "report",
            finished_study.name,
            "--storage",
            finished_study.url,
            "--artifact-dir",
            str(empty),
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    page = out.read_text(encoding="utf-8")
    # the pictures are listed as missing, not silently dropped
    assert "src='data:image/png" not in page and page.count("picture not written (artifact") >= 2


def test_an_unknown_study_is_one_error_line(finished_study, tmp_path):
    res = CliRunner().invoke(
        main, ["report", "nope", "--storage", finished_study.url, "-o", str(tmp_path / "r.html")]
    )
    assert res.exit_code == 2 and "no study 'nope'" in res.output


def test_the_trial_table_gives_the_beta_reached_and_its_target(report, finished_study):
    study = finished_study.load()
    for t in study.trials:
        reached = records.record(t, "history")["beta"][-1]
        # each row: the β the trial trained with last, then the target it was heading for
        assert f"<td>{reached:.4g} (target {t.params['schedule.beta']:.4g})</td>" in report


def test_a_password_is_left_out_of_the_commands_not_masked(finished_study):
    study = finished_study.load()
    page = render_report(study, None, storage_label="postgresql://bob:***@db.example/vae", top=1)
    command = page.split("Reproduce it:</p><pre>", 1)[1].split("</pre>", 1)[0]
    # the command can be pasted as it is: no "***" standing in for the password
    assert "--storage postgresql://bob@db.example/vae" in command and "***" not in command
    # and the page says where the password comes from instead
    assert "~/.pgpass or PGPASSWORD" in page
    # a URL without a password gets no such note
    assert "PGPASSWORD" not in render_report(study, None, storage_label=finished_study.url, top=1)


def test_paste_url_drops_masked_secrets_only():
    # user info and a query key, as storage.redact masks them
    assert paste_url("postgresql://bob:***@h/db") == ("postgresql://bob@h/db", True)
    assert paste_url("postgresql://h/db?password=***&sslmode=require") == (
        "postgresql://h/db?sslmode=require",
        True,
    )
    assert paste_url("sqlite:///study.db") == ("sqlite:///study.db", False)
