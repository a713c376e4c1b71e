"""The encoder against the offline SPLADE-tiny: golden values and sentence-transformers parity."""
import numpy as np
import pytest
import torch

from tests.conftest import SAMPLE, load_jsonl

pytestmark = pytest.mark.model

GARLIC_QUERY = "how many tablespoons of garlic powder are in an ounce"


def test_golden_query_expansion(encoder):
    """Values from the offline-model note: 17 dims; ounce 2.334, powder 1.874, garlic 1.758."""
    vec = encoder.encode_query(GARLIC_QUERY)
    tokens = encoder.tokens(vec)
    assert len(tokens) == 17
    top = sorted(tokens.items(), key=lambda kv: -kv[1])[:3]
    assert [t for t, _ in top] == ["ounce", "powder", "garlic"]
    assert [w for _, w in top] == pytest.approx([2.334, 1.874, 1.758], abs=1e-3)


def test_document_encoding_is_sparse_and_plausible(encoder):
    (vec,) = encoder.encode_documents(["Vitamin D deficiency is linked to weak bones and fractures."])
    tokens = encoder.tokens(vec)
    assert 10 < len(tokens) < 500  # a random model would light up ~30,000 dimensions
    top = [t for t, _ in sorted(tokens.items(), key=lambda kv: -kv[1])[:8]]
    assert {"vitamin", "deficiency", "fractures"} <= set(top)
    assert vec.values.dtype == np.float32 and (vec.values > 0).all()
    assert (np.diff(vec.indices) > 0).all()


def test_empty_input_encodes_to_nothing(encoder):
    assert encoder.encode_documents([]) == [] and encoder.encode_query([]) == []


def test_batching_and_order_do_not_change_vectors(encoder):
    texts = [d["text"] for d in load_jsonl(SAMPLE, 12)] + ["short one", "x"]
    batched = encoder.encode_documents(texts)
    single = [encoder.encode_documents([t])[0] for t in texts]
    for a, b in zip(batched, single):
        assert a.indices.tolist() == b.indices.tolist()
        np.testing.assert_allclose(a.values, b.values, rtol=1e-4, atol=1e-5)


def _dense(vec, vocab_size):
    out = np.zeros(vocab_size, dtype=np.float32)
    out[vec.indices] = vec.values
    return out


def test_equals_sentence_transformers_sparse_encoder(tiny_model):
    """Same model, same texts: every weight within 1e-4 of SparseEncoder (MLMTransformer + SpladePooling).
    SparseEncoder truncates at 512 tokens, so ours truncates too here (windows are tested below)."""
    from sentence_transformers import SparseEncoder

    from bridge.config import EncoderConfig
    from bridge.encoder import SpladeEncoder

    encoder = SpladeEncoder(EncoderConfig(model="splade-tiny", threads=2, long_documents="truncate"))
    st_model = SparseEncoder(str(tiny_model), device="cpu")
    docs = [(d["title"] + "\n" + d["text"]) for d in load_jsonl(SAMPLE, 40)]
    queries = [GARLIC_QUERY, "vitamin d and bone density", "what is the role of p53 in cancer?"]
    ours_d = encoder.encode_documents(docs)
    ours_q = encoder.encode_query(queries)
    theirs_d = st_model.encode_document(docs, convert_to_tensor=True).to_dense().numpy()
    theirs_q = st_model.encode_query(queries, convert_to_tensor=True).to_dense().numpy()
    vocab = theirs_d.shape[1]
    ours_d = np.stack([_dense(v, vocab) for v in ours_d])
    ours_q = np.stack([_dense(v, vocab) for v in ours_q])
    assert np.abs(ours_d - theirs_d).max() < 1e-4
    assert np.abs(ours_q - theirs_q).max() < 1e-4
    assert ((ours_d > 0) == (theirs_d > 0)).mean() > 0.9999


def test_encoder_config_validation():
    from bridge.config import EncoderConfig

    with pytest.raises(ValueError, match="pooling"):
        EncoderConfig(pooling="mean")
    with pytest.raises(ValueError, match="precision"):
        EncoderConfig(precision="int4")


