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
        env = s["environment"]
        assert env["VAE_SEARCH_ARTIFACTS"] == "/artifacts"
        url = env["VAE_SEARCH_STORAGE"]
        assert url.startswith("postgresql+psycopg://vae:${POSTGRES_PASSWORD:?")
        assert url.endswith("@postgres:5432/vae_search")
    assert set(compose["volumes"]) >= {"artifacts", "pgdata"}
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


def test_the_kubernetes_job_and_the_slurm_script_run_real_commands():
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "k8s-job.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "Job")
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


def test_the_image_installs_the_package_and_runs_the_cli():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"(?m)^FROM python:3\.11-slim$", text)
    assert 'ENTRYPOINT ["vae-search"]' in text and "USER vae" in text
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
