"""Packaging and shipped files: console script, mapping template, compose file."""
import subprocess
import sys
from pathlib import Path

import yaml

from bridge import mapping
from bridge.stamp import IndexStamp, ModelStamp
from bridge.config import PruneConfig, QuantConfig

REPO = Path(__file__).resolve().parents[1]


def test_console_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "bridge", "--help"], capture_output=True, text=True, check=True).stdout
    for cmd in ("cluster", "index", "ingest", "search", "expand", "eval", "model", "demo"):
        assert f"  {cmd} " in out


def test_mapping_body_is_stamped_and_filled():
    stamp = ModelStamp(model="m", revision="r", query_model="m", query_revision="r")
    cfg = mapping.IndexConfig(vector_field="vec", text_fields=("body",), exclude_vector_from_source=True,
                              replicas=0, prune=PruneConfig(top_k=100), quant=QuantConfig(kind="int", scale=50))
    body = mapping.build(cfg, stamp)
    assert body["mappings"]["properties"] == {"vec": {"type": "rank_features"}, "body": {"type": "text"},
                                              "content_hash": {"type": "keyword"}}
    assert body["mappings"]["_source"] == {"excludes": ["vec"]}
    assert body["settings"]["index"] == {"number_of_shards": 1, "number_of_replicas": 0}
    meta = body["mappings"]["_meta"]["splade_bridge"]
    assert meta["model"] == {"model": "m", "revision": "r", "query_model": "m", "query_revision": "r",
                             "pooling": "max", "activation": "log1p_relu", "precision": "fp32"}
    assert meta["pruning"] == {"top_k": 100}
    assert meta["quantization"] == {"kind": "int", "scale": 50, "floor": 0.0} and meta["key_codec"] == "pct-dot-v1"
    index, typed = IndexStamp.from_mapping({"idx": {"mappings": body["mappings"]}})
    assert index == "idx" and typed.to_meta() == meta and typed.model == stamp and typed.scale == 50


def test_docker_compose_is_valid_with_pinned_images_and_health_checks():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"opensearch", "opensearch3", "elasticsearch", "splade-serve", "kafka", "splade-worker"} <= set(services)
    assert services["kafka"]["image"] == "apache/kafka:4.3.1"  # the version `splade-bridge kafka up` runs
    assert services["splade-serve"]["build"] == "." and (REPO / "Dockerfile").exists()
    jobs = {dep for svc in services.values() for dep, cond in (svc.get("depends_on") or {}).items()
            if cond.get("condition") == "service_completed_successfully"}  # one-shot: it ends, nothing to probe
    assert jobs == {"splade-topic"}
    for name, svc in services.items():
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), name
        assert name in jobs or "test" in svc["healthcheck"], name
    # the versions the suite runs live (scripts/test.sh), not others
    test_sh = (REPO / "scripts" / "test.sh").read_text()
    assert services["opensearch"]["image"].split(":")[1] == "2.19.6"  # cluster up's default
    for name in ("opensearch3", "elasticsearch"):
        assert f"--server-version {services[name]['image'].split(':')[1]}" in test_sh, name
    for name in ("splade-serve", "splade-worker"):
        assert services[name]["command"][0] != "splade-bridge"  # the image's ENTRYPOINT already is
        assert all(v.endswith(":/home/splade/.cache/huggingface") for v in services[name]["volumes"])


def test_dockerfile_caches_dependencies_runs_unprivileged_with_its_caches_and_no_single_port_probe():
    lines = [ln.strip() for ln in (REPO / "Dockerfile").read_text().splitlines() if ln.strip()
             and not ln.startswith("#")]
    text = "\n".join(lines)
    deps = next(i for i, ln in enumerate(lines) if "requirements.txt" in ln)
    source = next(i for i, ln in enumerate(lines) if ln.startswith("COPY bridge"))
    assert deps < source  # dependencies are installed before the source is copied: their layer is cached
    assert "download.pytorch.org/whl/cpu" in text  # CPU torch for a CPU service
    assert "\nUSER splade" in text and "useradd" in text
    # a volume mounted over the cache is created owned by the image's user only if the directory exists, so owned
    assert "mkdir -p /home/splade/.cache/huggingface" in text and "chown -R splade:splade /home/splade/.cache" in text
    for extra in ("serve", "kafka", "onnx", "elasticsearch", "aws"):  # auto runs ONNX; the es service is reachable
        assert f"o['{extra}']" in text, extra
    # serve and workers answer on different ports: each deployment probes its own (compose, deploy/), not the image
    assert "HEALTHCHECK" not in text and "BRIDGE_WORKER_METRICS_HOST=0.0.0.0" in text


def test_every_environment_variable_is_documented_once():
    """Each variable the code or the scripts read appears in exactly one row of the README's tables."""
    import re

    sources = [*REPO.glob("bridge/**/*.py"), *REPO.glob("tests/*.py"), *REPO.glob("scripts/*.sh"), REPO / ".ci/run"]
    text = "\n".join(p.read_text() for p in sources)
    names = set(re.findall(r'(?:environ(?:\.get|\.setdefault)?[(\[]|envvar=|getenv\(|secret_from_env\(|'
                           r'_VARIABLE = )"([A-Z][A-Z0-9_]+)"', text))
    names |= {n + "_FILE" for n in re.findall(r'secret_from_env\("([A-Z_]+)"\)', text)}
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", text))
    # set by the CLI for libraries, or the system's own
    names -= {"PATH", "PATH_INFO", "XDG_CACHE_HOME", "TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS"}
    # the key cells: "flag | env | default" rows name it in the 2nd cell, "variable | what it does" rows in the 1st
    rows = [" ".join(line.split("|")[1:3]) for line in (REPO / "README.md").read_text().splitlines()
            if line.startswith("| ")]
    assert len(names) > 25
    for name in sorted(names):
        count = sum(len(re.findall(rf"`{name}`", cell)) for cell in rows)
        assert count == 1, f"{name} is documented in {count} rows of the README's tables"
