"""Pictures after the tell: a trial's pictures are recorded before Optuna records its state and
drawn after it, on one thread; a graceful stop waits for them, a killed worker leaves
"picture not written" placeholders, and ``pictures_after_tell=False`` keeps them in the trial."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import yaml
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from tests.workers.test_population_worker import population_spec
from tests.workers.test_worker import load, write_spec
from vae_search.dashboard.artifacts import trial_artifacts
from vae_search.dashboard.hooks import dashboard_hooks
from vae_search.dashboard.report import render_report, trial_pictures
from vae_search.dashboard.trial.publish import PICTURES, not_written_png
from vae_search.storage.checkpoints import artifact_store
from vae_search.study.spec import StudySpec
from vae_search.workers.context import WhoFilter, set_trial, set_worker
from vae_search.workers.hooks import AfterTell
from vae_search.workers.worker import WorkerOptions, run_worker


class Lines(logging.Handler):
    """Collects ``(who, message)`` of every record, with the worker's log filter."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(WhoFilter())
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.who, record.getMessage()))


@pytest.fixture
def lines():
    handler = Lines()
    root = logging.getLogger("vae_search")
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


# -- the thread itself --------------------------------------------------------------------------


def test_submit_blocks_while_four_jobs_are_pending_and_close_waits_for_them():
    gate = threading.Event()
    done: list[int] = []
    after = AfterTell(wait=30, max_pending=4)
    for i in range(4):
        after.submit(lambda i=i: (gate.wait(30), done.append(i)), trial=i)
    fifth = threading.Thread(target=lambda: after.submit(lambda: done.append(4), trial=4))
    fifth.start()
    fifth.join(0.3)
    assert fifth.is_alive()  # back-pressure: the fifth waits for a free slot
    assert after.pending() == [0, 1, 2, 3]
    gate.set()
    fifth.join(10)
    assert not fifth.is_alive()
    assert after.close() is True
    assert done == [0, 1, 2, 3, 4]  # in order, none lost


def test_close_gives_up_after_its_wait_and_names_what_is_left(caplog):
    gate = threading.Event()
    after = AfterTell(wait=0.2)
    after.submit(lambda: gate.wait(30), trial=7)
    after.submit(lambda: None, trial=8)
    with caplog.at_level(logging.WARNING, "vae_search.workers.hooks"):
        assert after.close() is False
    assert "trial(s) 7, 8" in caplog.text and "picture not written" in caplog.text
    gate.set()


def test_a_job_that_raises_is_logged_and_the_next_runs(caplog):
    done = []
    with caplog.at_level(logging.WARNING, "vae_search.workers.hooks"), AfterTell() as after:
        after.submit(lambda: 1 / 0, trial=1)
        after.submit(lambda: done.append("next"), trial=2)
    assert done == ["next"] and "ZeroDivisionError" in caplog.text


def test_a_jobs_log_lines_say_its_trial_not_the_one_training(lines):
    set_worker(3)
    set_trial(12)  # the main thread trains trial 12 ...
    try:
        with AfterTell() as after:  # ... while trial 11's pictures are drawn
            after.submit(lambda: logging.getLogger("vae_search.test").info("drawing"), trial=11)
        logging.getLogger("vae_search.test").info("training")
    finally:
        set_trial(None)
    assert ("[w3 #11] ", "drawing") in lines.lines and ("[w3 #12] ", "training") in lines.lines


# -- workers --------------------------------------------------------------------------------------


def spy_hooks(states: dict[int, str]):
    """The dashboard's hooks, each deferred job noting its trial's state when it runs."""
    hooks = dashboard_hooks()
    plan = hooks.trial_ended[0]

    def spied(end):
        job = plan(end)
        number, trial_id = end.trial.number, end.trial._trial_id

        def run() -> None:
            states[number] = end.trial.storage.get_trial(trial_id).state.name
            job()

        return run

    hooks.trial_ended[0] = spied
    return hooks


def written(url: str, name: str, art: Path) -> dict[int, tuple[int, int]]:
    """Per finished trial: (pictures recorded, pictures written: present and not placeholders)."""
    study = load(url, name)
    store = FileSystemArtifactStore(str(art))
    out = {}
    for t in study.trials:
        metas = trial_artifacts(study._storage, t._trial_id, mimetype_prefix="image/")
        ok = 0
        for m in metas:
            path = art / m.artifact_id
            ok += path.is_file() and path.read_bytes() != not_written_png()
        out[t.number] = (len(metas), ok)
        assert not list(art.glob("*.partial"))
        if metas:  # an interrupted (re-queued) trial has none
            found, missing = trial_pictures(study, t, store)
            assert len(found) == ok and len(missing) == len(metas) - ok
    return out


