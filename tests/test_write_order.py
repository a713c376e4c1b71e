"""Per-id order through the pipeline: records of one id reach the cluster in input order whatever the window
and the concurrency (a property test against a fake cluster whose requests finish in random order), and the
live node ends as applying the file in order."""
import json
import random
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bridge import pipeline
from bridge.stamp import IndexStamp
from tests.test_ingest_stages import MODEL, FakeEncoder

records = st.lists(st.tuples(st.sampled_from("abcde"), st.booleans()), min_size=1, max_size=40)


class SlowCluster:
    """Applies each bulk request's actions in order, after a random delay: concurrent requests race."""

    def __init__(self, seed: int):
        self.docs: dict[str, str] = {}
        self.lock = threading.Lock()
        self.random = random.Random(seed)

    def sink(self, actions):
        time.sleep(self.random.uniform(0, 0.004))
        out = []
        with self.lock:
            for a in actions:
                if a["_op_type"] == "delete":
                    self.docs.pop(a["_id"], None)
                    out.append((True, {"delete": {"_id": a["_id"], "status": 200}}))
                else:
                    self.docs[a["_id"]] = a["_source"]["text"]
                    out.append((True, {"index": {"_id": a["_id"], "status": 201}}))
        return out


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=records, window=st.integers(1, 4), concurrency=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_records_of_one_id_reach_the_cluster_in_input_order(ops, window, concurrency, seed):
    recs, expected = [], {}
    for n, (doc_id, delete) in enumerate(ops, 1):
        if delete:
            recs.append({"_id": doc_id, "_deleted": True})
            expected.pop(doc_id, None)
        else:
            recs.append({"_id": doc_id, "text": f"version {n}"})
            expected[doc_id] = f"version {n}"
    cluster = SlowCluster(seed)
    cfg = pipeline.IngestConfig(window=window, concurrency=concurrency, queue_windows=8, unique_ids=False)
    summary = pipeline.run(recs, FakeEncoder(), "idx", IndexStamp(model=MODEL), pipeline.Edges(sink=cluster.sink), cfg)
    assert summary.read == len(recs)
    assert cluster.docs == expected


@pytest.mark.integration
@pytest.mark.model
def test_a_file_of_mixed_records_ends_as_applied_in_order(node_url, client, index_name, tmp_path):
    """Live: 1,024 documents, then deletions of 64 of them and of 64 never indexed, re-creations of 32 deleted
    ones, in one file read with small windows and high concurrency: the index ends as the file says."""
    from tests.conftest import cli

    lines, expected = [], {}
    for i in range(1024):
        lines.append({"_id": f"d{i}", "title": f"document {i}", "text": f"text of document number {i}"})
        expected[f"d{i}"] = lines[-1]["text"]
    for i in range(0, 1024, 16):
        lines.append({"_id": f"d{i}", "_deleted": True})
        expected.pop(f"d{i}")
        lines.append({"_id": f"never{i}", "_deleted": True})
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    proc = cli("--url", node_url, "ingest", index_name, str(path), "--model", "splade-tiny", "--window", "32",
               "--chunk-size", "16", "--concurrency", "16", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    client.indices.refresh(index=index_name)
    assert client.count(index=index_name)["count"] == len(expected)
    found = client.mget(index=index_name, body={"ids": [f"d{i}" for i in range(0, 1024, 16)]})["docs"]
    assert not any(d["found"] for d in found)
