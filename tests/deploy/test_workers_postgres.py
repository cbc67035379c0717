"""Many real workers on one PostgreSQL study: scale, killed workers, a restarted server.

Every test starts ``python -m vae_search worker`` processes on a tiny spec (trials well under a
second) and checks the study they leave through plain Optuna.
"""

from __future__ import annotations

import random
import re
import signal
import time
import warnings

import optuna
import pytest
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from vae_search import records

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def load_trials(url: str, name: str) -> list[FrozenTrial]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def create_study(spec, url: str) -> None:
    """Create the study first, as a deployment's create-study step does."""
    from vae_search.study.spec import StudySpec
    from vae_search.workers.worker import open_study

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study, _ = open_study(StudySpec.from_file(spec), url)
    study._storage.remove_session()


def ran_by(log: str) -> list[int]:
    """The trial numbers a worker reports in its last line."""
    m = re.search(r"finished: trials (\[[\d, ]*\])", log)
    assert m, log[-2000:]
    return [int(n) for n in re.findall(r"\d+", m.group(1))]


def assert_clean_logs(logs: dict[int, str]) -> None:
    for index, text in logs.items():
        # a worker that ran cleanly logs no error and no traceback
        assert "Traceback" not in text and " ERROR " not in text, f"worker {index}:\n{text[-3000:]}"


def assert_budget_exact(trials: list[FrozenTrial], n_trials: int) -> None:
    states = [t.state for t in trials]
    # the budget counts COMPLETE and PRUNED: exactly n_trials of them, nothing left behind
    assert sum(s in FINISHED for s in states) == n_trials, states
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # trial numbers are 0..N-1 without gaps or repeats
    assert sorted(t.number for t in trials) == list(range(len(trials)))


def test_eight_workers_finish_exactly_a_hundred_trials(pg_url, pg_study, tiny_spec, workers):
    n_trials = 100
    spec = tiny_spec(pg_study, n_trials=n_trials, heartbeat=2, grace=20)
    create_study(spec, pg_url)
    group = workers(spec, pg_url)
    t0 = time.monotonic()
    for i in range(8):
        group.start(i)
    codes = group.wait(timeout=240)
    elapsed = time.monotonic() - t0
    logs = {i: group.log(i) for i in group.procs}
    assert codes == dict.fromkeys(range(8), 0), {i: logs[i][-1500:] for i in codes if codes[i]}
    assert_clean_logs(logs)
    trials = load_trials(pg_url, pg_study)
    assert_budget_exact(trials, n_trials)
    # no failure and no extra trial: exactly the budget was created
    assert len(trials) == n_trials
    # every trial ran in exactly one worker, and every worker ran some
    ran = [ran_by(logs[i]) for i in range(8)]
    flat = sorted(n for r in ran for n in r)
    assert flat == list(range(n_trials)), ran
    assert all(ran), ran
    print(f"8 workers, {n_trials} trials: {elapsed:.1f} s ({60 * n_trials / elapsed:.0f}/min)")


def describe(trials: list[FrozenTrial]) -> list[tuple]:
    """What a failure message needs to know about every trial."""
    return [
        (
            t.number,
            t.state.name,
            t.system_attrs.get("retry_history"),
            records.record(t, "retry_of"),
            records.record(t, "fail_reason"),
        )
        for t in trials
    ]


