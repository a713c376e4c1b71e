"""Cluster faults against real nodes of their own (started here, killed here): nothing lost, nothing
duplicated, and the retries are counted."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import CLI, REPO, cli
from tests.faults import fault_port, get, node, report, stored_checksum, wait_for, write_titles
from tests.proxy import AuthProxy

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.model]


@pytest.fixture(scope="module")
def titles(tmp_path_factory, scifact_dir, tiny_model):
    path = tmp_path_factory.mktemp("faults") / "titles.jsonl"
    ids = write_titles(path, scifact_dir / "corpus.jsonl")
    assert len(ids) >= 5000
    return path, ids


def _client(url: str):
    from bridge.connection.client import connect as make_client
    from bridge.config import ConnectionConfig

    return make_client(ConnectionConfig(urls=(url,), timeout=60))


def _count(url: str, index: str) -> int:
    try:
        return get(url, f"/{index}/_count")["count"]
    except Exception:
        return 0


@pytest.fixture(scope="module")
def kill_node(titles):
    """A node of its own (it gets killed) holding a fault-free reference ingest of the titles."""
    path, ids = titles
    port = fault_port(5)
    url = node("up", port)["url"]
    client = _client(url)
    try:
        for index in ("kill-reference", "kill-faulty", "kill-resumed"):
            client.indices.delete(index=index, ignore_unavailable=True)
        ref = cli("--url", url, "ingest", "kill-reference", *_ingest_args(path))
        assert ref.returncode == 0, ref.stderr[-2000:]
        expected, n_ref, ref_ids = stored_checksum(client, "kill-reference")
        assert n_ref == len(ids) and ref_ids == set(ids)
        yield {"url": url, "port": port, "client": client, "expected": expected}
    finally:
        node("down", port)


def _ingest_args(path) -> list[str]:
    return [str(path), "--model", "splade-tiny", "--text-field", "title", "--format", "json"]


def _start_ingest(url: str, index: str, path, log_path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*CLI, "--url", url, *extra, "ingest", index, *_ingest_args(path)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=open(log_path, "w"), text=True)


def _kill_when_stored(node_info: dict, index: str, at_least: int, total: int) -> int:
    stored = wait_for(lambda: (lambda n: n if n >= at_least else 0)(_count(node_info["url"], index)), 300)
    os.kill(node("status", node_info["port"])["pid"], signal.SIGKILL)
    assert stored < total, "the ingest finished before the kill"
    return stored


def test_node_killed_and_restarted_during_ingest(titles, kill_node, tmp_path):
    """SIGKILL the node while 5,183 documents stream in, restart it: the same ingest command rides it out
    (retries with backoff), and the index equals a fault-free run's, document by document."""
    path, ids = titles
    proc = _start_ingest(kill_node["url"], "kill-faulty", path, tmp_path / "faulty.log")
    killed_at = _kill_when_stored(kill_node, "kill-faulty", 1500, len(ids))
    time.sleep(2)  # the ingest meets a dead node (connection refused) before it comes back
    node("up", kill_node["port"])
    out, _ = proc.communicate(timeout=400)
    stderr = (tmp_path / "faulty.log").read_text()
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads(out)
    assert summary["request_retries"] >= 1, "the kill was not noticed"
    assert "retrying in" in stderr and "Traceback" not in stderr
    assert (summary["read"], summary["indexed"], summary["failed"]) == (len(ids), len(ids), 0)

    checksum, n, got = stored_checksum(kill_node["client"], "kill-faulty")
    count = _count(kill_node["url"], "kill-faulty")
    report("node SIGKILL mid-ingest, restarted 2 s later", documents=len(ids), stored_when_killed=killed_at,
           request_retries=summary["request_retries"], document_resends=summary["document_resends"],
           lost=len(set(ids) - got), duplicated=count - len(got), checksum_equal=checksum == kill_node["expected"],
           seconds=round(summary["seconds"], 1))
    assert got == set(ids), "lost documents"
    assert n == len(ids) == count, "duplicated documents"
    assert checksum == kill_node["expected"], "stored vectors differ from the fault-free run"


