import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.config import PruneConfig, QuantConfig
from bridge.sparse import (FLOAT_MIN_NORMAL, KeyCodec, fit_query_weights, from_features, prune, quantize,
                           to_features, validate_features)
from bridge.types import SparseVector


def vec(values):
    return SparseVector(np.arange(len(values), dtype=np.int64), np.asarray(values, dtype=np.float32))


def kept(v):
    return sorted(v.indices.tolist())


def test_top_k_keeps_largest():
    assert kept(prune(vec([0.1, 3.0, 0.5, 2.0, 0.2]), PruneConfig(top_k=2))) == [1, 3]


def test_max_ratio():
    assert kept(prune(vec([1.0, 4.0, 2.0, 0.5]), PruneConfig(max_ratio=0.5))) == [1, 2]


def test_alpha_mass_keeps_smallest_prefix_reaching_mass():
    # total 10: 5 (50%) + 3 (80%) + 1.5 (95%) -> 0.9 needs three weights
    assert kept(prune(vec([0.5, 5.0, 1.5, 3.0]), PruneConfig(alpha_mass=0.9))) == [1, 2, 3]
    assert kept(prune(vec([0.5, 5.0, 1.5, 3.0]), PruneConfig(alpha_mass=0.5))) == [1]
    assert kept(prune(vec([0.5, 5.0, 1.5, 3.0]), PruneConfig(alpha_mass=1.0))) == [0, 1, 2, 3]


def test_abs_value():
    assert kept(prune(vec([0.05, 0.1, 0.3]), PruneConfig(abs_value=0.1))) == [1, 2]


def test_prune_options_combine_and_validate():
    assert kept(prune(vec([1, 2, 3, 4, 5]), PruneConfig(top_k=3, abs_value=3.5))) == [3, 4]
    with pytest.raises(ValueError):
        PruneConfig(top_k=0)
    with pytest.raises(ValueError):
        PruneConfig(max_ratio=1.5)


def test_quantize_int_and_floor_and_lucene_rules():
    q = quantize(vec([0.004, 0.016, 1.234, float("nan"), float("inf")]), QuantConfig(kind="int", scale=100))
    assert kept(q) == [1, 2]  # 0.4 rounds to 0; NaN/inf dropped
    assert q.values.tolist() == [2.0, 123.0]
    f = quantize(vec([1e-40, 0.3, 0.7]), QuantConfig(kind="float", floor=0.5))
    assert f.values.tolist() == [pytest.approx(0.7)]
    assert quantize(vec([1e-40, 0.2]), QuantConfig()).values.tolist() == [pytest.approx(0.2)]


def test_validate_features_rejects_what_lucene_rejects():
    validate_features({"a": 1.0, "b": FLOAT_MIN_NORMAL})
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="'x'"):
            validate_features({"x": bad})


@pytest.mark.parametrize("token,key", [(".", "%2E"), ("##.", "##%2E"), ("a.b.c", "a%2Eb%2Ec"), ("%", "%25"),
                                       ("%2E", "%252E"), ("[unused0]", "[unused0]"), ("##ing", "##ing")])
def test_key_codec_examples(token, key):
    assert KeyCodec.encode(token) == key
    assert KeyCodec.decode(key) == token


@given(st.text())
def test_key_codec_round_trip(token):
    key = KeyCodec.encode(token)
    assert "." not in key
    assert KeyCodec.decode(key) == token


def test_features_merge_duplicate_keys_by_max_and_round_trip():
    vocab = ["a.b", "c", "x"]
    v = SparseVector(np.array([0, 1]), np.array([0.5, 2.0], dtype=np.float32))
    feats = to_features(v, vocab)
    assert feats == {"a%2Eb": 0.5, "c": 2.0}
    assert from_features(feats) == {"a.b": 0.5, "c": 2.0}


def test_fit_query_weights_scales_into_64_without_changing_order():
    weights, factor = fit_query_weights({"a": 128.0, "b": 32.0, "c": 0.0, "d": -1.0}, max_weight=64.0)
    assert weights == {"a": 64.0, "b": 16.0}
    assert factor == 0.5
    same, f1 = fit_query_weights({"a": 2.0, "b": 1.0})
    assert same == {"a": 2.0, "b": 1.0} and f1 == 1.0


def test_fit_query_weights_budget_keeps_largest():
    weights, _ = fit_query_weights({f"t{i}": float(i + 1) for i in range(10)}, budget=3)
    assert set(weights) == {"t9", "t8", "t7"}
    assert fit_query_weights({}) == ({}, 1.0)
    assert all(math.isfinite(w) for w in weights.values())


def test_idf_table_weighs_rare_tokens_higher():
    from bridge.idf import idf_table, query_weights

    table, n = idf_table([["a", "b"], ["a", "c"], ["a", "a"]])
    assert n == 3 and table["a"] < table["b"] == table["c"]
    assert table["a"] == pytest.approx(math.log(1 + 0.5 / 3.5))

    class Tok:
        def tokenize(self, text):
            return text.split()

    assert query_weights(Tok(), "a b b zz [CLS]", {**table, "[CLS]": 9.0}, {"[CLS]"}) == {"a": table["a"],
                                                                                          "b": table["b"]}


def test_top_k_is_a_budget_per_window_of_a_long_document():
    """A long document max-pooled from n windows keeps k x n weights: a fixed k would let the filler drown the
    one relevant passage (tests/test_long_documents.py fails with it)."""
    rng = np.random.default_rng(0)
    values = rng.random(1000).astype(np.float32) + 0.01
    one = SparseVector(np.arange(1000, dtype=np.int64), values)
    three = SparseVector(np.arange(1000, dtype=np.int64), values, windows=3)
    assert len(prune(one, PruneConfig(top_k=128))) == 128
    kept = prune(three, PruneConfig(top_k=128))
    assert len(kept) == 384 and kept.windows == 3
    assert set(kept.indices.tolist()) == set(np.argsort(-values)[:384].tolist())  # the largest ones
    assert quantize(kept, QuantConfig()).windows == 3