def test_pictures_are_drawn_after_the_tell_and_all_written_when_the_worker_stops(tmp_path, lines):
    url = f"sqlite:///{tmp_path / 'st.db'}"
    spec = StudySpec.from_file(write_spec(tmp_path / "s.yaml", "after", n_trials=3, epochs=2, size=600))
    states: dict[int, str] = {}
    run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp_path / "a"), index=0),
               hooks=spy_hooks(states))
    trials = load(url, "after").trials
    assert sorted(states) == [t.number for t in trials]
    # every job ran once its trial was told (finished), and nothing was left undrawn
    assert all(s in ("COMPLETE", "PRUNED") for s in states.values()), states
    counts = written(url, "after", tmp_path / "a")
    for t in trials:
        expected = len(PICTURES) if t.state == TrialState.COMPLETE else 2  # pruned: curves, KL
        assert counts[t.number] == (expected, expected), (t.number, t.state)


def test_pictures_after_tell_false_draws_them_inside_the_trial_with_the_same_results(tmp_path):
    runs = {}
    for after in (True, False):
        url = f"sqlite:///{tmp_path / f'{after}.db'}"
        spec = StudySpec.from_file(write_spec(tmp_path / f"{after}.yaml", "sync", n_trials=3, epochs=2, size=600))
        states: dict[int, str] = {}
        run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp_path / f"a{after}"), index=0,
                                       pictures_after_tell=after), hooks=spy_hooks(states))
        runs[after] = (load(url, "sync").trials, states, written(url, "sync", tmp_path / f"a{after}"))
    trials, states, counts = runs[False]
    assert set(states.values()) == {"RUNNING"}  # drawn before the tell, as part of the trial
    assert all(recorded == ok > 0 for recorded, ok in counts.values())
    # the thread drawing one trial's pictures does not disturb the next trial's training
    assert [(t.state, t.values) for t in trials] == [(t.state, t.values) for t in runs[True][0]]
    assert counts == runs[True][2]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_population_worker_draws_each_members_pictures_after_its_tell(tmp_path, lines):
    url = f"sqlite:///{tmp_path / 'st.db'}"
    path = population_spec(tmp_path / "s.yaml", "pop", n_trials=3, collapse=False, epochs=2, size=600)
    states: dict[int, str] = {}
    run_worker(StudySpec.from_file(path),
               WorkerOptions(storage=url, artifact_dir=str(tmp_path / "a"), index=0, population=3),
               hooks=spy_hooks(states))
    trials = load(url, "pop").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert states == {0: "COMPLETE", 1: "COMPLETE", 2: "COMPLETE"}
    assert written(url, "pop", tmp_path / "a") == {n: (len(PICTURES), len(PICTURES)) for n in range(3)}
    # the round's lines name every held trial, each member's lines its own
    assert ("[w0 #0,1,2] ", "population of 3 members (mlp, latent 4) on cpu") in lines.lines
    completes = sorted(who for who, msg in lines.lines if msg.startswith("complete:"))
    assert completes == ["[w0 #0] ", "[w0 #1] ", "[w0 #2] "]


# -- stopping ------------------------------------------------------------------------------------

# a worker whose picture jobs start by saying so and then sleep: the test stops it meanwhile
SLOW_PICTURES = textwrap.dedent("""
    import sys, time
    from vae_search.dashboard.hooks import dashboard_hooks
    from vae_search.study.spec import StudySpec
    from vae_search.workers.worker import GracefulStop, WorkerOptions, run_worker

    hooks = dashboard_hooks()
    plan = hooks.trial_ended[0]

    def slow(end):
        job = plan(end)
        def later():
            print("drawing", end.trial.number, flush=True)
            time.sleep(float(sys.argv[4]))
            job()
        return later

    hooks.trial_ended[0] = slow
    with GracefulStop() as stop:
        try:
            run_worker(StudySpec.from_file(sys.argv[1]),
                       WorkerOptions(storage=sys.argv[2], artifact_dir=sys.argv[3], index=0), stop, hooks=hooks)
        except KeyboardInterrupt:  # as the CLI's worker command does
            print(f"stopped now (stored: {stop.now})", flush=True)
            sys.exit(130)
    print("stopped", flush=True)
""")


