"""Score parity on the whole SciFact corpus, on every live engine: the cluster's top-10 equals exact
SPLADE scoring of the same stored vectors."""
import time

import numpy as np
import pytest

from bridge import evaluation, indexing, mapping, records
from bridge.connection.client import connect as make_client
from bridge.config import ConnectionConfig
from bridge.searcher import Searcher, SearchOptions
from bridge.stamp import IndexStamp
from tests.engines import ENGINES, engine_url

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.slow]

TOLERANCE = 0.005  # Lucene keeps 9 significant bits per stored value (<= 0.39% each)
INDEX = "test-scifact-parity"


class CachingEncoder:
    """The real encoder, memoised by text: every engine goes through the whole ingest pipeline, the
    corpus is encoded once."""

    def __init__(self, real):
        self.real, self.cache = real, {}
        self.vocab, self.stamp = real.vocab, real.stamp

    def encode_documents(self, texts):
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        self.cache.update(zip(todo, self.real.encode_documents(todo)))
        return [self.cache[t] for t in texts]

    def encode_query(self, texts):
        return self.real.encode_query(texts)

    def tokens(self, vec):
        return self.real.tokens(vec)


@pytest.fixture(scope="module")
def caching_encoder(encoder):
    return CachingEncoder(encoder)


@pytest.fixture(scope="module", params=list(ENGINES))
def engine(request, caching_encoder, scifact_dir):
    url = engine_url(request.param)
    client = make_client(ConnectionConfig(urls=(url,), timeout=120))
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    body = mapping.build(mapping.IndexConfig(), caching_encoder.stamp)
    client.indices.create(index=INDEX, body=body)
    meta = IndexStamp.from_meta(body["mappings"]["_meta"][mapping.META_KEY])
    with open(scifact_dir / "corpus.jsonl", "rb") as lines:
        summary = indexing.run(client, caching_encoder, INDEX, records.read_jsonl(lines), meta)
    print(f"\n{request.param}: ingested {summary.indexed} docs in {summary.seconds:.1f}s "
          f"({summary.docs_per_s:.1f} docs/s)")
    assert (summary.read, summary.indexed, summary.failed) == (5183, 5183, 0)
    assert client.count(index=INDEX)["count"] == 5183
    yield request.param, client
    client.indices.delete(index=INDEX, ignore_unavailable=True)


def test_top10_and_scores_match_exact_splade(engine, caching_encoder, scifact_dir):
    name, client = engine
    collection = evaluation.load_beir(scifact_dir, "test")
    searcher = Searcher(client, caching_encoder, INDEX)
    vectors = evaluation.StoredVectors(client, INDEX, searcher.field)
    assert len(vectors.ids) == 5183
    queries = list(collection.queries.items())
    assert len(queries) >= 50
    latencies, swaps = [], 0
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
    print(f"\n{name} parity: {len(queries)} queries, {swaps} near-tie swaps; "
          f"expand+search p50 {1000 * float(np.median(latencies)):.1f} ms")


def test_splade_ndcg_matches_exact_and_bm25_matches_beir(engine, caching_encoder, scifact_dir):
    name, client = engine
    collection = evaluation.load_beir(scifact_dir, "test")
    searcher = Searcher(client, caching_encoder, INDEX)
    results, _ = evaluation.evaluate(client, searcher, collection, ["bm25", "splade", "exact"], ["nDCG@10"])
    print(f"\n{name} SciFact test nDCG@10: {results}")
    splade, exact, bm25 = (results[m]["nDCG@10"] for m in ("splade", "exact", "bm25"))
    assert splade >= 0.995 * exact
    assert abs(bm25 - 0.665) <= 0.02  # the published BEIR BM25 figure
    assert splade > 0.5
