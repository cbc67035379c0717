"""The deployment files: every command they run is a real CLI command with real options, no
secret is written in them, nothing listens beyond 127.0.0.1. Compose files are checked by
parsing (and by ``docker compose config`` where a compose CLI is installed); nothing is run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from vae_search.cli import main
from vae_search.cli.proxy_commands import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = (
    "create-study",
    "worker",
    "worker-cpu",
    "gpu-launcher",
    "dashboard",
    "storage-proxy",
)
CLI = type(main)(
    "vae-search",
    commands={**main.commands, **{c.name: c for c in COMMANDS}},
    callback=main.callback,
    params=main.params,
)
_VAR = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR:?error} / ${VAR} with no variable set."""
    return _VAR.sub(lambda m: m.group(3) if m.group(2) == "-" else f"<{m.group(1)}>", value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def check_command(argv: list[str]) -> None:
    """``argv`` (after the program name) names a vae-search command and only its options."""
    name, *rest = argv
    assert name in CLI.commands, f"vae-search has no command {name!r}"
    cmd = CLI.commands[name]
    res = CliRunner().invoke(CLI, [name, "--help"])
    assert res.exit_code == 0, res.output
    known = {
        o for p in cmd.params if isinstance(p, click.Option) for o in p.opts + p.secondary_opts
    }
    for token in rest:
        if token.startswith("--"):
            assert token.split("=")[0] in known, f"{name} has no option {token}"
    # the storage URL never appears on a command line (it shows in `ps`)
    assert "--storage" not in rest


def test_every_compose_command_is_a_real_cli_command(compose):
    for name in APP_SERVICES:
        argv = [interpolate(str(a)) for a in compose["services"][name]["command"]]
        check_command(argv)
        # a study spec argument names a shipped file (./studies is mounted at /app/studies)
        for a in argv:
            if a.endswith(".yaml"):
                assert (ROOT / a).is_file(), a


def test_services_share_the_artifacts_and_reach_postgres_by_environment(compose):
    services = compose["services"]
    for name in APP_SERVICES:
        s = services[name]
        # one named volume of artifacts at /artifacts in every service, and said so
        assert "artifacts:/artifacts" in s["volumes"], name
        # one dataset copy for every replica, where the default data.root lands (WORKDIR /app)
        assert "data:/app/data" in s["volumes"], name
        env = s["environment"]
        assert env["VAE_SEARCH_ARTIFACTS"] == "/artifacts"
        url = env["VAE_SEARCH_STORAGE"]
        assert url.startswith("postgresql+psycopg://vae:${POSTGRES_PASSWORD:?")
        assert url.endswith("@postgres:5432/vae_search")
    assert set(compose["volumes"]) >= {"artifacts", "data", "pgdata"}
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_startup_order_health_and_gpus(compose):
    s = compose["services"]
    assert "pg_isready" in " ".join(s["postgres"]["healthcheck"]["test"])
    assert "/api/studies" in " ".join(s["dashboard"]["healthcheck"]["test"])
    assert s["create-study"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "worker-cpu", "gpu-launcher"):
        # workers start only once the study exists
        assert (
            s[name]["depends_on"]["create-study"]["condition"] == "service_completed_successfully"
        )
    gpu = s["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["count"] == 1 and gpu["capabilities"] == ["gpu"]
    assert s["worker-cpu"]["profiles"] == ["cpu"] and "deploy" not in s["worker-cpu"]
    assert "--device" in s["worker-cpu"]["command"] and "cpu" in s["worker-cpu"]["command"]


WORKERS = ("worker", "worker-cpu", "gpu-launcher")


def run_entrypoint(service: dict, env: dict[str, str], tmp_path: Path) -> list[str]:
    """Run ``service``'s entrypoint + command as the container would, with a vae-search stub
    on PATH that prints its storage and arguments; returns those lines."""
    stub = tmp_path / "bin" / "vae-search"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text('#!/bin/sh\necho "storage=$VAE_SEARCH_STORAGE"\necho "args=$*"\n')
    stub.chmod(0o755)
    # compose turns $$ into $; nothing else in the entrypoint is compose's to interpolate
    argv = [a.replace("$$", "$") for a in service["entrypoint"]]
    argv += [interpolate(str(a)) for a in service["command"]]
    path = f"{stub.parent}{os.pathsep}{os.environ['PATH']}"
    res = subprocess.run(argv, capture_output=True, text=True, env={"PATH": path, **env})
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_workers_take_worker_storage_and_the_rest_stay_on_postgres(compose, tmp_path):
    services = compose["services"]
    direct = services["create-study"]["environment"]["VAE_SEARCH_STORAGE"]
    for name in WORKERS:
        s = services[name]
        assert s["environment"]["WORKER_STORAGE"] == "${WORKER_STORAGE:-}", name
        assert s["environment"]["VAE_SEARCH_STORAGE"] == direct, name
        command = " ".join(interpolate(str(a)) for a in s["command"])
        # unset or empty: the direct URL; set: the proxy; the command reaches vae-search as is
        for worker_storage, expected in (("", direct), ("grpc://storage-proxy:13000", None)):
            out = run_entrypoint(
                s, {"VAE_SEARCH_STORAGE": direct, "WORKER_STORAGE": worker_storage}, tmp_path
            )
            assert out == [f"storage={expected or worker_storage}", f"args={command}"], name
        # exec: vae-search replaces the shell, so SIGTERM (the graceful stop) reaches it
        assert 'exec vae-search "$$@"' in s["entrypoint"][2]
    for name in set(APP_SERVICES) - set(WORKERS):
        # the study, the dashboard and the proxy itself never go through the proxy
        assert (
            "entrypoint" not in services[name]
            and "WORKER_STORAGE" not in services[name]["environment"]
        ), name
    env_example = (ROOT / ".env.example").read_text()
    assert re.search(r"(?m)^WORKER_STORAGE=$", env_example)
    assert "WORKER_STORAGE=grpc://storage-proxy:13000" in env_example
    doc = (ROOT / "docs" / "deploy.md").read_text()
    assert "WORKER_STORAGE=grpc://storage-proxy:13000" in doc and "--profile proxy" in doc


def test_no_secret_is_written_and_nothing_listens_beyond_loopback(compose):
    text = COMPOSE.read_text()
    # every password is a ${...} reference, in the URL and in the server's environment
    for key, value in walk(compose):
        if "password" in key.lower():
            assert value.startswith("${"), key
        for m in re.finditer(r"://[^:/\s]+:([^@\s]+)@", value):
            assert m.group(1).startswith("${"), value
    assert "${POSTGRES_PASSWORD:?" in text  # compose refuses to start without one
    for name, s in compose["services"].items():
        for port in s.get("ports", []):
            assert interpolate(str(port)).startswith("127.0.0.1:"), (name, port)
    env_example = (ROOT / ".env.example").read_text()
    assert re.search(r"(?m)^POSTGRES_PASSWORD=$", env_example)


def walk(node: object, key: str = "") -> list[tuple[str, str]]:
    """Every (key, string value) pair in a parsed YAML document."""
    if isinstance(node, dict):
        return [kv for k, v in node.items() for kv in walk(v, str(k))]
    if isinstance(node, list):
        return [kv for v in node for kv in walk(v, key)]
    return [(key, str(node))]


@pytest.mark.parametrize("tool", [("docker", "compose"), ("docker-compose",)])
def test_a_compose_cli_accepts_the_file(tool, tmp_path):
    if not shutil.which(tool[0]):
        pytest.skip(f"{tool[0]} is not installed")
    probe = subprocess.run([*tool, "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"{' '.join(tool)} is not available here")
    profiles = ["--profile", "cpu", "--profile", "proxy", "--profile", "multi-gpu"]
    base = [*tool, "-f", str(COMPOSE), *profiles, "config"]
    env = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    env["COMPOSE_PROJECT_NAME"] = "vae-search-test"
    # without a password compose refuses, saying where to set it
    res = subprocess.run(base + ["-q"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode != 0 and "set POSTGRES_PASSWORD in .env" in res.stdout + res.stderr
    res = subprocess.run(
        base,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "POSTGRES_PASSWORD": "pw4test"},
    )
    assert res.returncode == 0, res.stderr
    services = yaml.safe_load(res.stdout)["services"]
    assert set(services) == {"postgres", *APP_SERVICES}
    assert "data:/app/data" in " ".join(map(str, services["create-study"]["volumes"]))
    # this compose accepts the file's interpolation; WORKER_STORAGE reaches the workers only
    proxy = "grpc://storage-proxy:13000"
    res = subprocess.run(
        base,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "POSTGRES_PASSWORD": "pw4test", "WORKER_STORAGE": proxy},
    )
    assert res.returncode == 0, res.stderr
    services = yaml.safe_load(res.stdout)["services"]
    direct = "postgresql+psycopg://vae:pw4test@postgres:5432/vae_search"
    for name in APP_SERVICES:
        env_ = services[name]["environment"]
        assert env_["VAE_SEARCH_STORAGE"] == direct, name
        assert env_.get("WORKER_STORAGE") == (proxy if name in WORKERS else None), name


def test_the_kubernetes_job_and_the_slurm_script_run_real_commands():
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "k8s-job.yaml").read_text()))
    job = next(
        d for d in docs if d["kind"] == "Job" and d["metadata"]["name"] == "vae-search-workers"
    )
    container = job["spec"]["template"]["spec"]["containers"][0]
    check_command([a.replace("$(WORKER_INDEX)", "0") for a in container["args"]])
    env = {e["name"]: e for e in container["env"]}
    # the URL comes from a Secret, the worker index from the Indexed Job
    assert "secretKeyRef" in env["VAE_SEARCH_STORAGE"]["valueFrom"]
    assert "job-completion-index" in env["WORKER_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    script = ROOT / "deploy" / "slurm-array.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    line = re.search(r'vae-search" (worker .*?)(?<!\\)\n', script.read_text(), re.S).group(1)
    argv = [t for t in re.sub(r"\\\n", " ", line).split() if not t.startswith('"$')]
    check_command([a for a in argv if a != "$SPEC" and a != '"$SPEC"'])


def test_the_kubernetes_pods_write_the_datasets_once_as_the_image_user():
    text = (ROOT / "deploy" / "k8s-job.yaml").read_text()
    docs = list(yaml.safe_load_all(text))
    by_name = {d["metadata"]["name"]: d for d in docs}
    claims = {n for n, d in by_name.items() if d["kind"] == "PersistentVolumeClaim"}
    assert claims == {"vae-search-artifacts", "vae-search-data"}
    setup = by_name["vae-search-create-study"]
    workers = by_name["vae-search-workers"]
    parallelism = workers["spec"]["parallelism"]
    for job, mounts in ((setup, {"/app/data"}), (workers, {"/app/data", "/artifacts"})):
        pod = job["spec"]["template"]["spec"]
        # uid 1000 is the image's user; fsGroup makes a fresh PVC writable by it
        assert pod["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}
        claim_of = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
        container = pod["containers"][0]
        got = {m["mountPath"]: claim_of[m["name"]] for m in container["volumeMounts"]}
        assert set(got) == mounts and got["/app/data"] == "vae-search-data"
        assert "secretKeyRef" in str(container["env"])
    # the one-shot create-study (study + dataset download) runs before any worker, by label
    check_command(setup["spec"]["template"]["spec"]["containers"][0]["args"])
    worker_args = workers["spec"]["template"]["spec"]["containers"][0]["args"]
    assert setup["spec"]["template"]["spec"]["containers"][0]["args"][1] == worker_args[1]
    assert all(by_name[n]["metadata"]["labels"] == {"step": "setup"} for n in claims)
    assert setup["metadata"]["labels"] == {"step": "setup"}
    assert workers["metadata"]["labels"] == {"step": "workers"}
    order = [
        "kubectl apply -f deploy/k8s-job.yaml -l step=setup",
        "kubectl wait --for=condition=complete --timeout=1h job/vae-search-create-study",
        "kubectl apply -f deploy/k8s-job.yaml -l step=workers",
    ]
    positions = [text.index(line) for line in order]
    assert positions == sorted(positions)
    # kubectl follows at most 5 streams unless told: one per pod, named
    assert f"--max-log-requests={parallelism} --prefix" in text
    assert "--from-literal=storage=" not in text.replace("--from-literal would", "")


SLURM = ROOT / "deploy" / "slurm-array.sh"


def run_slurm(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """The whole array script with a stub vae-search in $VENV that prints its storage."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    stub = venv / "bin" / "vae-search"
    stub.write_text('#!/bin/sh\necho "storage=$VAE_SEARCH_STORAGE args=$*"\n')
    stub.chmod(0o755)
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "VENV": str(venv)}
    return subprocess.run(
        ["bash", str(SLURM), "studies/mnist.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**base, **env},
    )


def test_the_slurm_script_refuses_to_run_without_a_database_url(tmp_path):
    url_file = tmp_path / ".config" / "vae-search" / "storage"
    # no file: stops (before, the cat's failure was lost and every task used SQLite)
    res = run_slurm(tmp_path)
    assert res.returncode == 1 and res.stdout == ""
    assert f"no database URL: put it (without password) in {url_file}" in res.stderr
    # an empty file or an empty variable: one line naming the fix, nothing run
    url_file.parent.mkdir(parents=True)
    url_file.write_text("\n")
    for env in ({}, {"VAE_SEARCH_STORAGE": ""}):
        res = run_slurm(tmp_path, **env)
        assert res.returncode == 1 and res.stdout == "", env
        assert res.stderr.splitlines() == [
            f"no database URL: put it (without password) in {url_file} or set VAE_SEARCH_STORAGE"
        ]
    # a URL in the file, or in the environment (which wins): the worker runs with it
    url_file.write_text("postgresql://vae@db-host:5432/vae_search\n")
    res = run_slurm(tmp_path, SLURM_ARRAY_TASK_ID="3")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(
        "storage=postgresql://vae@db-host:5432/vae_search args=worker studies/mnist.yaml --index 3"
    )
    res = run_slurm(tmp_path, VAE_SEARCH_STORAGE="postgresql://vae@other:5432/vae_search")
    assert res.returncode == 0 and "storage=postgresql://vae@other:5432/" in res.stdout


def test_no_documented_command_line_carries_a_database_url():
    """A URL on a command line shows in `ps` (and a typed one in the shell history)."""
    doc = (ROOT / "docs" / "deploy.md").read_text()
    blocks = re.findall(r"(?ms)^```bash\n(.*?)^```", doc)
    assert blocks
    files = [ROOT / "deploy" / "k8s-job.yaml", SLURM, COMPOSE, ROOT / "Dockerfile"]
    lines = [line for b in blocks for line in b.splitlines()]
    lines += [line for f in files for line in f.read_text().splitlines()]
    for line in lines:
        assert not re.search(r"--storage[ =]+['\"]?(\$|postgres)", line), line
        assert "--from-literal" not in line or "--from-literal would" in line, line
    assert "vae-search storage-proxy --host" in doc


def test_the_connection_budget_counts_every_process_that_holds_one():
    doc = (ROOT / "docs" / "deploy.md").read_text()
    budget = doc[doc.index("## Connection budget") : doc.index("## The gRPC storage proxy")]
    env_example = (ROOT / ".env.example").read_text()
    # a launch/run parent opens the study for its progress line: 1 more than its workers
    assert "`vae-search launch` or `run`" in budget and "holds **1** more" in budget
    assert "each launch/run parent" in env_example and "workers * 3 + launchers" in env_example
    assert "| 8 | 8 × 3 + 2 = 26 (27 under one `launch`) |" in budget
    # consistent with the README: 2 per worker + 1 short-lived, about 30 on the default server
    readme = (ROOT / "README.md").read_text()
    assert "at most 2 connections per worker" in readme and "about\n  30 workers" in readme


def test_the_image_installs_the_package_and_runs_the_cli():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"(?m)^FROM python:3\.11-slim$", text)
    assert 'ENTRYPOINT ["vae-search"]' in text and "USER vae" in text
    # torchvision writes the datasets to data.root (`data`, relative to WORKDIR) as user vae
    from vae_search.config import DataConfig

    assert re.search(r"(?m)^WORKDIR /app$", text) and DataConfig().root == "data"
    user = re.search(r"(?ms)^RUN useradd .*?(?<!\\)\n", text).group(0)
    assert "mkdir -p /artifacts /app/data" in user
    assert "chown vae:vae /artifacts /app/data" in user
    ignored = (ROOT / ".dockerignore").read_text()
    assert "!vae_search/" in ignored and ".venv" not in ignored.replace("*", "")


def test_the_image_build_steps_resolve_the_dependencies_and_copy_what_the_package_needs(tmp_path):
    """What can be run of the Dockerfile without a Docker engine: its requirements script (on
    pyproject.toml, as the build does) and its COPY list against what the package imports."""
    import sys

    import tomllib

    text = (ROOT / "Dockerfile").read_text()
    script = re.search(r"RUN python - <<'EOF' > /tmp/requirements.txt\n(.*?)\nEOF\n", text, re.S).group(1)
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    extras = re.search(r"(?m)^ARG EXTRAS=(.*)$", text).group(1)
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "EXTRAS": extras})
    assert res.returncode == 0, res.stderr
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = project["dependencies"] + [
        r for e in extras.split(",") for r in project["optional-dependencies"][e]
    ]
    assert res.stdout.splitlines() == expected
    # the package's files reach the image: the build context lets them in and a COPY takes them
    copied = re.findall(r"(?m)^COPY (\S+)", text)
    assert {"pyproject.toml", "README.md", "vae_search", "studies"} <= set(copied)
    assert "grpcio" in res.stdout and "torch" in res.stdout