def slow_worker(tmp_path: Path, name: str, sleep: float, epochs: int = 2) -> tuple[subprocess.Popen, str]:
    url = f"sqlite:///{tmp_path / 'st.db'}"
    path = write_spec(tmp_path / "s.yaml", name, n_trials=5, epochs=epochs, size=600)
    spec = yaml.safe_load(path.read_text())
    spec["pruner"]["collapse"]["enabled"] = False  # complete trials: all five pictures
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    proc = subprocess.Popen([sys.executable, "-c", SLOW_PICTURES, str(path), url, str(tmp_path / "a"), str(sleep)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    while not seen or not seen[-1].startswith("drawing"):  # the first trial is told, its pictures drawn
        seen.append(proc.stdout.readline())
        if not seen[-1]:
            pytest.fail("the worker ended before drawing: " + "".join(seen))
    return proc, url


def test_a_sigterm_waits_for_the_pictures_of_told_trials(tmp_path):
    proc, url = slow_worker(tmp_path, "term", sleep=3)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0 and "stopped" in out, out
    counts = written(url, "term", tmp_path / "a")
    done = [t.number for t in load(url, "term").trials if t.state == TrialState.COMPLETE]
    assert done and all(counts[n] == (len(PICTURES), len(PICTURES)) for n in done), counts


def test_a_second_sigterm_does_not_wait_for_the_pictures(tmp_path):
    """Trial 0's pictures take 120 s here and both signals land while trial 1 trains: the
    worker re-queues trial 1 and stops in seconds, not after the pictures (nor after
    ``pictures_wait``), with no traceback; what was not drawn says so."""
    import time

    from tests.workers.test_signals import wait_for_epoch

    proc, url = slow_worker(tmp_path, "term2", sleep=120, epochs=40)
    assert wait_for_epoch(url, "term2", 1, proc).number == 1
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130 and "stopped now" in out, out
    assert time.monotonic() - t0 < 40, out  # the picture being drawn gets STOP_NOW_WAIT (10 s)
    assert "Traceback" not in out, out
    assert "picture not written" in out  # the warning names the trials left
    states = [t.state for t in load(url, "term2").trials]
    assert states[:2] == [TrialState.COMPLETE, TrialState.FAIL] and TrialState.WAITING in states, states
    counts = written(url, "term2", tmp_path / "a")
    assert counts[0] == (len(PICTURES), 0), counts  # recorded, never drawn: placeholders


def test_a_second_sigterm_while_the_worker_waits_for_pictures_ends_the_wait(tmp_path):
    """The first SIGTERM ends the trial and the worker waits for trial 0's 120 s pictures; the
    second ends that wait: no traceback, nothing re-queued, and the CLI's words say its trials
    are stored (``stop.now``)."""
    import time

    proc, url = slow_worker(tmp_path, "wait2", sleep=120)
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60
    while any(t.state == TrialState.RUNNING for t in load(url, "wait2").trials):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    time.sleep(1.0)  # the worker is in its wait for the pictures
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 130 and "stopped now (stored: True)" in out, out
    assert "Traceback" not in out and "picture not written" in out, out
    states = [t.state for t in load(url, "wait2").trials]
    assert states and all(s == TrialState.COMPLETE for s in states), states


def test_close_now_drops_the_jobs_not_started_and_waits_only_for_the_running_one(monkeypatch, caplog):
    import time

    monkeypatch.setattr("vae_search.workers.hooks.STOP_NOW_WAIT", 0.3)
    gate, running = threading.Event(), threading.Event()
    done: list[int] = []
    after = AfterTell(wait=300)
    after.submit(lambda: (running.set(), gate.wait(30), done.append(1)), trial=1)
    after.submit(lambda: done.append(2), trial=2)
    after.submit(lambda: done.append(3), trial=3)
    assert running.wait(10)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, "vae_search.workers.hooks"):
        assert after.close(now=True) is False
    assert time.monotonic() - t0 < 5  # not the 300 s of a graceful stop
    assert "trial(s) 1, 2, 3" in caplog.text
    gate.set()
    after._thread.join(10)
    assert done == [1]  # the running job finished; the two not started never ran


def test_a_sigkilled_worker_leaves_pictures_not_written_and_the_report_says_so(tmp_path):
    proc, url = slow_worker(tmp_path, "kill", sleep=120)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    study = load(url, "kill")
    first = study.trials[0]
    assert first.state == TrialState.COMPLETE  # told before its pictures were drawn
    counts = written(url, "kill", tmp_path / "a")
    assert counts[0] == (len(PICTURES), 0)  # recorded, never drawn: placeholders
    page = render_report(study, artifact_store(tmp_path / "a"), storage_label=url)
    assert page.count("picture not written (artifact") >= len(PICTURES)
    # optuna-dashboard serves the placeholder as it is: a PNG that says so
    from PIL import Image

    meta = trial_artifacts(study._storage, first._trial_id, mimetype_prefix="image/")[0]
    with Image.open(tmp_path / "a" / meta.artifact_id) as img:
        assert img.format == "PNG"