def test_sum_pooling_relu_variant(tiny_model):
    """Another pooling/activation pair still equals the definition on the full logits."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from bridge.config import EncoderConfig
    from bridge.encoder import SpladeEncoder

    enc = SpladeEncoder(EncoderConfig(model=str(tiny_model), pooling="sum", activation="relu"))
    tok = AutoTokenizer.from_pretrained(tiny_model)
    mlm = AutoModelForMaskedLM.from_pretrained(tiny_model).eval()
    text = "sparse retrieval with learned term weights"
    with torch.inference_mode():
        inputs = tok([text], return_tensors="pt")
        want = torch.relu(mlm(**inputs).logits).sum(1)[0].numpy()
    got = _dense(enc.encode_documents([text])[0], want.shape[0])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_long_documents_are_windowed_and_max_pooled(encoder):
    """A text over 512 tokens: overlapping windows, max-pooled; short texts are unchanged by the mode."""
    from bridge.config import EncoderConfig
    from bridge.encoder import SpladeEncoder, max_merge
    from bridge.types import SparseVector

    truncating = SpladeEncoder(EncoderConfig(model="splade-tiny", threads=2, long_documents="truncate"))
    docs = [(d["title"] + "\n" + d["text"]) for d in load_jsonl(SAMPLE, 8)]
    long_text = " ".join(docs)
    assert truncating.token_count([long_text])[0] == 512 < len(encoder._doc.tokenizer(long_text)["input_ids"])
    windowed, cut = encoder.encode_documents([long_text])[0], truncating.encode_documents([long_text])[0]
    vocab = encoder.vocab
    # the last document's own words (beyond token 512) are absent from the truncated vector, present in ours
    tail_words = set(encoder._doc.tokenizer.tokenize(docs[-1])) - set(encoder.tokens(cut))
    found = tail_words & set(encoder.tokens(windowed))
    assert len(tail_words) >= 10 and len(found) >= 0.5 * len(tail_words), (len(found), len(tail_words))
    # the first window is exactly the truncated input, so the max-pool is >= it everywhere
    ours = encoder.tokens(windowed)
    assert all(ours.get(t, 0.0) >= w - 1e-4 for t, w in encoder.tokens(cut).items())
    a = SparseVector(np.array([1, 5, 9]), np.array([0.5, 2.0, 1.0], dtype=np.float32))
    b = SparseVector(np.array([5, 7]), np.array([3.0, 0.25], dtype=np.float32))
    m = max_merge([a, b], 10)
    assert m.indices.tolist() == [1, 5, 7, 9] and m.values.tolist() == [0.5, 3.0, 0.25, 1.0]
    assert m.windows == 2 and windowed.windows > 1  # pruning gives a long document a budget per window
    short = docs[:3]
    for a, b in zip(encoder.encode_documents(short), truncating.encode_documents(short)):
        np.testing.assert_allclose(_dense(a, len(vocab)), _dense(b, len(vocab)), atol=1e-4)
    with pytest.raises(ValueError, match="long_documents"):
        EncoderConfig(long_documents="summarize")


@pytest.mark.parametrize("strategy,st_activation,ours", [("sum", "relu", "log1p_relu"),
                                                          ("max", "log1p_relu", "log1p_log1p_relu")])
def test_pooling_is_read_from_a_sentence_transformers_checkpoint(tiny_model, tmp_path, strategy, st_activation,
                                                                 ours):
    """A checkpoint saved by sentence-transformers carries its pooling in 1_SpladePooling/config.json: the
    encoder uses it (was: always max) and gives the vectors SparseEncoder gives for the same directory."""
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.models import MLMTransformer, SpladePooling

    from bridge.config import EncoderConfig
    from bridge.encoder import SpladeEncoder

    saved = tmp_path / "st-checkpoint"
    SparseEncoder(modules=[MLMTransformer(str(tiny_model)),
                           SpladePooling(pooling_strategy=strategy, activation_function=st_activation)],
                  device="cpu").save(str(saved))
    encoder = SpladeEncoder(EncoderConfig(model=str(saved), threads=2, long_documents="truncate"))
    assert (encoder.pooling, encoder.activation) == (strategy, ours)
    assert (encoder.stamp.pooling, encoder.stamp.activation) == (strategy, ours)
    docs = [(d["title"] + "\n" + d["text"]) for d in load_jsonl(SAMPLE, 12)]
    theirs = SparseEncoder(str(saved), device="cpu").encode_document(docs, convert_to_tensor=True).to_dense().numpy()
    mine = np.stack([_dense(v, theirs.shape[1]) for v in encoder.encode_documents(docs)])
    assert np.abs(mine - theirs).max() < 1e-4 * max(1.0, float(np.abs(theirs).max()))
    overridden = SpladeEncoder(EncoderConfig(model=str(saved), threads=2, pooling="max", activation="log1p_relu"))
    assert (overridden.pooling, overridden.activation) == ("max", "log1p_relu")  # an explicit option wins


def test_each_installed_backend_equals_torch_on_the_scifact_sample(encoder, tmp_path, monkeypatch):
    """ONNX Runtime and OpenVINO (the [onnx] and [openvino] extras, installed in the test environment) against
    torch: every document and query weight within 1e-4; the exported graph is cached by the weights' hash and
    reused by both; auto takes ONNX Runtime."""
    from bridge.config import EncoderConfig
    from bridge.encoder import SpladeEncoder
    from bridge.stamp import IndexStamp

    monkeypatch.setenv("SPLADE_BRIDGE_CACHE", str(tmp_path))
    torch_side = SpladeEncoder(EncoderConfig(model="splade-tiny", threads=2, backend="torch"))
    others = [SpladeEncoder(EncoderConfig(model="splade-tiny", threads=2, backend=b)) for b in ("onnx", "openvino")]
    assert [e.backend for e in [torch_side, *others]] == ["torch", "onnx", "openvino"]
    auto = SpladeEncoder(EncoderConfig(model="splade-tiny", threads=2))
    assert auto.backend == "onnx"  # auto: the first installed of runtime.AUTO_ORDER
    (graph,) = (tmp_path / "onnx").glob("*.onnx")
    assert torch_side.stamp.revision in graph.name  # keyed by the weights' sha256, one file for both runtimes
    assert graph.stem.endswith("-eager")  # traced from eager attention (runtime.EXPORT_ATTENTION): faster graph
    exported_at = graph.stat().st_mtime_ns
    texts = [d["title"] + "\n" + d["text"] for d in load_jsonl(SAMPLE)]
    vocab = len(encoder.vocab)
    want_docs = [_dense(v, vocab) for v in torch_side.encode_documents(texts)]
    want_queries = [_dense(v, vocab) for v in torch_side.encode_query(texts[:50])]
    for other in others:
        for want, got in zip(want_docs, other.encode_documents(texts)):
            np.testing.assert_allclose(_dense(got, vocab), want, atol=1e-4)
        for want, got in zip(want_queries, other.encode_query(texts[:50])):
            np.testing.assert_allclose(_dense(got, vocab), want, atol=1e-4)
        for text in texts[:5]:  # one text alone: a batch without padding
            np.testing.assert_allclose(_dense(torch_side.encode_query(text), vocab),
                                       _dense(other.encode_query(text), vocab), atol=1e-4)
        # interchangeable at fp32: an index built by one is queried by another, and content hashes agree
        IndexStamp(torch_side.stamp).check_encoder("i", other.stamp)
        assert IndexStamp(other.stamp).content_key() == IndexStamp(torch_side.stamp).content_key()
        assert other.stamp.backend == other.backend  # recorded all the same
    SpladeEncoder(EncoderConfig(model="splade-tiny", threads=2, backend="onnx"))
    assert graph.stat().st_mtime_ns == exported_at  # reused, not exported again


def test_the_bf16_screen_leaves_fp32_vectors_unchanged(encoder):
    """On a CPU that multiplies bf16 natively the fp32 encoder screens its projection in bf16 (queries through
    packed weights); documents and queries encode to the same terms and weights as without the screen. Elsewhere
    there is no screen."""
    from bridge import runtime
    from bridge.config import EncoderConfig
    from bridge.encoder import SpladeEncoder

    plain = SpladeEncoder(EncoderConfig(model="splade-tiny", threads=2, bf16_screen=False))
    assert plain._doc.screen is None
    assert (encoder._doc.screen is not None) == runtime.cpu_has_bf16()
    texts = [d["title"] + "\n" + d["text"] for d in load_jsonl(SAMPLE)]
    for a, b in zip(encoder.encode_documents(texts), plain.encode_documents(texts)):
        assert a.indices.tolist() == b.indices.tolist()
        np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-6)
    for text in texts:
        a, b = encoder.encode_query(text[:200]), plain.encode_query(text[:200])
        assert a.indices.tolist() == b.indices.tolist()
        np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-6)


def test_one_query_is_tokenized_as_the_tokenizer_does(encoder):
    """A single query takes the fast tokenizer's Rust backend directly (a copy truncating at the query limit):
    the same ids as the tokenizer's own call, for short texts and for texts cut at the limit."""
    side = encoder._query
    assert side.one_text is not None and encoder._doc.one_text is None
    texts = [d["title"] + "\n" + d["text"] for d in load_jsonl(SAMPLE)] + ["vitamin d", ""]
    assert any(len(side.tokenizer(t)["input_ids"]) > side.max_length for t in texts)
    for text in texts:
        ids, owners, starts = encoder._tokenize(side, [text], windows=False)
        assert owners == [0] and starts == [0] and ids[0] == side.tokenizer([text], truncation=True, max_length=side.max_length)[
            "input_ids"][0]


