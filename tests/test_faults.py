"""Cluster faults against real nodes of their own (started here, killed here): nothing lost, nothing
duplicated, and the retries are counted."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from faults import CLI, REPO, cli, fault_port, get, node, stored_checksum, wait_for, write_titles

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.model]


@pytest.fixture(scope="module")
def titles(tmp_path_factory, scifact_dir, tiny_model):
    path = tmp_path_factory.mktemp("faults") / "titles.jsonl"
    ids = write_titles(path, scifact_dir / "corpus.jsonl")
    assert len(ids) >= 5000
    return path, ids


def _client(url: str):
    from bridge.client import make_client
    from bridge.config import ConnectionConfig

    return make_client(ConnectionConfig(urls=(url,), timeout=60))


def _count(url: str, index: str) -> int:
    try:
        return get(url, f"/{index}/_count")["count"]
    except Exception:
        return 0


def test_node_killed_and_restarted_during_ingest(titles, tmp_path):
    """SIGKILL the node while 5,183 documents stream in, restart it: the same ingest command rides it out
    (retries with backoff), and the index equals a fault-free run's, document by document."""
    path, ids = titles
    port = fault_port(3)
    url = node("up", port)["url"]
    client = _client(url)
    common = ["ingest", str(path), "--model", "splade-tiny", "--text-field", "title", "--format", "json"]
    try:
        for index in ("kill-reference", "kill-faulty"):
            client.indices.delete(index=index, ignore_unavailable=True)
        ref = cli("--url", url, common[0], "kill-reference", *common[1:])
        assert ref.returncode == 0, ref.stderr[-2000:]
        expected, n_ref, ref_ids = stored_checksum(client, "kill-reference")
        assert n_ref == len(ids) and ref_ids == set(ids)

        log = open(tmp_path / "faulty.log", "w")
        proc = subprocess.Popen([*CLI, "--url", url, common[0], "kill-faulty", *common[1:]], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=log, text=True,
                                env={**os.environ, "HF_HUB_OFFLINE": "1"})
        killed_at = wait_for(lambda: (lambda n: n if n >= 1500 else 0)(_count(url, "kill-faulty")), 300)
        os.kill(node("status", port)["pid"], signal.SIGKILL)
        time.sleep(2)  # the ingest meets a dead node (connection refused) before it comes back
        node("up", port)
        out, _ = proc.communicate(timeout=400)
        log.close()
        stderr = (tmp_path / "faulty.log").read_text()
        assert proc.returncode == 0, stderr[-3000:]
        summary = json.loads(out)
        assert killed_at < len(ids)
        assert summary["request_retries"] >= 1, "the kill was not noticed"
        assert "retrying in" in stderr and "Traceback" not in stderr
        assert (summary["read"], summary["indexed"], summary["failed"]) == (len(ids), len(ids), 0)

        checksum, n, got = stored_checksum(client, "kill-faulty")
        assert got == set(ids), "lost documents"
        assert n == len(ids) == _count(url, "kill-faulty"), "duplicated documents"
        assert checksum == expected, "stored vectors differ from the fault-free run"
    finally:
        node("down", port)


def test_bulk_rejections_are_resent_and_counted(titles):
    """A node with one write thread and a queue of one, a 4-shard index, 8 concurrent bulk senders:
    the node rejects shard writes (429), every document still lands once, the resends are reported,
    and the documents held in memory stay under the bound."""
    path, ids = titles
    port = fault_port(4)
    url = node("up", port, "thread_pool.write.size=1", "thread_pool.write.queue_size=1")["url"]
    client = _client(url)
    window, concurrency, queue_windows = 64, 8, 4
    try:
        client.indices.delete(index="throttled", ignore_unavailable=True)
        created = cli("--url", url, "index", "create", "throttled", "--model", "splade-tiny", "--shards", "4",
                      "--text-field", "title")
        assert created.returncode == 0, created.stderr
        rejected_before = get(url, "/_nodes/stats/thread_pool")
        out = cli("--url", url, "ingest", "throttled", str(path), "--concurrency", str(concurrency),
                  "--window", str(window), "--chunk-size", "16", "--format", "json")
        assert out.returncode == 0, out.stderr[-3000:]
        summary = json.loads(out.stdout)
        rejected = _write_rejections(get(url, "/_nodes/stats/thread_pool")) - _write_rejections(rejected_before)

        assert rejected > 0, "the node never rejected a write: the test did not exercise 429s"
        assert summary["document_resends"] > 0
        assert (summary["indexed"], summary["failed"]) == (len(ids), 0)
        checksum, n, got = stored_checksum(client, "throttled")
        assert got == set(ids) and n == len(ids) == _count(url, "throttled")
        assert 0 < summary["max_in_flight"] <= (queue_windows + concurrency + 1) * window
        assert "Connection pool is full" not in out.stderr
    finally:
        node("down", port)


def _write_rejections(stats: dict) -> int:
    return sum(n["thread_pool"]["write"]["rejected"] for n in stats["nodes"].values())
