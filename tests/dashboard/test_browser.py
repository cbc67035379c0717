"""End to end in a real headless browser: Debian's chromium renders the dashboard's trials page
and the report, and we read the rendered DOM.

Skipped when chromium is missing; CI installs it (``apt-get install -y chromium``).
"""

from __future__ import annotations

import html
import json
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


# after plotly drew the figure: where its legend, colour bar and titles ended up, relative to
# the figure's box, written into the page for --dump-dom to return
MEASURE = """
var gd = document.getElementById('{plot_id}'), box = gd.getBoundingClientRect();
var parts = Array.from(gd.querySelectorAll('.legend, .colorbar, .g-gtitle, [class$="title"]'));
document.body.setAttribute('data-layout', JSON.stringify({
  width: box.width, height: box.height, items: gd.querySelectorAll('.legend .traces').length,
  parts: parts.map(function (e) {
    var r = e.getBoundingClientRect();
    return [e.getAttribute('class'), r.left - box.left, r.top - box.top,
            r.right - box.left, r.bottom - box.top];
  })
}));
"""


def test_the_study_figures_fit_the_dashboards_box(finished_study, tmp_path):
    from vae_search.dashboard.study.study_figures import study_figures

    for graph_id, fig in study_figures(finished_study.load()).items():
        page = tmp_path / f"{graph_id}.html"
        # about the width optuna-dashboard gives a custom figure in a 1400 px window
        fig.write_html(page, include_plotlyjs=True, default_width="620px", post_script=MEASURE)
        dom = rendered_dom(page.as_uri(), tmp_path / f"profile-{graph_id}")
        got = json.loads(html.unescape(re.search(r'data-layout="([^"]*)"', dom).group(1)))
        # the figure is no taller than the dashboard's 450 px box ...
        assert got["height"] <= 450, graph_id
        # ... and its legend, colour bar and titles lie inside it, not clipped below
        for name, left, top, right, bottom in got["parts"]:
            if right > left:  # drawn
                assert -1 <= left and right <= got["width"] + 1, (graph_id, name)
                assert -1 <= top and bottom <= got["height"] + 1, (graph_id, name)
        # every legend entry is drawn
        keys = sum(1 for tr in fig.data if tr.showlegend is not False)
        assert got["items"] == keys > 0, graph_id
