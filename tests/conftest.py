"""Shared fixtures: the real node (BRIDGE_URL, started by scripts/test.sh) and the offline SPLADE-tiny."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
SAMPLE = REPO / "bridge" / "samples" / "scifact-200.jsonl"
CLI = [sys.executable, "-m", "bridge"]


def cli(*args: str, env: dict | None = None, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """``splade-bridge ARGS`` in a subprocess (text output captured; ``input=``, ``cwd=`` pass through)."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=timeout, cwd=kw.pop("cwd", REPO), **kw)


def unavailable(msg: str):
    """A missing node or dataset fails the run in CI (CI=true) and skips the test elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return "version" in json.loads(r.read())
    except Exception:
        return False


@pytest.fixture(scope="session")
def node_url() -> str:
    url = os.environ.get("BRIDGE_URL", "http://127.0.0.1:9200").split(",")[0]
    if not reachable(url):
        unavailable(f"no OpenSearch node at {url} (start one with: splade-bridge cluster up)")
    return url


@pytest.fixture(scope="session")
def client(node_url):
    from bridge.connection.client import connect as make_client
    from bridge.config import ConnectionConfig

    return make_client(ConnectionConfig(urls=(node_url,), timeout=120))


@pytest.fixture
def index_name(client):
    """A fresh index name, deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    from bridge.model_store import fetch_tiny

    return fetch_tiny()


@pytest.fixture(scope="session")
def encoder(tiny_model):
    from bridge.config import EncoderConfig
    from bridge.encoder import SpladeEncoder

    # windows max-pooled: the flat rank_features layout these tests read and score by hand; passage mode (the
    # default) has its own tests (test_passages*.py) and is what every CLI-driven test runs
    return SpladeEncoder(EncoderConfig(model="splade-tiny", threads=2, long_documents="window"))


def load_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
                if limit is not None and len(out) >= limit:
                    break
    return out


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    path = DATASETS / "scifact"
    if not (path / "corpus.jsonl").exists():
        unavailable(f"{path} is missing: CI needs ../shared/datasets/scifact")
    return path


@pytest.fixture(scope="session")
def broker() -> str:
    """The Kafka broker scripts/test.sh starts (BRIDGE_KAFKA)."""
    from confluent_kafka.admin import AdminClient

    from tests.streams import bootstrap

    try:
        AdminClient({"bootstrap.servers": bootstrap()}).list_topics(timeout=10)
    except Exception as exc:
        unavailable(f"no Kafka broker at {bootstrap()} ({exc}); start one with: splade-bridge kafka up")
    return bootstrap()