def safe_to_kill(url: str, name: str) -> bool:
    """True when no worker is about to fail a stale trial, and none has just done so.

    Failing a stale trial and enqueuing its retry are two steps in Optuna
    (``fail_stale_trials``): a worker killed between them leaves a failed trial without a retry.
    The test kills outside that window, and outside the one between creating a trial and its
    first heartbeat (Optuna never fails such a trial; the resilient storage does, a grace
    period later, once it is wired into the worker).
    """
    trials = load_trials(url, name)
    retried = {
        t.system_attrs["retry_history"][-1] for t in trials if "retry_history" in t.system_attrs
    }
    if not all(t.number in retried for t in trials if t.state == TrialState.FAIL):
        return False
    # last, so that the kill follows this look at the heartbeats as closely as possible
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as c:
            running = (
                c.execute(
                    sqlalchemy.text(
                        "SELECT h.trial_id IS NULL OR h.heartbeat < LOCALTIMESTAMP - interval '1.5 seconds'"
                        " FROM trials t JOIN studies s USING (study_id)"
                        " LEFT JOIN trial_heartbeats h USING (trial_id)"
                        " WHERE s.study_name = :n AND t.state = 'RUNNING'"
                    ),
                    {"n": name},
                )
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    return len(running) >= 2 and not any(running)


def test_workers_killed_repeatedly_lose_nothing(pg_url, pg_study, tiny_spec, workers):
    n_trials = 80
    # 3 epochs of a slightly bigger set: a trial runs long enough to be killed in the middle
    spec = tiny_spec(pg_study, n_trials=n_trials, heartbeat=1, grace=3, epochs=3, size=1500)
    create_study(spec, pg_url)
    group = workers(spec, pg_url)
    rng = random.Random(0)
    for i in range(4):
        group.start(i)
    killed, next_index = [], 4
    deadline = time.monotonic() + 120
    while len(killed) < 4 and time.monotonic() < deadline:
        if all(p.poll() is not None for p in group.procs.values()):
            break  # the study is done
        # workers past their start-up (torch's import takes seconds): they are running trials
        alive = [
            i for i, p in group.procs.items() if p.poll() is None and "epoch 1/" in group.log(i)
        ]
        if not alive or not safe_to_kill(pg_url, pg_study):
            time.sleep(0.2)
            continue
        victim = rng.choice(alive)
        group.procs[victim].send_signal(signal.SIGKILL)
        group.procs[victim].wait()
        killed.append(victim)
        group.start(next_index)  # a replacement
        next_index += 1
        time.sleep(rng.uniform(1.5, 3.0))
    # the kills came while trials ran (the study outlasts them)
    assert len(killed) >= 3, killed
    codes = group.wait(timeout=180)
    survivors = {i: c for i, c in codes.items() if i not in killed}
    logs = {i: group.log(i) for i in survivors}
    assert all(c == 0 for c in survivors.values()), {i: logs[i][-1500:] for i in survivors}
    assert_clean_logs(logs)
    trials = load_trials(pg_url, pg_study)
    assert_budget_exact(trials, n_trials)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    # each SIGKILL left one trial that the heartbeat failed (a kill between trials leaves none)
    assert 1 <= len(failed) <= len(killed), [(t.number, t.state) for t in trials]
    for f in failed:
        # ... and every failed trial was retried, once (its retry may have been killed in turn
        # and retried itself), with the parameters it had drawn (a trial killed while drawing
        # them has the rest drawn by its retry)
        retries = [
            t
            for t in trials
            if t.system_attrs.get("retry_history", [None])[-1] == f.number
            or records.record(t, "requeued_from") == f.number
        ]
        assert len(retries) == 1, (f.number, [t.number for t in retries], describe(trials))
        retry = retries[0]
        assert f.params.items() <= retry.params.items()
        # the retry says which trial it continues (the first of its series): Optuna from its
        # creation, vae-search's `retry_of` once its objective starts
        root = retry.system_attrs.get("retry_history", [f.number])[0]
        said = records.record(retry, "retry_of", records.record(retry, "requeued_from"))
        if said is None:  # killed before its objective wrote a thing: failed, and retried in turn
            assert retry.state == TrialState.FAIL and retry.system_attrs["failed_trial"] == root
        else:
            assert said == root
    print(f"killed {len(killed)} workers; {len(failed)} trials failed and were retried")


def test_workers_ride_out_a_postgres_restart(pg_url, pg_study, tiny_spec, workers, pg_restart):
    n_trials = 60
    # the grace period outlasts the outage: heartbeats pause while the server is down
    spec = tiny_spec(pg_study, n_trials=n_trials, heartbeat=2, grace=30, epochs=2, size=1000)
    create_study(spec, pg_url)
    group = workers(spec, pg_url)
    for i in range(3):
        group.start(i)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # restart once a few trials are done
            done = [t for t in load_trials(pg_url, pg_study) if t.state in FINISHED]
            if len(done) >= 5:
                break
            time.sleep(0.3)
        pg_restart("restart")  # a quick one: connections drop under running statements
        time.sleep(2.0)
        pg_restart("stop")  # then a few seconds without a server
        # both outages come while the workers run
        assert all(p.poll() is None for p in group.procs.values())
        time.sleep(4.0)
        pg_restart("start")
    finally:
        if not _is_up(pg_url):  # always leave the server running
            pg_restart("start")
    codes = group.wait(timeout=240)
    logs = {i: group.log(i) for i in group.procs}
    assert codes == {0: 0, 1: 0, 2: 0}, {i: logs[i][-2000:] for i in codes if codes[i]}
    assert_clean_logs(logs)
    # at least one worker saw the outage and said so once per outage, without a password
    outages = sum(text.count("lost the study database at") for text in logs.values())
    assert outages >= 1
    trials = load_trials(pg_url, pg_study)
    assert_budget_exact(trials, n_trials)
    assert not [t for t in trials if t.state == TrialState.FAIL]


def _is_up(url: str) -> bool:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect():
            return True
    except sqlalchemy.exc.OperationalError:
        return False
    finally:
        engine.dispose()
