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
                             "pooling": "max", "activation": "log1p_relu"} and meta["pruning"] == {"top_k": 100}
    assert meta["quantization"] == {"kind": "int", "scale": 50, "floor": 0.0} and meta["key_codec"] == "pct-dot-v1"
    index, typed = IndexStamp.from_mapping({"idx": {"mappings": body["mappings"]}})
    assert index == "idx" and typed.to_meta() == meta and typed.model == stamp and typed.scale == 50


def test_docker_compose_is_valid_with_pinned_images_and_health_checks():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"opensearch", "opensearch3", "elasticsearch", "splade-serve", "kafka", "splade-worker"} <= set(services)
    assert services["kafka"]["image"] == "apache/kafka:4.3.1"  # the version `splade-bridge kafka up` runs
    assert services["splade-serve"]["build"] == "." and (REPO / "Dockerfile").exists()
    for name, svc in services.items():
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), name
        assert "test" in svc["healthcheck"], name
    assert services["opensearch"]["image"].split(":")[1].startswith("2.19")
    assert services["opensearch3"]["image"].split(":")[1].startswith("3.")
    assert services["elasticsearch"]["image"].split(":")[1].startswith("8.")
