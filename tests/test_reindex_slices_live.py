"""A reindex shared by processes (live): two `reindex --slice I/2` processes build the same index, document for
document, as one process does; a leader whose other slice never comes copies it itself; slices of another count or
without a leader are refused. Speed against one process: benchmarks/reindex_slices.py."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from bridge import catchup, indexing, lease, mapping, reindexing, slices
from bridge.actions import HASH_FIELD
from bridge.errors import ReindexError
from bridge.lease import LOCKS
from bridge.scan import Slice
from bridge.stamp import IndexStamp
from tests.conftest import REPO, load_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.model]

N = 800


@pytest.fixture(scope="module")
def source(client, encoder, scifact_dir):
    """800 SciFact documents in a 2-shard index (slices are cut within shards)."""
    name = f"sl-src-{uuid.uuid4().hex[:8]}"
    body = mapping.build(mapping.IndexConfig(shards=2), encoder.stamp)
    client.indices.create(index=name, body=body)
    stamp = IndexStamp.from_meta(body["mappings"]["_meta"][mapping.META_KEY])
    assert indexing.run(client, encoder, name, iter(load_jsonl(scifact_dir / "corpus.jsonl", N)), stamp).indexed == N
    yield name
    client.indices.delete(index=f"{name},sl-*-{name[-8:]}*", ignore_unavailable=True)


def _hashes(client, index: str) -> set[tuple[str, str]]:
    return {(d.id, d.source.get(HASH_FIELD)) for d in catchup.ids_in_order(client, index, [HASH_FIELD])}


def _reindex(node_url: str, source: str, alias: str, part: str, log) -> subprocess.Popen:
    args = [sys.executable, "-m", "bridge", "-v", "--url", node_url, "reindex", "--source", source, "--alias", alias,
            "--slice", part, "--lease", "20", "--window", "64", "--format", "json"]
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)


def test_two_processes_build_what_one_builds(client, encoder, source, node_url, tmp_path):
    one = f"sl-one-{source[-8:]}"
    summary = reindexing.run(client, encoder, reindexing.plan(client, source, one, encoder),
                             indexing.IngestConfig(window=64, chunk_size=64, concurrency=1, refresh=False))
    assert summary.swapped
    single = _hashes(client, summary.plan["target"])
    assert len(single) == N and all(h for _, h in single)

    two = f"sl-two-{source[-8:]}"
    logs = [open(tmp_path / f"slice{i}.log", "w") for i in range(2)]
    follower = _reindex(node_url, source, two, "1/2", logs[1])  # first: it waits for slice 0's index
    time.sleep(1.0)
    leader = _reindex(node_url, source, two, "0/2", logs[0])
    outs = [p.communicate(timeout=600)[0] for p in (leader, follower)]
    for i, p in enumerate((leader, follower)):
        assert p.returncode == 0, (tmp_path / f"slice{i}.log").read_text()[-3000:]
    led, followed = (json.loads(o) for o in outs)
    assert led["swapped"] and not followed["swapped"]
    assert followed["plan"]["target"] == led["plan"]["target"]
    assert led["ingest"]["slices_taken_over"] == 0
    # each process encoded its own part: together every document once
    assert 0 < followed["ingest"]["encoded"] < N and led["ingest"]["encoded"] + followed["ingest"]["encoded"] == N
    assert _hashes(client, led["plan"]["target"]) == single
    assert lease.read(client, [two, *slices.others(two, 2)]) == {}  # the records are cleared


def test_a_slice_nobody_runs_is_copied_by_the_leader(client, encoder, source):
    solo = f"sl-solo-{source[-8:]}"
    summary = reindexing.run(client, encoder, reindexing.plan(client, source, solo, encoder),
                             indexing.IngestConfig(window=64, chunk_size=64, concurrency=1, refresh=False),
                             catch=reindexing.CatchUpConfig(lease_seconds=2), part=Slice(0, 2))
    assert summary.swapped and summary.ingest["slices_taken_over"] == 1
    assert {i for i, _ in _hashes(client, summary.plan["target"])} == {i for i, _ in _hashes(client, source)}


def test_a_slice_without_its_leader_or_with_another_count_is_refused(client, encoder, source):
    alias = f"sl-odd-{source[-8:]}"
    plan = reindexing.plan(client, source, alias, encoder)
    with pytest.raises(ReindexError, match="start slice 0/2"):
        reindexing.run(client, encoder, plan, catch=reindexing.CatchUpConfig(slice_wait_seconds=1), part=Slice(1, 2))
    client.index(index=LOCKS, id=alias, body={"owner": "x", "target": plan.target, "started": time.time(),
                                              "renewed": time.time(), "seconds": 60, "slices": 3, "ready": True},
                 refresh=True)
    try:
        with pytest.raises(ReindexError, match="shared by 3 slices, not 2"):
            reindexing.run(client, encoder, plan, part=Slice(1, 2))
    finally:
        client.delete(index=LOCKS, id=alias, refresh=True)


def test_an_abandoned_target_is_reported_and_deleted_only_when_nothing_uses_it(client, encoder, source, node_url):
    from bridge import api
    from bridge.targets import create_target
    from tests.conftest import cli

    alias = f"sl-gone-{source[-8:]}"
    plan = reindexing.plan(client, source, alias, encoder)
    create_target(client, plan, encoder)  # a reindex that died before it took its lease's record further
    row = next(r for r in api.cluster_status(client)["indices"] if r["index"] == plan.target)
    assert row["reindex_state"] == "copying" and row["abandoned"] is True
    running = lease.Lease(client, alias, 60)
    running.acquire(plan.target)
    try:
        assert next(r for r in api.cluster_status(client)["indices"] if r["index"] == plan.target)["abandoned"] is False
        with pytest.raises(api.ConfigError, match="target of a running reindex"):
            api.delete_index(client, plan.target)
    finally:
        running.release()
    client.indices.update_aliases(body={"actions": [{"add": {"index": plan.target, "alias": alias}}]})
    with pytest.raises(api.ConfigError, match=f"alias {alias} points at"):
        api.delete_index(client, plan.target)
    with pytest.raises(api.ConfigError, match="not one index name"):
        api.delete_index(client, alias)
    client.indices.update_aliases(body={"actions": [{"remove": {"index": plan.target, "alias": alias}}]})
    done = cli("--url", node_url, "index", "delete", plan.target, "--yes")
    assert done.returncode == 0, done.stderr
    assert not client.indices.exists(index=plan.target)


def test_the_id_comparison_under_the_block_reads_only_shards_whose_counts_differ(client, monkeypatch):
    """Same ids in 3-shard indices, then a deletion in the source: only its shard is read. A document its writer
    routed to another shard (whose move can offset a deletion's count), or another shard count: every id is
    compared. The deletion is found each time, the routed document is never taken for a difference."""
    names = [f"sl-ids-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    reads: list = []
    real = catchup.ids_in_order
    monkeypatch.setattr(catchup, "ids_in_order", lambda *a, **k: reads.append(k.get("shard")) or real(*a, **k))
    try:
        for name, shards in zip(names, (3, 3, 3, 1)):
            client.indices.create(index=name, body={"settings": {"index": {"number_of_shards": shards,
                                                                          "number_of_replicas": 0}}})
            lines = "".join(json.dumps({"index": {"_index": name, "_id": f"d{i}"}}) + "\n{}\n" for i in range(300))
            client.bulk(body=lines, refresh=True)
        client.delete(index=names[0], id="d7", refresh=True)
        assert catchup.id_differences(client, (names[0],), names[1]) == ([], ["d7"])
        assert len(reads) == 2 and None not in reads  # one shard of each index
        shard = reads[0]  # d7's
        client.delete(index=names[2], id="d7", refresh=True)
        for name in (names[1], names[3]):
            client.index(index=name, id="routed", body={}, refresh=True)  # the bridge writes without routing
        target = catchup._counts(client, names[1], 3)
        for routing in "abcdefghijklmnop":  # routed so that it offsets the deletion's count in d7's shard
            client.index(index=names[2], id="routed", body={}, routing=routing, refresh=True)
            counts = catchup._counts(client, names[2], 3)
            if counts[shard] == target[shard] and counts != target:  # d7's shard agrees, another does not
                break
            client.delete(index=names[2], id="routed", routing=routing, refresh=True)
        else:
            pytest.fail("no routing put the document into d7's shard")
        reads.clear()
        assert catchup.id_differences(client, (names[2],), names[1]) == ([], ["d7"])
        assert None in reads  # every id compared
        assert catchup.id_differences(client, (names[2],), names[3]) == ([], ["d7"])  # another shard count
    finally:
        client.indices.delete(index=",".join(names), ignore_unavailable=True)


def test_a_takeover_keeps_where_the_catch_up_starts_and_slices_join_only_a_live_leader(client, encoder, source):
    alias, now = f"sl-take-{source[-8:]}", time.time()
    dead = {"owner": "gone", "target": "T1", "started": now - 100, "renewed": 0, "seconds": 5,
            "marks": [[source, 0, 41]], "slices": 2, "ready": True}
    client.index(index=LOCKS, id=alias, body=dead, refresh=True)
    try:
        with pytest.raises(ReindexError, match="became ready"):  # a dead leader's record is not joined
            slices.join(client, alias, Slice(1, 2), wait_seconds=0)
        first = lease.Lease(client, alias, 5)
        assert first.acquire("T1")["marks"] == [[source, 0, 41]]
        first.release(keep={"renewed": 0})  # it dies too, before recording anything
        second = lease.Lease(client, alias, 5)
        assert second.acquire("T1")["marks"] == [[source, 0, 41]]  # carried through both takeovers
        assert lease.read(client, [alias])[alias]["marks"] == [[source, 0, 41]]
        second.release(keep={"renewed": 0})
        third = lease.Lease(client, alias, 5)
        third.acquire("T2")
        assert "marks" not in lease.read(client, [alias])[alias]  # another target: nothing carried
        third.release()
    finally:
        if lease.read(client, [alias]):
            client.delete(index=LOCKS, id=alias, refresh=True)
