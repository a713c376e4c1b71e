"""Score parity on the whole SciFact corpus: the cluster's top-10 equals exact SPLADE scoring."""
import time

import numpy as np
import pytest

from bridge import evaluate, ingest, mapping
from bridge.search import Searcher, SearchOptions
from tests.conftest import load_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.slow]

TOLERANCE = 0.005  # Lucene keeps 9 significant bits per stored value (<= 0.39% each)


@pytest.fixture(scope="module")
def scifact_index(client, encoder, scifact_dir):
    name = "test-scifact-parity"
    client.indices.delete(index=name, ignore_unavailable=True)
    body = mapping.build(mapping.IndexConfig(), encoder.stamp)
    client.indices.create(index=name, body=body)
    meta = body["mappings"]["_meta"][mapping.META_KEY]
    with open(scifact_dir / "corpus.jsonl", "rb") as lines:
        summary = ingest.run(client, encoder, name, ingest.read_jsonl(lines), meta)
    print(f"\nSciFact ingest: {summary.indexed} docs in {summary.seconds:.1f}s = {summary.docs_per_s:.1f} docs/s")
    assert (summary.read, summary.indexed, summary.failed) == (5183, 5183, 0)
    assert client.count(index=name)["count"] == 5183
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


def test_top10_and_scores_match_exact_splade(client, encoder, scifact_index, scifact_dir):
    collection = evaluate.load_beir(scifact_dir, "test")
    searcher = Searcher(client, encoder, scifact_index)
    vectors = evaluate.StoredVectors(client, scifact_index, searcher.field)
    assert len(vectors.ids) == 5183
    queries = list(collection.queries.items())
    assert len(queries) >= 50
    latencies, checked, swaps = [], 0, 0
    for qid, text in queries:
        _, used, _ = searcher.build(text)
        exact = vectors.scores(used)
        started = time.perf_counter()
        hits = searcher.search(text, SearchOptions(size=10, source=False))
        latencies.append(time.perf_counter() - started)
        order = np.argsort(-exact, kind="stable")[:10]
        exact_top = [float(exact[i]) for i in order]
        exact_of = dict(zip(vectors.ids, exact.tolist()))
        assert len(hits) == min(10, int((exact > 0).sum()))
        for rank, hit in enumerate(hits):
            # every returned score equals the exact score of that document within 0.5%
            assert hit.score == pytest.approx(exact_of[hit.id], rel=TOLERANCE), (qid, hit.id)
            # and the document at each rank is the exact one, or a near-tie (< 0.5% apart) swapped with it
            if hit.id != vectors.ids[order[rank]]:
                swaps += 1
                assert exact_of[hit.id] == pytest.approx(exact_top[rank], rel=TOLERANCE), (qid, rank)
        checked += 1
    p50 = 1000 * float(np.median(latencies))
    print(f"\nparity: {checked} queries, {swaps} near-tie swaps; search+expand p50 {p50:.1f} ms")
    assert checked == len(queries)


def test_splade_ndcg_matches_exact_and_bm25_matches_beir(client, encoder, scifact_index,
                                                                            scifact_dir):
    collection = evaluate.load_beir(scifact_dir, "test")
    searcher = Searcher(client, encoder, scifact_index)
    results, _ = evaluate.evaluate(client, searcher, collection, ["bm25", "splade", "exact"], ["nDCG@10"])
    print(f"\nSciFact test nDCG@10: {results}")
    splade, exact, bm25 = (results[m]["nDCG@10"] for m in ("splade", "exact", "bm25"))
    assert splade >= 0.995 * exact
    assert abs(bm25 - 0.665) <= 0.02  # the published BEIR BM25 figure
    assert splade > 0.5
