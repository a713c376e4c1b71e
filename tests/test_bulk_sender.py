"""Error paths of the bulk sender, with the client's ``bulk`` call replaced (the live behaviour is in
test_faults.py): what is resent, what is counted, when it gives up."""
from __future__ import annotations

import json

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError, TransportError

from bridge.bulk import BulkSender, SendStats
from bridge.config import RetryPolicy
from bridge.stamp import IndexStamp

FAST = RetryPolicy(retry_for=5, initial_backoff=0.01, max_backoff=0.02, max_retries=3)


def _client(answer):
    """A real client object whose ``bulk`` is ``answer(ids) -> {id: status}`` (or raises)."""
    client = OpenSearch(hosts=["http://127.0.0.1:1"])
    client.calls = []

    def bulk(*args, body=None, **kw):
        body = body if body is not None else args[0]  # opensearch-py 2.x passes the body positionally
        lines = body if isinstance(body, list) else body.splitlines()
        ids = [json.loads(line)["index"]["_id"] for line in lines[0::2]]
        client.calls.append(ids)
        statuses = answer(ids)
        items = [{"index": {"_id": i, "status": statuses[i],
                            **({"error": {"type": "x", "reason": "no"}} if statuses[i] >= 300 else {})}}
                 for i in ids]
        return {"errors": any(s >= 300 for s in statuses.values()), "items": items}

    client.bulk = bulk
    return client


def _actions(*ids):
    return [{"_op_type": "index", "_index": "i", "_id": i, "_source": {"t": i}} for i in ids]


def test_transient_request_failures_resend_the_whole_request_and_are_counted():
    failures = iter([ConnectionError("N/A", "refused", None), TransportError(503, "unavailable", {})])

    def answer(ids):
        err = next(failures, None)
        if err:
            raise err
        return {i: 201 for i in ids}

    client, stats = _client(answer), SendStats()
    results = BulkSender(client, FAST, stats).send(_actions("a", "b"))
    assert [ok for ok, _ in results] == [True, True]
    assert stats.request_retries == 2 and client.calls == [["a", "b"]] * 3


def test_throttled_documents_are_resent_alone():
    seen = set()

    def answer(ids):
        out = {i: 201 for i in ids}
        if "b" in ids and "b" not in seen:
            seen.add("b")
            out["b"] = 429
        return out

    client, stats = _client(answer), SendStats()
    results = BulkSender(client, FAST, stats).send(_actions("a", "b", "c"))
    assert [ok for ok, _ in results] == [True, True, True]
    assert client.calls == [["a", "b", "c"], ["b"]] and stats.document_resends == 1


def test_persistent_429_gives_up_after_max_retries_and_reports_the_document():
    client, stats = _client(lambda ids: {i: 429 for i in ids}), SendStats()
    (ok, item), = BulkSender(client, FAST, stats).send(_actions("a"))
    assert not ok and item["index"]["status"] == 429
    assert len(client.calls) == FAST.max_retries + 1 and stats.document_resends == FAST.max_retries


def test_request_refused_whole_is_split_until_the_culprit_stands_alone():
    def answer(ids):
        if "bad" in ids:
            raise TransportError(400, "action_request_validation_exception", {"error": {"reason": "id too long"}})
        return {i: 201 for i in ids}

    client = _client(answer)
    results = BulkSender(client, FAST, SendStats()).send(_actions("a", "b", "bad", "c"))
    assert [ok for ok, _ in results] == [True, True, False, True]
    assert "id too long" in results[2][1]["index"]["error"]


@pytest.mark.model
def test_cluster_gone_past_retry_for_stops_the_ingest_with_what_was_indexed(encoder):
    from bridge import indexing
    from bridge.config import PruneConfig, QuantConfig
    from bridge.mapping import IndexConfig, build

    def answer(ids):
        raise ConnectionError("N/A", "Connection refused", None)

    meta = build(IndexConfig(prune=PruneConfig(), quant=QuantConfig()), encoder.stamp)["mappings"]["_meta"]
    records = [{"_id": str(i), "text": f"document {i}"} for i in range(5)]
    cfg = indexing.IngestConfig(retry=RetryPolicy(retry_for=0.3, initial_backoff=0.05, max_backoff=0.1), refresh=False)
    with pytest.raises(indexing.IngestAborted) as err:
        indexing.run(_client(answer), encoder, "i", records, IndexStamp.from_meta(meta["splade_bridge"]), cfg)
    assert err.value.summary.indexed == 0 and err.value.summary.request_retries >= 1
    assert "cannot reach the cluster" in str(err.value) and err.value.hint == "skip_unchanged"
    assert "--skip-unchanged" not in str(err.value)  # core messages name no flag; the CLI adds its own
