"""Passage mode's pure parts (``bridge/passages.py`` and where the stamp reaches the mapping, the query and the
stored documents), and the encoder's passages on the real SPLADE-tiny."""
from __future__ import annotations

import numpy as np
import pytest

from bridge import mapping, passages
from bridge.actions import encoded_actions
from bridge.config import EncoderConfig, PruneConfig
from bridge.errors import ConfigError
from bridge.search_options import SearchOptions, TwoPhase, plan_query
from bridge.stamp import IndexStamp, ModelStamp
from bridge.types import Document, Passage, SparseVector

PASSAGES = ModelStamp(model="m", revision="r", long_documents="passages:512:64:64")


def test_the_stamp_says_passages_and_reproduces_the_encoder_options():
    assert PASSAGES.passages and not ModelStamp(model="m", revision="r", long_documents="window:512:64:64").passages
    assert PASSAGES.encoder_options()["long_documents"] == "passages"
    assert PASSAGES.encoder_options()["max_windows"] == 64
    EncoderConfig(long_documents="passages")  # a valid mode
    with pytest.raises(ConfigError):
        EncoderConfig(long_documents="chunks")


def test_the_vector_field_is_nested_passages_with_weights_and_offset():
    body = mapping.build(mapping.IndexConfig(), PASSAGES)
    field = body["mappings"]["properties"]["splade"]
    assert field == {"type": "nested", "properties": {"offset": {"type": "integer"},
                                                      "weights": {"type": "rank_features"}}}
    assert mapping.vector_field_type({"i": body}, "splade") == "rank_features"
    plain = mapping.build(mapping.IndexConfig(), ModelStamp(model="m", revision="r"))
    assert plain["mappings"]["properties"]["splade"] == {"type": "rank_features"}


@pytest.mark.parametrize("form", ["rank_feature", "neural_sparse"])
def test_queries_score_each_passage_and_keep_the_best(form):
    tokens = {"a": 2.0, "b.c": 1.0}
    body, used, _ = plan_query(tokens, "splade", SearchOptions(form=form), in_passages=True)
    nested = body["query"]["nested"]
    assert nested["path"] == "splade" and nested["score_mode"] == "max"
    inner = str(nested["query"])
    assert "splade.weights" in inner and "b%2Ec" in inner  # key-encoded tokens of the nested weights field
    flat, _, _ = plan_query(tokens, "splade", SearchOptions(form=form))
    assert "nested" not in flat["query"]


def test_two_phase_rescores_passages_with_every_token_replacing_the_first_phase():
    tokens = {"a": 4.0, "b": 1.0, "c": 0.5}
    body, _, _ = plan_query(tokens, "splade", SearchOptions(mode="two-phase", two_phase=TwoPhase(ratio=0.5)),
                            in_passages=True)
    first = body["query"]["nested"]["query"]["bool"]["should"]
    assert [c["rank_feature"]["field"] for c in first] == ["splade.weights.a"]
    rescore = body["rescore"]["query"]
    assert rescore["query_weight"] == 0.0 and rescore["rescore_query_weight"] == 1.0
    every = rescore["rescore_query"]["nested"]["query"]["bool"]["should"]
    assert sorted(c["rank_feature"]["field"] for c in every) == ["splade.weights.a", "splade.weights.b",
                                                                 "splade.weights.c"]


def test_best_passage_and_reading_stored_passages():
    stored = [{"offset": 0, "weights": {"a": 1.0, "b": 1.0}}, {"offset": 900, "weights": {"a": 3.0}}]
    assert passages.is_stored(stored)
    assert not passages.is_stored([{"weights": 1.5, "offset": 2.0}])  # a partial update's feature object
    assert not passages.is_stored({"weights": 1.5})
    parts = passages.read(stored)
    assert passages.best({"a": 1.0, "b": 0.5}, parts) == (900, 3.0)
    assert passages.best({"b": 1.0}, parts) == (0, 1.0)
    assert passages.best({"a": 1.0}, []) == (None, 0.0)
    assert passages.feature_objects(stored) == [{"a": 1.0, "b": 1.0}, {"a": 3.0}]
    assert passages.feature_objects({"a": 1.0}) == [{"a": 1.0}]


def test_the_nested_limit_is_checked():
    passages.check_limit("docs", 10_000, 64)
    with pytest.raises(ConfigError, match="index.mapping.nested_objects.limit"):
        passages.check_limit("docs", 10, 64)


class _Encoder:
    vocab = ["a", "b", "c", "d"]

    def encode_documents(self, texts):
        one = SparseVector(np.array([0, 1]), np.array([1.0, 0.5], dtype=np.float32))
        two = SparseVector(np.array([2, 3]), np.array([2.0, 0.25], dtype=np.float32))
        merged = SparseVector(np.array([0, 1, 2, 3]), np.array([1.0, 0.5, 2.0, 0.25], dtype=np.float32), windows=2)
        from dataclasses import replace
        return [replace(merged, passages=(Passage(0, one), Passage(700, two))) for _ in texts]


def test_each_passage_is_pruned_and_stored_with_its_offset():
    stamp = IndexStamp(model=PASSAGES, pruning=PruneConfig(top_k=1))
    (window,) = encoded_actions([Document("d1", "text")], _Encoder(), "docs", stamp, window=10)
    stored = window[0].action["_source"]["splade"]
    assert stored == [{"offset": 0, "weights": {"a": 1.0}}, {"offset": 700, "weights": {"c": 2.0}}]


@pytest.mark.model
def test_the_encoder_keeps_each_window_with_the_character_it_starts_at(tiny_model):
    from bridge.encoder import SpladeEncoder

    text = " ".join(f"sentence {i} about vitamin d and bone density in older adults." for i in range(150))
    by_passages = SpladeEncoder(EncoderConfig(model="splade-tiny", long_documents="passages"))
    windowed = SpladeEncoder(EncoderConfig(model="splade-tiny"))
    vector, = by_passages.encode_documents([text])
    parts = vector.passages
    assert len(parts) >= 3 and parts[0].offset == 0
    assert all(a.offset < b.offset for a, b in zip(parts, parts[1:]))
    for part in parts[1:]:  # each window starts at a token boundary of the text
        assert text[part.offset - 1] == " " and text[part.offset] != " "
    # their element-wise max is the windowed mode's vector, and a short text is one passage at 0
    merged, = windowed.encode_documents([text])
    assert np.array_equal(vector.indices, merged.indices) and np.allclose(vector.values, merged.values)
    short, = by_passages.encode_documents(["vitamin d"])
    assert [p.offset for p in short.passages] == [0]
    assert by_passages.stamp.passages and by_passages.stamp.long_documents == "passages:512:64:64"
