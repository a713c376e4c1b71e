"""The Kubernetes manifests under deploy/ and docker-compose.yml agree with the code: every container's image is
this version's, its arguments parse with the real CLI, every probe path is one its command serves, on the port its
arguments give; KEDA scales the worker Deployment on the worker's own topic and group; the disruption budget and
the Service select the serve pods. (No cluster here to apply them.)"""
from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import yaml

from bridge.cli import main_group
from bridge.version import __version__

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((REPO / "deploy" / "kubernetes").glob("*.yaml"))


def _documents() -> list[dict]:
    return [d for path in MANIFESTS for d in yaml.safe_load_all(path.read_text()) if d]


def _kind(kind: str) -> list[dict]:
    return [d for d in _documents() if d["kind"] == kind]


@pytest.fixture(autouse=True)
def mounted(tmp_path, monkeypatch):
    """The mounted secret files the arguments name (/etc/splade/...), as empty files under ``tmp_path``."""
    monkeypatch.setitem(globals(), "ROOT", tmp_path)


def parse(args: list[str]) -> list[tuple[str, dict]]:
    """``args`` parsed as `splade-bridge` would: (command path, its options) for each level; UsageError if not.
    A mounted secret's path (/etc/splade/...) is an empty file under the test's directory."""
    args = [_mounted(a) for a in args]
    levels, command, name, rest, parent = [], main_group, "splade-bridge", list(args), None
    while True:
        ctx = command.make_context(name, rest, parent=parent, resilient_parsing=False)
        levels.append((ctx.command_path, dict(ctx.params)))
        if not isinstance(command, click.Group):
            return levels
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, command, rest = command.resolve_command(ctx, rest)
        parent = ctx


def _mounted(arg: str) -> str:
    if not arg.startswith("/etc/splade/"):
        return arg
    path = ROOT / arg.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return str(path)


def _served_paths(command: str) -> set[str]:
    """The GET paths a command's HTTP endpoint answers, read from its code."""
    source = {"serve": REPO / "bridge" / "serve" / "app.py", "worker": REPO / "bridge" / "worker" / "metrics.py"}
    text = source[command].read_text()
    return set(re.findall(r'@app\.get\("(/[a-z]+)"\)', text)) | set(re.findall(r'"(/(?:healthz|readyz))"', text)) \
        | ({"/metrics"} if command == "worker" else set())


def test_there_are_manifests_for_both_roles():
    names = {d["metadata"]["name"] for d in _kind("Deployment")}
    assert names == {"splade-worker", "splade-serve"}


@pytest.mark.parametrize("deployment", _kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_containers_run_real_commands_with_probes_they_serve(deployment):
    spec = deployment["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    for container in spec["template"]["spec"]["containers"]:
        assert container["image"] == f"splade-bridge:{__version__}"
        levels = parse(container["args"])
        command, options = levels[-1][0].split()[-1], levels[-1][1]
        port = options["metrics_port"] if command == "worker" else options["port"]
        if command == "worker":
            assert options["metrics_host"] == "0.0.0.0"  # reachable from the kubelet and Prometheus
        else:
            assert options["host"] == "0.0.0.0" and options["indices"]  # /search needs an index
        assert [p["containerPort"] for p in container["ports"]] == [port]
        probes = [container[k] for k in ("livenessProbe", "readinessProbe", "startupProbe") if k in container]
        assert {"livenessProbe", "readinessProbe"} <= container.keys()
        for probe in probes:
            assert probe["httpGet"]["port"] == port
            assert probe["httpGet"]["path"] in _served_paths(command), (command, probe)
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert "memory" in container["resources"]["limits"] and "cpu" in container["resources"]["requests"]
        mounted = {m["name"] for m in container.get("volumeMounts", [])}
        assert mounted <= {v["name"] for v in spec["template"]["spec"].get("volumes", [])}
        for flag in ("--password-file", "--kafka-config", "--auth-token-file"):  # secrets as files, on mounts
            if flag in container["args"]:
                path = container["args"][container["args"].index(flag) + 1]
                assert any(path.startswith(m["mountPath"] + "/") for m in container["volumeMounts"]), path


def test_keda_scales_the_worker_on_its_own_topic_and_group():
    (scaled,) = _kind("ScaledObject")
    (worker,) = [d for d in _kind("Deployment") if d["metadata"]["name"] == scaled["spec"]["scaleTargetRef"]["name"]]
    options = parse(worker["spec"]["template"]["spec"]["containers"][0]["args"])[-1][1]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert (trigger["metadata"]["topic"], trigger["metadata"]["consumerGroup"]) == (options["topic"], options["group"])
    auth = {d["metadata"]["name"] for d in _kind("TriggerAuthentication")}
    assert trigger["authenticationRef"]["name"] in auth


def test_the_budget_and_the_service_select_the_serve_pods():
    (serve,) = [d for d in _kind("Deployment") if d["metadata"]["name"] == "splade-serve"]
    labels = serve["spec"]["template"]["metadata"]["labels"]
    (budget,) = _kind("PodDisruptionBudget")
    (service,) = _kind("Service")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == serve["spec"]["template"]["spec"]["containers"][0][
        "ports"][0]["containerPort"]


def test_compose_services_run_real_commands():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    ours = {name: s for name, s in compose["services"].items() if s.get("image", "").startswith("splade-bridge")}
    assert {"splade-serve", "splade-worker", "splade-topic"} <= ours.keys()
    for name, service in ours.items():
        assert service["image"] == f"splade-bridge:{__version__}"
        parse(service["command"])
    serve = parse(ours["splade-serve"]["command"])[-1][1]
    assert serve["indices"] and serve["host"] == "0.0.0.0"
    topic = parse(ours["splade-topic"]["command"])[-1][1]
    worker = parse(ours["splade-worker"]["command"])[-1][1]
    assert topic["name"] == worker["topic"]
    assert topic["partitions"] >= ours["splade-worker"]["deploy"]["replicas"]  # no idle worker at the scale shown
    assert ours["splade-worker"]["depends_on"]["splade-topic"]["condition"] == "service_completed_successfully"
