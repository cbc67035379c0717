"""Published figures: checked at load, stored in the study, shown in status, the report and
the charts' data."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml
from click.testing import CliRunner
from optuna.trial import create_trial

from vae_search.cli import main
from vae_search.dashboard.report import render_report
from vae_search.dashboard.study.reference_charts import finalists_figure
from vae_search.dashboard.study.study_figures import study_figures
from vae_search.errors import ConfigError
from vae_search.study.references import store_references
from vae_search.study.spec import StudySpec

MNIST = Path(__file__).parents[2] / "studies" / "mnist.yaml"


def test_a_reference_without_value_is_one_line(spec_dict, tmp_path):
    raw = spec_dict(references=[{"name": "IWAE paper", "metric": "nll", "split": "test", "k": 5000}])
    with pytest.raises(ConfigError, match=r"references\[0\].value: required"):
        StudySpec.from_dict(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    res = CliRunner().invoke(main, ["worker", str(path), "--storage", f"sqlite:///{tmp_path}/x.db"])
    assert res.exit_code == 2 and "\n" not in res.output.strip() and "value: required" in res.output


def test_the_shipped_mnist_spec_names_the_papers_figures():
    spec = StudySpec.from_file(MNIST)
    figures = {(r.value, r.k, r.split) for r in spec.references}
    # REFERENCE.md: IWAE paper VAE 86.76, VampPrior 85.57, both test NLL at k = 5000
    assert figures == {(86.76, 5000, "test"), (85.57, 5000, "test")}


def test_a_reference_appears_in_status_report_and_chart_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    spec = StudySpec.from_file(MNIST)
    study = optuna.create_study(study_name="refs", storage=url)
    for v in [95.0, 92.5, 93.0]:
        study.add_trial(create_trial(value=v, user_attrs={"final": {"nll_iwae": v, "active_units": 5}}))
    store_references(study, spec.references, spec.our_conditions())
    res = CliRunner().invoke(main, ["status", "refs", "--storage", url])
    assert res.exit_code == 0, res.output
    # status names the figure and says the comparison is not like for like
    assert "IWAE paper: VAE, 1 stochastic layer: 86.76" in res.output
    assert "differs: split test vs ours val, k 5000 vs ours 500" in res.output
    d = json.loads(CliRunner().invoke(main, ["status", "refs", "--storage", url, "--json"]).output)
    assert [r["value"] for r in d["references"]] == [86.76, 85.57]
    html = render_report(optuna.load_study(study_name="refs", storage=url), None, storage_label=url)
    assert "<h2>Published figures</h2>" in html and "86.76" in html
    # the history chart has a horizontal line at each figure
    fig = study_figures(study)["objective-history"]
    lines = {t.meta["reference"]: set(t.y) for t in fig.data if t.meta}
    assert lines == {"IWAE paper: VAE, 1 stochastic layer": {86.76}, "VampPrior paper: VAE + VampPrior": {85.57}}
    # ... and so has the finalists' chart, compared with the finalists' own split and k
    table = {"split": "test", "k": 5000, "rows": [
        {"trial": 1, "mean": 90.0, "low": 89.0, "high": 91.0}, {"trial": 2, "mean": 91.0, "low": 90.0, "high": 92.0}]}
    refs = [dict(r, differs=[]) for r in d["references"]]
    ff = finalists_figure(table, refs)
    ref_traces = [t for t in ff.data if t.meta]
    assert [set(t.y) for t in ref_traces] == [{86.76}, {85.57}]
    assert all("≠" not in t.name for t in ref_traces)  # test split, k = 5000: like for like
