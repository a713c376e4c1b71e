"""A 3-node OpenSearch cluster (``cluster up --nodes 3``), an index with 3 shards and 1 replica: a data node
SIGKILLed while a stream worker ingests and searches run. Ingest finishes with nothing lost; every search
answers, and a partial one says so."""
import os
import signal
import threading
import time

import pytest

import bridge
from bridge.cluster.local import members
from tests.faults import fault_port, get, report, stored_checksum, wait_for
from tests.streams import finish, group_lag, new_topic, produce, running, start_worker, stop_worker
from tests.test_worker_live import count, titles

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.kafka, pytest.mark.faults,
              pytest.mark.usefixtures("broker")]


@pytest.fixture(scope="module")
def cluster():
    spec = bridge.NodeSpec(port=fault_port(20), nodes=3)
    info = bridge.start_node(spec, timeout=300)
    yield spec, info.url
    bridge.stop_node(spec)


def test_data_node_killed_during_worker_ingest_and_searches(cluster, encoder):
    spec, url = cluster
    client = bridge.connect(url, timeout=30)
    index, docs = "test-multinode", titles(2000)
    client.indices.delete(index=index, ignore_unavailable=True)
    bridge.create_index(client, index, encoder, bridge.IndexConfig(shards=3, replicas=1))
    wait_for(lambda: client.cluster.health(index=index)["status"] == "green", timeout=120, every=0.5)
    topic = new_topic(3, "multinode")
    produce(topic, ((d["_id"], d) for d in docs))
    searcher = bridge.open_searcher(client, index, encoder=encoder)
    answers, errors, stop = [], [], threading.Event()

    def search_loop():
        while not stop.is_set():
            try:
                hits = searcher.search("cancer cells", bridge.SearchOptions(size=10, source=False))
                answers.append((time.monotonic(), len(hits), hits.partial, dict(hits.shards)))
            except Exception as exc:  # counted: the test requires there be none
                errors.append(repr(exc))
            time.sleep(0.05)

    searching = threading.Thread(target=search_loop, daemon=True)
    searching.start()
    worker = start_worker(url, index, topic, f"g-{topic}", "--batch-size", "200")
    try:
        wait_for(lambda: running(worker) and count(client, index) >= 500, timeout=300, every=0.3)
        manager = get(url.split(",")[0], "/_cat/cluster_manager?format=json")[0]["node"]
        victim = next(m for m in members(spec) if f"node-{m.member}" != manager)
        killed = time.monotonic()
        os.kill(int(victim.pid_file.read_text()), signal.SIGKILL)
        wait_for(lambda: running(worker) and count(client, index) == len(docs)
                 and group_lag(topic, f"g-{topic}") == 0, timeout=600, every=1)
        summary = stop_worker(worker)
    finally:
        stop.set()
        searching.join(30)
        finish(worker)
    _, n, ids = stored_checksum(client, index)
    after = [a for a in answers if a[0] > killed]
    partial = [a for a in after if a[2]]
    health = client.cluster.health(index=index)
    report("multinode_node_killed", documents=len(docs), stored=n, killed=f"node-{victim.member}",
           searches_after_kill=len(after), partial_reported=len(partial), search_errors=len(errors),
           worker=summary, index_health=health["status"], nodes_left=health["number_of_nodes"])
    assert n == len(docs) and ids == {d["_id"] for d in docs}  # nothing lost, nothing twice
    assert not errors, errors[:3]                              # every search answered
    assert len(after) >= 10 and all(hits > 0 for _, hits, _, _ in after)
    for _, _, is_partial, shards in after:                      # never silently partial
        assert is_partial == (shards.get("successful", 0) + shards.get("skipped", 0) < shards.get("total", 0)
                              or bool(shards.get("failed")))
    assert health["number_of_nodes"] == 2
    client.indices.delete(index=index, ignore_unavailable=True)
