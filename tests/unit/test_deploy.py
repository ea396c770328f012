"""The deployment files stay true: they parse, and every command they run exists."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from exchange.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _commands(node) -> list[list[str]]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("command", "CMD") and isinstance(value, list):
                found.append(value)
            else:
                found += _commands(value)
    elif isinstance(node, list):
        for item in node:
            found += _commands(item)
    return found


def _check(argv: list[str]) -> None:
    assert argv[0] == "exchange", argv
    build_parser().parse_args(argv[1:])  # exits (SystemExit) on an unknown command or flag


def test_compose_and_manifests_parse_and_run_real_commands():
    documents = list(yaml.safe_load_all((DEPLOY / "compose.yaml").read_text()))
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    commands = [c for d in documents for c in _commands(d) if c and c[0] == "exchange"]
    assert len(commands) >= 6
    for argv in commands:
        _check(argv)
    kinds = {d.get("kind") for d in documents}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "Job", "ConfigMap", "Secret"} <= kinds


def test_dockerfile_copies_what_exists_and_runs_as_non_root():
    text = (DEPLOY / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (DEPLOY.parent / source).exists(), source
    assert re.search(r"^USER (?!root)\S+", text, re.M)
    cmd = re.search(r'^CMD \[(.*)\]', text, re.M).group(1)
    _check([part.strip().strip('"') for part in cmd.split(",")])


def _compose_cli() -> list[str] | None:
    """The Compose client on this machine: the docker plugin, or Debian's docker-compose."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_accepted_by_compose_itself():
    """`compose config` validates the file against the Compose schema without an engine."""
    cli = _compose_cli()
    if cli is None:
        message = "no Compose client (docker compose or docker-compose); .ci/run installs one"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    env = {**os.environ, "EXCHANGE_SECRET_KEY": "compose-config-check"}
    result = subprocess.run(
        [*cli, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # The secret is required, never defaulted: without it compose refuses the file.
    env.pop("EXCHANGE_SECRET_KEY")
    refused = subprocess.run(
        [*cli, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert refused.returncode != 0
    assert "EXCHANGE_SECRET_KEY" in refused.stderr


def test_kill_deadlines_leave_room_for_the_shutdown_grace():
    """Kubernetes and compose kill a process this long after SIGTERM: it must outlast the
    exchange's own grace (requests and actors in flight), plus the API's preStop pause."""
    from exchange.settings import Settings

    config = next(d for d in yaml.safe_load_all((DEPLOY / "k8s" / "config.yaml").read_text()) if d["kind"] == "ConfigMap")
    grace_s = int(config["data"].get("EXCHANGE_SHUTDOWN_GRACE_S", Settings().shutdown_grace_s))
    for name in ("api.yaml", "worker.yaml"):
        deployment = next(d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        pre_stop_s = 0
        for container in pod["containers"]:
            argv = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            if argv[:1] == ["sleep"]:
                pre_stop_s = int(argv[1])
        assert pod["terminationGracePeriodSeconds"] >= pre_stop_s + grace_s + 5, name
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for service in ("api", "worker"):
        period = compose["services"][service]["stop_grace_period"]
        assert period.endswith("s") and int(period[:-1]) >= Settings().shutdown_grace_s + 5, service


def _deployment(name: str) -> dict:
    return next(d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d and d["kind"] == "Deployment")


def test_metrics_are_served_and_announced_to_prometheus():
    """The API's /metrics and the workers' metrics port are on, exposed, and annotated for
    scraping on the port the container actually serves them on."""
    config = next(d for d in yaml.safe_load_all((DEPLOY / "k8s" / "config.yaml").read_text()) if d["kind"] == "ConfigMap")
    api_port = int(config["data"]["EXCHANGE_PORT"])
    for name, port_name in (("api.yaml", "http"), ("worker.yaml", "metrics")):
        template = _deployment(name)["spec"]["template"]
        notes = template["metadata"]["annotations"]
        assert (notes["prometheus.io/scrape"], notes["prometheus.io/path"]) == ("true", "/metrics"), name
        [container] = template["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert int(notes["prometheus.io/port"]) == ports[port_name], name
        if name == "worker.yaml":
            env = {e["name"]: e["value"] for e in container["env"]}
            assert int(env["EXCHANGE_WORKER_METRICS_PORT"]) == ports["metrics"]
        else:
            assert ports["http"] == api_port

    worker = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["worker"]
    port = worker["environment"]["EXCHANGE_WORKER_METRICS_PORT"]
    assert int(port) > 0 and worker["expose"] == [port]
    assert "EXCHANGE_DATABASE_URL" in worker["environment"]  # merged with the shared settings
