"""Kafka consumer-group workers against the real broker and node: scale-out with a worker SIGKILLed
mid-stream, a broker restart, poison messages, deletes, replays. Every check is on what the index holds."""
import json
import signal
import time

import pytest

import bridge
from bridge.cluster.kafka import BrokerSpec
from tests.conftest import DATASETS, unavailable
from tests.faults import compare_vectors, report, stored_checksum, wait_for
from tests.proxy import free_port
from tests.streams import (bootstrap, drain_with_worker, finish, group_lag, log_of, new_topic, produce,
                           read_topic, running, start_worker, stop_worker, worker_metrics, worker_probe)

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.kafka, pytest.mark.usefixtures("broker")]


def titles(limit=None) -> list[dict]:
    docs = []
    with open(DATASETS / "scifact" / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d.get("title", "").strip():
                docs.append({"_id": d["_id"], "title": d["title"]})
            if limit and len(docs) >= limit:
                break
    if not docs:
        unavailable("SciFact is missing from ../shared/datasets")
    return docs


def count(client, index: str) -> int:
    if not client.indices.exists(index=index):
        return 0
    client.indices.refresh(index=index)
    return client.count(index=index)["count"]


def test_three_workers_one_killed_mid_stream(client, node_url):
    docs = titles()
    assert len(docs) >= 5000
    topic, index, reference = new_topic(3, "scale"), "test-workers-scale", "test-workers-reference"
    for name in (index, reference):
        client.indices.delete(index=name, ignore_unavailable=True)
    produce(topic, ((d["_id"], d) for d in docs))
    bridge.ingest(client, reference, docs, model="splade-tiny")  # the plain-ingest reference, in process, in the
    # default long-document mode, as the workers
    group, port = f"g-{topic}", free_port()
    workers = [start_worker(node_url, index, topic, group, "--batch-size", "200", *(("--metrics-port", str(port))
                                                                                   if i == 0 else ()))
               for i in range(3)]
    try:
        ready: list = [None, {}]  # worker 0's /readyz when last seen

        def mid_batch():  # worker 0 has committed work and holds a batch it has not committed
            m = worker_metrics(port)
            ready[:] = worker_probe(port, "/readyz") if m else (None, {})
            indexed = m.get('splade_worker_documents_total{outcome="indexed"}', 0)
            return m if indexed >= 200 and m.get("splade_worker_uncommitted_messages", 0) > 0 else None

        seen = wait_for(mid_batch, timeout=300, every=0.05)
        workers[0].send_signal(signal.SIGKILL)
        assert ready[0] == 200 and ready[1]["ready"] and ready[1]["assigned"], ready
        in_flight = int(seen["splade_worker_uncommitted_messages"])
        killed_at = count(client, index)
        workers[0].wait(30)
        wait_for(lambda: all(running(w) for w in workers[1:]) and group_lag(topic, group) == 0, timeout=600,
                 every=1)
        survivors = [stop_worker(w) for w in workers[1:]]
    finally:
        finish(*workers)
    _, n, ids = stored_checksum(client, index)  # raises if an id comes back twice
    same = compare_vectors(client, index, reference)
    redelivered = sum(s["already_applied"] for s in survivors)
    report("worker_sigkill", documents=len(docs), killed_at=killed_at, stored=n, killed_worker_committed=int(
           seen["splade_worker_messages_consumed_total"]), redelivered=in_flight,
           survivors_consumed=[s["consumed"] for s in survivors], redelivered_already_applied=redelivered,
           survivor_partitions=[sorted(s["partitions"]) for s in survivors],
           max_abs_diff_vs_ingest=same["max_abs_diff"], identical_docs=same["identical_docs"])
    assert n == len(docs) and ids == {d["_id"] for d in docs}  # nothing lost, nothing twice
    # every message was committed exactly once: by the killed worker before it died, or by a survivor
    assert sum(s["consumed"] for s in survivors) + seen["splade_worker_messages_consumed_total"] == len(docs)
    # the same vectors as a plain ingest, to float noise (batches of other sizes change the last bits)
    assert same["ids"] == same["reference_ids"] and same["max_abs_diff"] <= 1e-4
    taken_over = set().union(*(s["partitions"] for s in survivors))
    assert len(taken_over) == 3, "the killed worker's partitions moved to the survivors"
    for name in (index, reference):
        client.indices.delete(index=name, ignore_unavailable=True)


def test_broker_restart_mid_stream(client, node_url):
    docs = titles(1500)
    topic, index = new_topic(3, "restart"), "test-workers-restart"
    client.indices.delete(index=index, ignore_unavailable=True)
    produce(topic, ((d["_id"], d) for d in docs))
    spec = BrokerSpec(port=int(bootstrap().rsplit(":", 1)[1]))
    worker = start_worker(node_url, index, topic, f"g-{topic}", "--batch-size", "100")
    try:
        wait_for(lambda: running(worker) and count(client, index) >= 300, timeout=300, every=0.3)
        assert bridge.stop_broker(spec)
        time.sleep(3)
        bridge.start_broker(spec)
        wait_for(lambda: running(worker) and count(client, index) == len(docs)
                 and group_lag(topic, f"g-{topic}") == 0, timeout=300, every=1)
        summary = stop_worker(worker)
    finally:
        finish(worker)
    _, n, ids = stored_checksum(client, index)
    report("worker_broker_restart", documents=len(docs), stored=n, consumed=summary["consumed"])
    assert n == len(docs) and ids == {d["_id"] for d in docs}
    client.indices.delete(index=index, ignore_unavailable=True)


def test_poison_messages_go_to_the_dead_letter_topic(client, node_url):
    good = titles(60)
    poison = [("p-json", b"{not json"), ("p-array", b"[1, 2]"), ("p-noid", {"title": "no id here"}),
              ("p-empty", {"_id": "p-empty", "title": "   "}), ("p-type", {"_id": "p-type", "title": 42}),
              ("p-utf8", b'{"_id": "p-utf8", "title": "\xff\xfe"}'), (None, None),
              ("p-long", {"_id": "x" * 600, "title": "an id over 512 bytes: the cluster refuses it"})]
    messages = [(d["_id"], d) for d in good[:30]] + poison + [(d["_id"], d) for d in good[30:]]
    topic, index = new_topic(1, "poison"), "test-workers-poison"
    client.indices.delete(index=index, ignore_unavailable=True)
    produce(topic, messages)
    summary = drain_with_worker(node_url, index, topic, f"g-{topic}", "--batch-size", "25")
    dead = read_topic(f"{topic}.deadletter", expect=len(poison), headers=True)
    context = [{k[len("__splade.errors."):]: v.decode() for k, v in h.items()} for _, _, _, h in dead]
    report("worker_poison", good=len(good), poison=len(poison), dead_lettered=len(dead),
           reasons=sorted({c["reason"][:60] for c in context}))
    assert len(dead) == len(poison) == summary["dead_lettered"]
    assert sorted(int(c["offset"]) for c in context) == [30 + i for i in range(len(poison))]  # where each one was
    assert all(c["topic"] == topic and c["partition"] == "0" and c["reason"] and c["stage"] for c in context)
    sent = {k: v for k, v in poison}
    for _, key, value, _ in dead:  # the message itself, whole
        original = sent[key.decode() if key is not None else None]
        assert value == (json.dumps(original).encode() if isinstance(original, dict) else original)
    _, n, ids = stored_checksum(client, index)
    assert n == len(good) and ids == {d["_id"] for d in good}
    client.indices.delete(index=index, ignore_unavailable=True)


def test_dead_letters_replayed_after_the_cause_is_fixed_are_indexed_once(client, node_url):
    """The cluster refuses 10 documents (each brings a new field past the index's field limit); the limit is
    raised, the dead-letter topic replayed: the 10 are indexed, and a second replay writes nothing again."""
    good, topic, index = titles(60), new_topic(1, "replay"), "test-workers-replay"
    client.indices.delete(index=index, ignore_unavailable=True)
    bridge.create_index(client, index, bridge.load_encoder("splade-tiny"), bridge.IndexConfig(text_fields=("title",)))
    client.indices.put_settings(index=index, body={"index": {"mapping": {"total_fields": {"limit": 1}}}})
    poison = [{"_id": f"late-{i}", "title": f"a document with its own field {i}", f"field_{i}": "x"} for i in range(10)]
    produce(topic, [(d["_id"], d) for d in good[:30] + poison + good[30:]])
    first = drain_with_worker(node_url, index, topic, f"g-{topic}", "--text-field", "title")
    assert first["dead_lettered"] == 10 and count(client, index) == 60
    client.indices.put_settings(index=index, body={"index": {"mapping": {"total_fields": {"limit": 1000}}}})
    letters = f"{topic}.deadletter"
    replay = drain_with_worker(node_url, index, letters, f"r1-{topic}", "--text-field", "title",
                               "--dead-letter-topic", f"{letters}.again")
    assert (replay["indexed"], replay["dead_lettered"]) == (10, 0)
    again = drain_with_worker(node_url, index, letters, f"r2-{topic}", "--text-field", "title",
                              "--dead-letter-topic", f"{letters}.again")
    assert (again["indexed"], again["already_applied"]) == (0, 10)  # versioned by their first offsets
    assert count(client, index) == 70
    stored = {h["_id"]: h for h in client.search(index=index, body={"query": {"ids": {"values": [
        d["_id"] for d in poison]}}, "size": 10, "version": True})["hits"]["hits"]}
    assert {i: h["_version"] for i, h in stored.items()} == {d["_id"]: 31 + n for n, d in enumerate(poison)}
    client.indices.delete(index=index, ignore_unavailable=True)


def test_errors_tolerance_none_stops_at_the_first_bad_message_and_on_null_choices(client, node_url):
    """--errors-tolerance none: the worker stops at the bad message (exit 2, naming it), the group's offset is
    that message's, nothing is dead-lettered; --on-null ignore skips a tombstone, fail dead-letters it."""
    good, topic, index = titles(30), new_topic(1, "strict"), "test-workers-strict"
    client.indices.delete(index=index, ignore_unavailable=True)
    produce(topic, [(d["_id"], d) for d in good[:12]] + [("bad", b"{cut short")] + [(d["_id"], d) for d in good[12:]])
    worker = start_worker(node_url, index, topic, f"g-{topic}", "--errors-tolerance", "none", "--batch-size", "5")
    try:
        out, _ = worker.communicate(timeout=300)
    finally:
        finish(worker)
    assert worker.returncode == 2 and f"{topic}[0] offset 12: malformed JSON" in log_of(worker), log_of(worker)
    assert group_lag(topic, f"g-{topic}") == len(good) + 1 - 12  # committed up to the bad message, not past it
    assert read_topic(f"{topic}.deadletter", expect=1, timeout=3) == []
    assert count(client, index) >= 12

    nulls, index2 = new_topic(1, "nulls"), "test-workers-nulls"
    client.indices.delete(index=index2, ignore_unavailable=True)
    produce(nulls, [(d["_id"], d) for d in good[:5]] + [(good[0]["_id"], None)])
    ignored = drain_with_worker(node_url, index2, nulls, f"g1-{nulls}", "--on-null", "ignore")
    assert (ignored["ignored"], count(client, index2)) == (1, 5)  # the tombstone skipped: the document stays
    refused = drain_with_worker(node_url, index2, nulls, f"g2-{nulls}", "--on-null", "fail")
    assert refused["dead_lettered"] == 1 and count(client, index2) == 5
    client.indices.delete(index=f"{index},{index2}", ignore_unavailable=True)


def test_several_topics_or_a_pattern_into_one_index(client, node_url):
    """--topic a,b reads both; --topic ^prefix.* reads every topic it matches but not their dead letters."""
    prefix = f"many-{time.time_ns() % 10**8}"
    good = titles(40)
    first, second = new_topic(1, prefix), new_topic(2, prefix)
    produce(first, [(d["_id"], d) for d in good[:20]] + [("bad", b"{nope")])
    produce(second, [(d["_id"], d) for d in good[20:]])
    listed = drain_with_worker(node_url, "test-workers-many", f"{first},{second}", "g-listed")
    assert (listed["indexed"], listed["dead_lettered"]) == (40, 1)
    assert len(read_topic(f"{first}.deadletter", expect=1)) == 1  # the bad one, beside its own topic
    pattern = drain_with_worker(node_url, "test-workers-many-2", f"^{prefix}-.*", "g-pattern")
    assert (pattern["indexed"], pattern["dead_lettered"]) == (40, 1)  # its dead letters are not read back
    for index in ("test-workers-many", "test-workers-many-2"):
        assert count(client, index) == 40
    client.indices.delete(index="test-workers-many*", ignore_unavailable=True)


def test_deletes_updates_and_replays(client, node_url):
    topic, index = new_topic(1, "deletes"), "test-workers-deletes"
    client.indices.delete(index=index, ignore_unavailable=True)
    produce(topic, [("a", {"_id": "a", "title": "first version of a"}), ("b", {"_id": "b", "title": "b stays"}),
                    ("a", {"_id": "a", "title": "second version of a"}), ("c", {"_id": "c", "title": "c will go"}),
                    ("d", {"_id": "d", "title": "d will go"}), ("e", {"_id": "e", "title": "e old"}),
                    ("e", {"_id": "e", "title": "e new"}), ("c", None),                 # tombstone
                    ("d", {"_id": "d", "_deleted": True}),                               # explicit delete
                    ("a", {"_id": "a", "title": "third version of a"}), ("a", None)])  # update, then delete
    s1 = drain_with_worker(node_url, index, topic, f"g1-{topic}", "--batch-size", "3")

    def state():
        client.indices.refresh(index=index)
        return {d["_id"]: d["_source"]["title"] for d in
                client.search(index=index, body={"query": {"match_all": {}}, "size": 50})["hits"]["hits"]}

    assert state() == {"b": "b stays", "e": "e new"} and s1["deleted"] == 3
    # a redelivery from the start (a new group reads the topic again, as after a crash before any commit):
    # every message is now older than or equal to what the index holds, so nothing changes
    s2 = drain_with_worker(node_url, index, topic, f"g2-{topic}", "--batch-size", "4")
    report("worker_replay", first=s1, replay=s2)
    assert state() == {"b": "b stays", "e": "e new"}  # deleted ones stay deleted, the old e never wins
    assert s2["indexed"] == 0 and s2["already_applied"] + s2["deleted"] == 11
    client.indices.delete(index=index, ignore_unavailable=True)


def test_cluster_down_past_retry_for_pauses_then_resumes():
    from tests.faults import fault_port, node

    docs = titles(800)
    port = fault_port(25)
    url = node("up", port)["url"]
    client = bridge.connect(url)
    topic, index = new_topic(2, "outage"), "test-workers-outage"
    client.indices.delete(index=index, ignore_unavailable=True)  # the node keeps its data between runs
    produce(topic, ((d["_id"], d) for d in docs))
    worker = start_worker(url, index, topic, f"g-{topic}", "--batch-size", "100", "--retry-for", "2")
    try:
        wait_for(lambda: running(worker) and count(client, index) >= 200, timeout=300, every=0.2)
        node("down", port)
        time.sleep(8)  # well past --retry-for: the batch at hand is given up, consumption paused
        assert running(worker) and group_lag(topic, f"g-{topic}") > 0  # nothing committed past acknowledged work
        node("up", port)
        wait_for(lambda: running(worker) and group_lag(topic, f"g-{topic}") == 0, timeout=300, every=0.5)
        summary = stop_worker(worker)
    finally:
        finish(worker)
    _, n, ids = stored_checksum(client, index)
    report("worker_cluster_outage", documents=len(docs), stored=n, rewinds=summary["rewinds"],
           consumed=summary["consumed"], already_applied=summary["already_applied"])
    assert n == len(docs) and ids == {d["_id"] for d in docs}
    assert summary["rewinds"] >= 1 and summary["consumed"] == len(docs)
    client.indices.delete(index=index, ignore_unavailable=True)
    node("down", port)
