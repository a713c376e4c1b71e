"""Score parity on the whole SciFact corpus, on every live engine: the cluster's top-10 equals exact
SPLADE scoring of the same stored vectors. On the node with the neural-search plugin the queries go out as
``neural_sparse``, and its two-phase processor and hybrid query are checked against the standard-DSL forms."""
import time
from dataclasses import replace

import numpy as np
import pytest

from bridge import evaluation
from bridge.fusion import Hybrid
from bridge.searcher import Searcher, SearchOptions
from tests.engines import ENGINES, NEURAL, index_collection

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


@pytest.fixture(scope="module", params=[*ENGINES, NEURAL])
def engine(request, caching_encoder, scifact_dir):
    client, summary = index_collection(request.param, INDEX, caching_encoder, scifact_dir / "corpus.jsonl")
    print(f"\n{request.param}: ingested {summary.indexed} docs in {summary.seconds:.1f}s "
          f"({summary.docs_per_s:.1f} docs/s)")
    assert (summary.read, summary.indexed, summary.failed) == (5183, 5183, 0)
    assert client.count(index=INDEX)["count"] == 5183
    yield request.param, client, ("neural_sparse" if request.param == NEURAL else None)
    client.indices.delete(index=INDEX, ignore_unavailable=True)


def assert_exact_top10(engine, caching_encoder, scifact_dir, opts: SearchOptions) -> None:
    name, client, _ = engine
    collection = evaluation.load_beir(scifact_dir, "test")
    searcher = Searcher(client, caching_encoder, INDEX)
    vectors = evaluation.StoredVectors(client, INDEX, searcher.field)
    assert len(vectors.ids) == 5183
    queries = list(collection.queries.items())
    assert len(queries) >= 50
    latencies, swaps = [], 0
    for qid, text in queries:
        body, used, _ = searcher.build(text, opts)
        if opts.form == "neural_sparse":  # the request really is a neural_sparse query, natively two-phase or not
            assert "neural_sparse" in body["query"]
            assert ("search_pipeline" in body) == (opts.mode == "two-phase")
        exact = vectors.scores(used)
        started = time.perf_counter()
        hits = searcher.search(text, opts)
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
    print(f"\n{name} {opts.form or 'default form'} {opts.mode} parity: {len(queries)} queries, {swaps} near-tie "
          f"swaps; expand+search p50 {1000 * float(np.median(latencies)):.1f} ms")


def test_top10_and_scores_match_exact_splade(engine, caching_encoder, scifact_dir):
    assert_exact_top10(engine, caching_encoder, scifact_dir, SearchOptions(size=10, source=False, form=engine[2]))


def test_splade_ndcg_matches_exact_and_bm25_matches_beir(engine, caching_encoder, scifact_dir):
    name, client, _ = engine
    collection = evaluation.load_beir(scifact_dir, "test")
    searcher = Searcher(client, caching_encoder, INDEX)
    results, _ = evaluation.evaluate(client, searcher, collection, ["bm25", "splade", "exact"], ["nDCG@10"])
    print(f"\n{name} SciFact test nDCG@10: {results}")
    splade, exact, bm25 = (results[m]["nDCG@10"] for m in ("splade", "exact", "bm25"))
    assert splade >= 0.995 * exact
    assert abs(bm25 - 0.665) <= 0.02  # the published BEIR BM25 figure
    assert splade > 0.5


def _same_ranking(a, b, rel: float) -> None:
    """Rank by rank: the same document, or a near-tie (scores within ``rel``) swapped with it."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.id == y.id or x.score == pytest.approx(y.score, rel=rel), (x, y)
        assert x.score == pytest.approx(y.score, rel=rel)


@pytest.mark.parametrize("engine", [NEURAL], indirect=True)
def test_native_two_phase_processor_gives_exact_scores_and_the_rescore_hits(engine, caching_encoder, scifact_dir):
    """The plugin's neural_sparse_two_phase_processor against the standard-DSL rescore and exact scoring."""
    _, client, _ = engine
    searcher = Searcher(client, caching_encoder, INDEX)
    vectors = evaluation.StoredVectors(client, INDEX, searcher.field)
    native = SearchOptions(size=10, source=False, form="neural_sparse", mode="two-phase")
    queries = list(evaluation.load_beir(scifact_dir, "test").queries.values())
    for text in queries:
        _, used, _ = searcher.build(text, native)
        exact_of = dict(zip(vectors.ids, vectors.scores(used).tolist()))
        by_plugin = searcher.search(text, native)
        by_rescore = searcher.search(text, replace(native, native="never"))
        assert (by_plugin.two_phase, by_rescore.two_phase) == ("native", "rescore")
        for hit in by_plugin:  # every hit in the window carries its exact dot product
            assert hit.score == pytest.approx(exact_of[hit.id], rel=TOLERANCE), (text, hit.id)
        _same_ranking(by_plugin, by_rescore, TOLERANCE)
    print(f"\nnative two-phase: {len(queries)} queries, exact scores, same hits as the rescore form")


@pytest.mark.parametrize("engine", [NEURAL], indirect=True)
@pytest.mark.parametrize("method", ["rrf", "norm"])
def test_native_hybrid_query_fuses_as_the_client_does(engine, caching_encoder, scifact_dir, method):
    """OpenSearch's hybrid query + fusion processor against the bridge's client-side fusion of the same two
    requests: RRF scores equal; normalised scores are the arithmetic mean, half the client-side sum."""
    _, client, _ = engine
    searcher = Searcher(client, caching_encoder, INDEX)
    opts = SearchOptions(size=10, source=False, mode="hybrid", hybrid=Hybrid(method=method, depth=100))
    queries = list(evaluation.load_beir(scifact_dir, "test").queries.values())
    scale = 1.0 if method == "rrf" else 2.0
    for text in queries:
        native = searcher.search(text, opts)
        client_side = searcher.search(text, replace(opts, native="never"))
        assert (native.fusion, client_side.fusion) == (f"native {method}", f"client-side {method}")
        assert len(native) == len(client_side) == 10
        for x, y in zip(native, client_side):
            # min-max gives the lowest hit of a side 0.001 rather than 0: allow that much
            assert scale * x.score == pytest.approx(y.score, rel=1e-4, abs=0 if method == "rrf" else 0.0025), text
        # the same documents, up to the order of equal scores (RRF ties often) and the last score's tie group
        cut = client_side[-1].score * (1 + 1e-4) + (0 if method == "rrf" else 0.0025)
        assert {x.id for x in native if scale * x.score > cut} == {y.id for y in client_side if y.score > cut}, text
    print(f"\nnative hybrid {method}: {len(queries)} queries fused as client-side")
