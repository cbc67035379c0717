"""`finalize`: the search's top configurations re-trained with several seeds as trials of
STUDY.final, evaluated on the test split; the interval checked against SciPy, the test split
read by finalize alone, a killed finalist retried and resumed, the report's table."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import yaml
from click.testing import CliRunner
from optuna.trial import TrialState
from scipy import stats

from tests.workers.test_records import assert_narrow
from tests.workers.test_worker import kill_mid_trial, load, rescue, write_spec
from vae_search import records
from vae_search.cli import main
from vae_search.config import RunConfig
from vae_search.dashboard.report import render_report
from vae_search.data import load_data
from vae_search.data.splits import DataSplits
from vae_search.results.finalists import choose_finalists
from vae_search.study.spec import StorageSpec, StudySpec
from vae_search.workers.finalize import prepare_finalists
from vae_search.workers.worker import WorkerOptions, open_study, run_worker

pytestmark = pytest.mark.slow


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    text = res.output.strip()
    assert "\n" not in text and "Traceback" not in text, text
    for n in needles:
        assert n in text, text


@pytest.fixture
def test_reads(monkeypatch):
    """Reads of the test split through the data layer's one door: (dataset, examples read)."""
    calls = []
    original = DataSplits.test_split

    def spy(self, max_examples=None):
        out = original(self, max_examples)
        calls.append((self.name, None if out is None else len(out)))
        return out

    monkeypatch.setattr(DataSplits, "test_split", spy)
    return calls


def test_two_configs_three_seeds(tmp_path, test_reads):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    art = str(tmp_path / "art")
    search = StudySpec.from_file(write_spec(tmp_path / "s.yaml", "fin", n_trials=3, epochs=2))
    # three low-β configurations that keep their units: a randomly drawn one can end with no
    # active unit, count as collapsed and leave fewer than two configurations to finalize
    study, _ = open_study(search, url)
    for beta, latent in ((0.2, 4), (0.25, 5), (0.3, 6)):
        study.enqueue_trial({"schedule.beta": beta, "schedule.rate": 2.0,
                             "model.latent_dim": latent, "prior.kind": "standard"})
    run_worker(search, WorkerOptions(storage=url, artifact_dir=art, threads=1))
    # the search never read the test split
    assert test_reads == []
    study = load(url, "fin")
    chosen = choose_finalists(study, 2)
    assert len(chosen) == 2, [(t.number, t.value) for t in study.trials]
    spec = prepare_finalists(study, chosen, url, seeds=3, k=10)
    run_worker(spec, WorkerOptions(storage=url, artifact_dir=art, threads=1))
    # finalize read it once per run: 2 configurations x 3 seeds
    assert len(test_reads) == 6
    # run again: nothing left to run, the table is stored and printed
    res = run("finalize", "fin", "--storage", url, "--top", 2, "--seeds", 3, "--k", 10,
              "--workers", 0, "--spec-out", tmp_path / "fin.final.yaml")
    assert res.exit_code == 0, res.output
    assert len(test_reads) == 6
    final = load(url, "fin.final")
    trials = final.get_trials(deepcopy=False)
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    table = final.user_attrs["finalists"]  # where plain Optuna reads it
    assert table["interval"].startswith("95% Student t")
    by_trial: dict[int, list[float]] = {}
    # plain Optuna prints the finalists narrow: the enqueued config and the finalist record
    # are system attributes, the one user attribute says whose run it is in a few words
    assert_narrow("fin.final", url)
    assert final.metric_names == ["test IWAE NLL (k=10)"]
    for t in trials:
        info = records.record(t, records.FINALIST)
        assert t.user_attrs == {"finalist_of": f"trial {info['trial']}, seed {info['seed']}"}
        assert records.record(t, records.FINALIST_CONFIG)["seed"] == info["seed"]
        assert records.record(t, 'final')["test"]["nll_iwae"] == t.value  # the test split's bound
        assert records.record(t, 'final')["test"]["iwae_samples"] == 10
        by_trial.setdefault(info["trial"], []).append(t.value)
    assert sorted(by_trial) == sorted(t.number for t in chosen)
    for row in table["rows"]:
        x = np.array(by_trial[row["trial"]])
        # the interval is mean ± t_{0.975, n-1} sd / sqrt(n) on the stored per-seed values
        low, high = stats.t.interval(0.95, df=len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        assert row["n"] == 3
        assert row["mean"] == pytest.approx(x.mean(), rel=1e-12)
        assert row["sd"] == pytest.approx(x.std(ddof=1), rel=1e-12)
        assert (row["low"], row["high"]) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))
    # ranked by the mean
    assert [r["mean"] for r in table["rows"]] == sorted(r["mean"] for r in table["rows"])
    assert f"{table['rows'][0]['mean']:.3f}" in res.output
    # the report has the table
    html = render_report(study, None, storage_label=url)
    assert "<h2>Finalists</h2>" in html
    for row in table["rows"]:
        assert f"<td>{row['mean']:.3f}</td>" in html and f"[{row['low']:.2f}, {row['high']:.2f}]" in html
    # export --finalists writes the winner with its interval
    res = run("export", "fin", "--storage", url, "--finalists", "-o", tmp_path / "win.yaml")
    assert res.exit_code == 0, res.output
    prov = yaml.safe_load((tmp_path / "win.yaml").read_text())["provenance"]
    assert prov["trial"] == table["rows"][0]["trial"]
    assert (prov["finalists"]["low"], prov["finalists"]["high"]) == (table["rows"][0]["low"], table["rows"][0]["high"])