def test_ingest_gives_up_then_resumes_with_skip_unchanged(titles, kill_node, tmp_path):
    """The node stays down past --retry-for: the ingest stops with one line saying what was indexed and
    how to continue (exit 2); after the restart, rerunning with --skip-unchanged completes it."""
    path, ids = titles
    proc = _start_ingest(kill_node["url"], "kill-resumed", path, tmp_path / "first.log", "--retry-for", "4")
    stored = _kill_when_stored(kill_node, "kill-resumed", 1500, len(ids))
    out, _ = proc.communicate(timeout=120)
    stderr = (tmp_path / "first.log").read_text()
    assert proc.returncode == 2 and "Traceback" not in stderr, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot reach the cluster") and "rerun with --skip-unchanged" in last, last
    indexed_before = int(last.split("ingest stopped after ")[1].split(" ")[0])
    assert indexed_before >= stored

    node("up", kill_node["port"])
    again = cli("--url", kill_node["url"], "ingest", "kill-resumed", *_ingest_args(path), "--skip-unchanged")
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout)
    assert summary["skipped_unchanged"] >= indexed_before
    assert summary["skipped_unchanged"] + summary["encoded"] == len(ids) and summary["failed"] == 0
    checksum, n, got = stored_checksum(kill_node["client"], "kill-resumed")
    count = _count(kill_node["url"], "kill-resumed")
    report("node down past --retry-for 4: ingest exits 2, rerun --skip-unchanged", documents=len(ids),
           stored_when_killed=stored, indexed_before_giving_up=indexed_before,
           skipped_on_rerun=summary["skipped_unchanged"], encoded_on_rerun=summary["encoded"],
           lost=len(set(ids) - got), duplicated=count - len(got), checksum_equal=checksum == kill_node["expected"])
    assert got == set(ids) and n == len(ids) == count
    assert checksum == kill_node["expected"]


def test_bulk_request_timeouts_are_resent_without_duplicates(node_url, client, titles, tmp_path):
    """Every third bulk request is held past the client's timeout and still lands: the resend overwrites
    (same _id), so the timed-out-but-applied request leaves no duplicate."""
    path, ids = titles
    subset = tmp_path / "subset.jsonl"
    subset.write_text("".join(path.read_text().splitlines(keepends=True)[:600]))
    index = "timeouts-test"
    client.indices.delete(index=index, ignore_unavailable=True)
    try:
        created = cli("--url", node_url, "index", "create", index, "--model", "splade-tiny", "--text-field", "title")
        assert created.returncode == 0, created.stderr  # made directly: only bulk requests meet the proxy's delays
        with AuthProxy(node_url, slow_bulk_every=3, slow_seconds=4) as proxy:
            out = cli("--url", proxy.url, "--timeout", "2", "ingest", index, *_ingest_args(subset), "--window", "50",
                      "--chunk-size", "50", "--concurrency", "1")
        assert out.returncode == 0, out.stderr[-2000:]
        summary = json.loads(out.stdout)
        assert proxy.slowed >= 3 and summary["request_retries"] >= proxy.slowed
        assert (summary["indexed"], summary["failed"]) == (600, 0)
        client.indices.refresh(index=index)
        checksum, n, got = stored_checksum(client, index)
        assert got == set(ids[:600]) and n == 600 == client.count(index=index)["count"]
        versions = client.search(index=index, body={"size": 600, "version": True, "_source": False})
        twice = sum(h["_version"] >= 2 for h in versions["hits"]["hits"])
        report("every 3rd bulk request held 4 s past a 2 s timeout, then applied", documents=600,
               slowed_requests=proxy.slowed, request_retries=summary["request_retries"],
               documents_applied_twice=twice, lost=len(set(ids[:600]) - got), duplicated=n - len(got))
        assert twice >= 1  # applied twice, stored once
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)


def test_bulk_rejections_are_resent_and_counted(titles):
    """A node with one write thread and a queue of one, a 4-shard index, 8 concurrent bulk senders:
    the node rejects shard writes (429), every document still lands once, the resends are reported,
    and the documents held in memory stay under the bound."""
    path, ids = titles
    port = fault_port(6)
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
        count = _count(url, "throttled")
        report("write pool 1 thread + queue 1, 4 shards, --concurrency 8", documents=len(ids),
               shard_writes_rejected=rejected, document_resends=summary["document_resends"],
               max_in_flight=summary["max_in_flight"], bound=(queue_windows + concurrency + 1) * window,
               lost=len(set(ids) - got), duplicated=count - len(got), seconds=round(summary["seconds"], 1))
        assert got == set(ids) and n == len(ids) == count
        assert 0 < summary["max_in_flight"] <= (queue_windows + concurrency + 1) * window
        assert "Connection pool is full" not in out.stderr
    finally:
        node("down", port)


def _write_rejections(stats: dict) -> int:
    return sum(n["thread_pool"]["write"]["rejected"] for n in stats["nodes"].values())
