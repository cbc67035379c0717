"""The final IWAE bound is computed when the objective reads it or the spec asks for it."""

from __future__ import annotations

import optuna
import pytest

from tests.workers.test_worker import write_spec
from vae_search import records
from vae_search.errors import ConfigError
from vae_search.study.spec import StudySpec
from vae_search.workers.worker import WorkerOptions, run_worker


def finals(tmp_path, name: str, **top) -> list[dict]:
    import yaml

    path = write_spec(tmp_path / f"{name}.yaml", name, n_trials=1, epochs=1)
    spec = {**yaml.safe_load(path.read_text()), **top}
    spec["pruner"]["collapse"]["enabled"] = False
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    url = f"sqlite:///{tmp_path / (name + '.db')}"
    run_worker(StudySpec.from_file(path), WorkerOptions(storage=url, artifact_dir=str(tmp_path / "art")))
    study = optuna.load_study(study_name=name, storage=url)
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def test_objective_elbo_skips_the_final_iwae_unless_asked(tmp_path):
    [skipped] = finals(tmp_path, "elbo", objective="elbo")
    # the objective never reads it: not computed, and the stored config says so (a re-run agrees)
    assert records.record(skipped, 'final')["nll_iwae"] is None
    assert records.record(skipped, 'config')["eval"]["iwae_samples"] == 0
    assert skipped.value == pytest.approx(records.record(skipped, 'final')["elbo"])
    [asked] = finals(tmp_path, "asked", objective="elbo", final_iwae=True)
    # asked for: computed with the spec's k, and a bound tighter than the ELBO on average
    assert records.record(asked, 'final')["iwae_samples"] == 10
    assert records.record(asked, 'final')["nll_iwae"] <= records.record(asked, 'final')["elbo"] + 0.5
    [iwae] = finals(tmp_path, "iwae")
    # objective nll_iwae: computed, and it is the value
    assert iwae.value == pytest.approx(records.record(iwae, 'final')["nll_iwae"])


def test_final_iwae_false_with_the_iwae_objective_is_one_clear_error(spec_dict):
    with pytest.raises(ConfigError, match="final_iwae: false, but objective nll_iwae"):
        StudySpec.from_dict(spec_dict(final_iwae=False))