def test_small_inputs_run_on_a_one_thread_session_on_the_query_side(encoder, monkeypatch):
    """ONNX Runtime: the query side shares the document side's session and opens a one-thread one for inputs up
    to FEW_TOKENS tokens; larger inputs, and every document batch, use the shared session."""
    from bridge import runtime

    documents, queries = encoder._doc.body, encoder._query.body
    assert isinstance(queries, runtime.OnnxBody) and queries.session is documents.session
    assert documents.few_tokens == 0 and queries.few_tokens == runtime.FEW_TOKENS
    ids = torch.tensor([encoder.query_tokenizer("vitamin d and bone density")["input_ids"]])
    mask = torch.ones_like(ids)
    alone = queries(ids, mask)
    assert queries._few is not None and queries._few is not queries.session
    assert queries._few.get_session_options().intra_op_num_threads == 1
    torch.testing.assert_close(alone, documents(ids, mask), atol=1e-5, rtol=0)
    runs = []
    monkeypatch.setattr(queries, "_few", None)
    monkeypatch.setattr(queries, "_open", lambda threads: runs.append(threads))
    queries(ids.repeat(runtime.FEW_TOKENS // ids.shape[1] + 1, 1), mask.repeat(runtime.FEW_TOKENS // ids.shape[1] + 1, 1))
    assert runs == [] and queries._few is None  # over FEW_TOKENS: the shared session, nothing opened


def test_a_big_body_keeps_every_thread_for_queries(encoder):
    """The one-thread session is for small bodies (SPLADE-tiny's 0.4 M weights per token); a body past SMALL_BODY
    (BERT-small's 12.6 M, BERT-base's 85 M) runs a query faster on all its threads."""
    from bridge import runtime

    documents = encoder._doc.body
    assert 0 < documents.weights <= runtime.SMALL_BODY  # SPLADE-tiny's body, measured from the model
    big = runtime.OnnxBody(documents.path, documents.threads, documents.session, weights=runtime.SMALL_BODY + 1)
    assert big.for_queries().few_tokens == 0 and big.for_queries().session is documents.session
    layer = torch.nn.Linear(512, 512)
    embeddings = torch.nn.Module()
    embeddings.table = torch.nn.Embedding(1000, 512)
    model = torch.nn.Module()
    model.layer, model.embeddings = layer, embeddings
    assert runtime.body_weights(model) == 512 * 512 + 512  # the embedding table does not count


def _top(vec, k: int = 10) -> set[int]:
    return set(vec.indices[np.argsort(-vec.values)[:k]].tolist())


@pytest.mark.parametrize("backend, precision", [("torch", "bf16"), ("openvino", "bf16"), ("onnx", "int8")])
def test_precisions_below_fp32_stay_close_and_are_stamped(encoder, tmp_path, monkeypatch, backend, precision):
    """bf16 and int8 change weights a little (not within 1e-4: it is a different arithmetic) but keep the top
    terms; the stamp records precision and backend, and an index built at one precision refuses a query encoder
    at another. On a CPU without bf16 instructions, bf16 is refused with the reason."""
    from bridge import runtime
    from bridge.config import EncoderConfig
    from bridge.encoder import SpladeEncoder
    from bridge.errors import ConfigError, ModelMismatch
    from bridge.stamp import IndexStamp

    monkeypatch.setenv("SPLADE_BRIDGE_CACHE", str(tmp_path))
    config = EncoderConfig(model="splade-tiny", threads=2, backend=backend, precision=precision)
    if precision == "bf16" and not runtime.cpu_has_bf16():
        with pytest.raises(ConfigError, match="AVX512-BF16 or AMX"):
            SpladeEncoder(config)
        return
    low = SpladeEncoder(config)
    assert (low.stamp.precision, low.stamp.backend) == (precision, backend)
    texts = [d["title"] + "\n" + d["text"] for d in load_jsonl(SAMPLE, 60)]
    vocab = len(encoder.vocab)
    exact_docs = encoder.encode_documents(texts)
    diffs, overlaps = [], []
    for a, b in zip(exact_docs, low.encode_documents(texts)):
        diffs.append(np.abs(_dense(a, vocab) - _dense(b, vocab)).max())
        overlaps.append(len(_top(a) & _top(b)) / 10)
    assert 1e-4 < max(diffs) < 0.6  # not fp32, not another model either
    assert np.mean(overlaps) >= 0.8
    if precision == "int8":
        assert list((tmp_path / "onnx").glob("*-int8-dynamic.onnx"))  # quantized once, cached beside the graph
    stamp = IndexStamp(low.stamp)
    stamp.check_encoder("i", low.stamp)
    with pytest.raises(ModelMismatch, match=f"precision: index '{precision}' vs encoder 'fp32'"):
        stamp.check_encoder("i", encoder.stamp)
    assert stamp.content_key() != IndexStamp(encoder.stamp).content_key()  # re-ingest re-encodes
    assert stamp.model.encoder_options()["precision"] == precision  # queries default to the index's


def test_backend_choice_and_the_missing_extra(monkeypatch):
    from bridge import runtime
    from bridge.errors import ConfigError, MissingExtra

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(runtime, "installed", lambda module: True)
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: True)
    assert runtime.choose("torch", cpu) == "torch"
    assert runtime.choose("auto", cpu) == "onnx"
    assert runtime.choose("auto", cpu, "bf16") == "openvino"  # ONNX Runtime has no bf16 tier
    assert runtime.choose("auto", gpu) == "torch" and runtime.choose("auto", gpu, "fp16") == "torch"
    assert runtime.choose("auto", cpu, "int8") == "onnx"
    with pytest.raises(ConfigError, match="runs on the CPU"):
        runtime.choose("onnx", gpu)
    with pytest.raises(ConfigError, match="fp16 runs on a GPU"):
        runtime.choose("torch", cpu, "fp16")
    with pytest.raises(ConfigError, match="the onnx backend runs fp32, int8, not bf16"):
        runtime.choose("onnx", cpu, "bf16")
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)
    with pytest.raises(ConfigError, match="AVX512-BF16 or AMX"):
        runtime.choose("auto", cpu, "bf16")
    monkeypatch.setattr(runtime, "installed", lambda module: module not in ("onnxruntime", "openvino"))
    assert runtime.choose("auto", cpu) == "torch"
    with pytest.raises(MissingExtra, match=r"onnxruntime is missing: pip install 'splade-bridge\[onnx\]'"):
        runtime.choose("onnx", cpu)
    with pytest.raises(MissingExtra, match=r"openvino is missing: pip install 'splade-bridge\[openvino\]'"):
        runtime.choose("openvino", cpu)
    with pytest.raises(MissingExtra, match=r"splade-bridge\[onnx\]"):
        runtime.choose("auto", cpu, "int8")  # only ONNX Runtime runs int8
