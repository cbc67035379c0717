"""End to end in a real headless browser: Debian's chromium renders the dashboard's trials page
and the report, and we read the rendered DOM.

Skipped when chromium is missing; CI installs it (``apt-get install -y chromium``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from vae_search.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
    ),
]
BUDGET_MS = 10_000  # virtual time the page gets to fetch its data and render
TIMEOUT_S = 90  # wall-clock bound on one browser run


def rendered_dom(url: str, profile: Path) -> str:
    """The DOM of ``url`` after chromium ran its scripts for ``BUDGET_MS`` of virtual time."""
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={BUDGET_MS}",
        "--window-size=1400,1000",
        "--dump-dom",
        url,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_the_trials_page_shows_the_study_a_trial_its_note_and_pictures(dashboard, tmp_path):
    sid = next(
        s["study_id"]
        for s in dashboard.json("/api/studies")["study_summaries"]
        if s["study_name"] == dashboard.study.name
    )
    dom = rendered_dom(f"{dashboard.base}/dashboard/studies/{sid}/trials", tmp_path / "profile")
    # the study's name and its first trial are rendered (not just the empty app shell)
    assert dashboard.study.name in dom
    assert "Trial 0" in dom
    # the trial's note, rendered from its Markdown
    assert "Trial 0: complete" in dom and "active units" in dom
    # <img> tags of our PNG artifacts, served by the dashboard's artifact route
    imgs = re.findall(r"<img[^>]*>", dom)
    ours = [i for i in imgs if re.search(rf'src="/artifacts/{sid}/\d+/[0-9a-f-]+"', i)]
    assert any('alt="curves.png"' in i for i in ours), imgs
    assert any('alt="traversals.png"' in i for i in ours), imgs


def test_the_report_renders_offline(finished_study, tmp_path):
    out = tmp_path / "report.html"
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
    dom = rendered_dom(out.as_uri(), tmp_path / "profile")
    # plotly (inlined) drew both figures: its SVG containers are in the DOM
    assert dom.count('class="main-svg"') >= 2
    assert "Collapse map" in dom