def test_finalize_evaluates_test_max_examples_test_examples(tmp_path, test_reads):
    url = f"sqlite:///{tmp_path / 'n.db'}"
    # shapes of size 1200 has a 120-example test split; the search's config caps it at 37
    search = StudySpec.from_file(write_spec(tmp_path / "s.yaml", "cap", n_trials=1, epochs=1,
                                            eval={"iwae_samples": 10, "iwae_max_examples": 100,
                                                  "test_max_examples": 37}))
    study, _ = open_study(search, url)
    study.enqueue_trial({"schedule.beta": 0.2, "schedule.rate": 2.0, "model.latent_dim": 4, "prior.kind": "standard"})
    run_worker(search, WorkerOptions(storage=url, artifact_dir=None, threads=1))
    assert test_reads == []
    study = load(url, "cap")
    spec = prepare_finalists(study, choose_finalists(study, 1), url, seeds=2, k=7)
    run_worker(spec, WorkerOptions(storage=url, artifact_dir=None, threads=1))
    assert test_reads == [("shapes", 37), ("shapes", 37)]
    for t in load(url, "cap.final").get_trials(deepcopy=False):
        final = records.record(t, "final")
        assert final["test"]["examples"] == 37
        # the test bound at finalize's k, the validation one at the search's
        assert (final["test"]["iwae_samples"], final["iwae_samples"]) == (7, 10)
    # 37 of the split's 120
    assert len(load_data(RunConfig.from_dict(search.run).data).test) == 120


def test_bad_requests_are_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    with _quiet():
        optuna.create_study(study_name="empty", storage=url)
    one_line_error(run("finalize", "empty", "--storage", url, "--workers", 0), "no completed trial")
    one_line_error(run("finalize", "empty", "--storage", url, "--seeds", 0), "--seeds: must be at least 1")


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def test_a_killed_finalist_is_retried_and_resumes(storage_url, study_name, tmp_path):
    art = tmp_path / "artifacts"
    search = StudySpec.from_file(write_spec(tmp_path / "s.yaml", study_name, n_trials=1, epochs=8, size=6000))
    run_worker(search, WorkerOptions(storage=storage_url, artifact_dir=str(art), threads=1))
    study = load(storage_url, study_name)
    path = tmp_path / "final.yaml"
    prepare_finalists(study, choose_finalists(study, 1), storage_url, seeds=1, k=5, spec_out=path,
                      storage=StorageSpec(heartbeat_interval=1, grace_period=3, checkpoint_interval=0))
    try:
        original = kill_mid_trial(path, storage_url, f"{study_name}.final", art)
        # the killed finalist fails after the grace period, its retry keeps the enqueued config
        # and resumes from the checkpoint; the budget of one run is met exactly
        retry, out = rescue(path, storage_url, f"{study_name}.final", art, original)
        assert "resumed from the checkpoint" in out
        assert records.record(retry, records.FINALIST) == records.record(original, records.FINALIST)
        assert retry.user_attrs["finalist_of"] == original.user_attrs["finalist_of"]
        assert records.record(retry, 'final')["test"]["nll_iwae"] == retry.value
    finally:
        from tests.conftest import drop_study

        drop_study(storage_url, f"{study_name}.final")
