"""The model edge: load a SPLADE MLM checkpoint and turn texts into sparse vectors.

``encode_documents`` and ``encode_query`` are separate entry points (lengths, prompts and, for
asymmetric models, checkpoints differ). Texts are sorted by length and packed into batches under a
token budget with dynamic padding; pooling happens on the transformed hidden states so the dense
``[batch, length, vocab]`` logits never exist, and each batch's output is made sparse before the next.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from . import model_store, runtime
from .config import DEFAULT_ACTIVATION, DEFAULT_POOLING, EncoderConfig, check_options
from .errors import ModelLoadError
from .pooling import Screen, pool_hidden
from .stamp import ModelStamp
from .types import Passage, SparseVector

log = logging.getLogger(__name__)

QUERY_ROWS = 32  # the rows a query is expected to have, a hint for packing the query side's screen


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _split_output_head(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Detach the vocabulary projection from an MLM model: afterwards the model returns the transformed
    hidden states in place of logits, and we apply ``weight``/``bias`` ourselves, chunk by chunk."""
    decoder = model.get_output_embeddings()
    if decoder is None or not hasattr(decoder, "weight"):
        raise ValueError(f"{type(model).__name__} has no output embeddings: not a masked-LM checkpoint")
    weight = decoder.weight.detach()
    bias = decoder.bias.detach() if getattr(decoder, "bias", None) is not None else None
    for name, module in model.named_modules():
        for child_name, child in module.named_children():
            if child is decoder:
                setattr(module, child_name, torch.nn.Identity())
                return weight, bias
    raise ValueError("could not locate the output projection inside the model")


@dataclass
class _Side:
    """One loaded checkpoint (documents and queries may use different ones)."""

    tokenizer: object
    body: runtime.TorchBody | runtime.OnnxBody | runtime.OpenVinoBody  # the transformer, no vocabulary projection
    weight: torch.Tensor
    bias: torch.Tensor | None
    screen: Screen | None  # a bf16 copy of the projection to find the non-zero terms with (fp32, CPU with bf16)
    max_length: int
    prompt: str
    revision: str
    name: str
    one_text: Callable[[str], list[int]] | None = None  # one text's token ids, fast (_one_text_ids); queries only


class SpladeEncoder:
    """Encode texts into SPLADE sparse vectors. Construction loads the model(s); nothing at import."""

    def __init__(self, config: EncoderConfig | None = None):
        self.config = config or EncoderConfig()
        self.device = pick_device(self.config.device)
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        c = self.config
        self.backend = runtime.choose(c.backend, self.device, c.precision)
        self._doc = self._load(c.model, c.doc_max_length, c.doc_prompt)
        if c.query_model and c.query_model != c.model:
            self._query = self._load(c.query_model, c.query_max_length, c.query_prompt)
        else:
            self._query = _Side(**{**self._doc.__dict__, "max_length": min(c.query_max_length, self._doc.max_length),
                                   "prompt": c.query_prompt})
        self._query.body = runtime.for_queries(self._query.body)
        self._query.one_text = _one_text_ids(self._query.tokenizer, self._query.max_length)
        if self._query.screen is not None:  # a query's few rows multiply fastest with packed weights
            self._query.screen = self._query.screen.for_few_rows(QUERY_ROWS, self._query.weight, self._query.bias)
        self.vocab: list[str] = self._doc.tokenizer.convert_ids_to_tokens(list(range(self._doc.weight.shape[0])))
        self.pooling, self.activation = self._pooling(model_store.pooling_config(model_store.resolve(self.config.model)))

    def _pooling(self, checkpoint: dict) -> tuple[str, str]:
        """The configured pooling and activation, else the checkpoint's (sentence-transformers format), else
        max / log1p_relu. A configured value that differs from the checkpoint's is used, with a warning."""
        chosen = []
        for name, default in (("pooling", DEFAULT_POOLING), ("activation", DEFAULT_ACTIVATION)):
            asked, stored = getattr(self.config, name), checkpoint.get(name)
            if asked is not None and stored is not None and asked != stored:
                log.warning("%s=%s overrides the checkpoint's %s (1_SpladePooling/config.json)", name, asked, stored)
            chosen.append(asked or stored or default)
        check_options(*chosen)
        return chosen[0], chosen[1]

    def _load(self, ref: str, max_length: int, prompt: str) -> _Side:
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        resolved = model_store.resolve(ref)
        try:
            tokenizer = AutoTokenizer.from_pretrained(resolved)
        except OSError as exc:  # not on the hub, not in the cache offline, not a model directory: name the model
            raise ModelLoadError(f"cannot load model {ref!r}: {str(exc).splitlines()[0]}") from exc
        precision = self.config.precision
        # torch runs the body in the precision's dtype; the other backends get an fp32 graph to compile or quantize
        body_dtype = runtime.TORCH_DTYPES[precision] if self.backend == "torch" else torch.float32
        attention = {} if self.backend == "torch" else {"attn_implementation": runtime.EXPORT_ATTENTION}
        model = AutoModelForMaskedLM.from_pretrained(resolved, dtype=body_dtype, **attention)
        model.eval().to(self.device)
        weight, bias = _split_output_head(model)
        # the projection multiplies in the precision's dtype (int8 quantizes the body only), stored with weight.T
        # contiguous: the layout pool_hidden's multiplies are fastest with
        weight = weight.to(runtime.TORCH_DTYPES[precision]).T.contiguous().T
        screen = Screen.of(weight) if (self.config.bf16_screen and precision == "fp32" and self.device.type == "cpu"
                                       and runtime.cpu_has_bf16()) else None
        weights_path = model_store.weights_file(resolved)
        revision = model_store.sha256_file(weights_path)[:16] if weights_path else "unknown"
        body = runtime.body(self.backend, model, revision, precision, self.config.threads)
        limit = min(max_length, getattr(model.config, "max_position_embeddings", max_length),
                    tokenizer.model_max_length or max_length)
        name = model_store.TINY_ALIAS if ref == model_store.TINY_ALIAS else ref
        log.info("loaded %s (revision %s) on %s with %s at %s", name, revision, self.device, self.backend, precision)
        return _Side(tokenizer, body, weight, bias, screen, limit, prompt, revision, name)

    # -- public API --------------------------------------------------------------------------------

    @property
    def stamp(self) -> ModelStamp:
        """What an index must record to be queried with this encoder (see ``IndexStamp``)."""
        return ModelStamp(model=self._doc.name, revision=self._doc.revision, query_model=self._query.name,
                          query_revision=self._query.revision, pooling=self.pooling,
                          activation=self.activation, long_documents=self._long_documents,
                          precision=self.config.precision, backend=self.backend)

    @property
    def _long_documents(self) -> str:
        c = self.config
        if c.long_documents == "truncate":
            return f"truncate:{self._doc.max_length}"
        return f"{c.long_documents}:{self._doc.max_length}:{c.window_overlap}:{c.max_windows}"

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        """One vector per text; a text over the model's limit is split into overlapping windows, each kept as
        one of the vector's ``passages`` (``long_documents="passages"``, the default; each with the character
        offset its text starts at, the vector itself their max), or max-pooled into the vector (``"window"``), or
        the text is truncated (``"truncate"``)."""
        mode = self.config.long_documents
        return list(self._encode(self._doc, texts, windows=mode != "truncate", passages=mode == "passages"))

    def encode_query(self, texts: Sequence[str] | str) -> list[SparseVector] | SparseVector:
        if isinstance(texts, str):
            return next(self._encode(self._query, [texts]))
        return list(self._encode(self._query, texts))

    @property
    def query_tokenizer(self):
        return self._query.tokenizer

    @property
    def special_tokens(self) -> set[str]:
        return set(self._query.tokenizer.all_special_tokens)

    def tokens(self, vector: SparseVector) -> dict[str, float]:
        return vector.to_tokens(self.vocab)

    def token_count(self, texts: Sequence[str], query: bool = False) -> list[int]:
        side = self._query if query else self._doc
        enc = side.tokenizer([side.prompt + t for t in texts], truncation=True, max_length=side.max_length)
        return [len(ids) for ids in enc["input_ids"]]

    # -- internals ---------------------------------------------------------------------------------

    def _batches(self, lengths: Sequence[int]) -> Iterator[list[int]]:
        """Indices grouped longest-first under the token budget (padded length x batch size)."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batch: list[int] = []
        for i in order:
            longest = lengths[batch[0]] if batch else lengths[i]
            if batch and (longest * (len(batch) + 1) > self.config.batch_tokens
                          or len(batch) >= self.config.max_batch):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    def _tokenize(self, side: _Side, texts: Sequence[str], windows: bool, starts: bool = False
                  ) -> tuple[list[list[int]], list[int], list[int]]:
        """Token ids per model input row, the text each row belongs to and (``starts``: passage mode, which needs
        a fast tokenizer's offsets) the character its text starts at, else 0. With ``windows``, a text longer
        than the model's limit becomes overlapping windows (the tokenizer's overflow with ``stride``)."""
        if not windows and len(texts) == 1 and side.one_text is not None:
            return [side.one_text(texts[0])], [0], [0]
        if not windows:
            enc = side.tokenizer(texts, truncation=True, max_length=side.max_length)
            return enc["input_ids"], list(range(len(texts))), [0] * len(texts)
        enc = side.tokenizer(texts, truncation=True, max_length=side.max_length, stride=self.config.window_overlap,
                             return_overflowing_tokens=True, return_offsets_mapping=starts)
        ids, owners, firsts, seen = [], [], [], [0] * len(texts)
        spans_of = enc["offset_mapping"] if starts else [()] * len(enc["input_ids"])
        for row, owner, spans in zip(enc["input_ids"], enc["overflow_to_sample_mapping"], spans_of):
            seen[owner] += 1
            if seen[owner] <= self.config.max_windows:
                ids.append(row)
                owners.append(owner)
                # the first real token's start (special tokens span (0, 0)), less the prompt
                first = next((a for a, b in spans if b > a), 0)
                firsts.append(max(0, first - len(side.prompt)))
        for owner, n in enumerate(seen):
            if n > self.config.max_windows:
                log.warning("text %d of the batch has %d windows; encoding the first %d (max_windows)",
                            owner, n, self.config.max_windows)
        return ids, owners, firsts

    @torch.inference_mode()
    def _encode(self, side: _Side, texts: Sequence[str], windows: bool = False,
                passages: bool = False) -> Iterator[SparseVector]:
        if not texts:
            return
        texts = [side.prompt + t for t in texts]
        ids, owners, starts = self._tokenize(side, texts, windows, starts=passages)
        rows: list[SparseVector | None] = [None] * len(ids)
        for batch in self._batches([len(x) for x in ids]):
            if len(batch) == 1:  # nothing to pad (a query, most often)
                input_ids = torch.tensor([ids[batch[0]]], device=self.device)
                mask = torch.ones_like(input_ids)
            else:
                padded = side.tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="pt")
                input_ids, mask = padded["input_ids"].to(self.device), padded["attention_mask"].to(self.device)
            hidden = side.body(input_ids, mask)
            weights = pool_hidden(hidden, mask, side.weight, side.bias, self.pooling, self.activation,
                                  screen=side.screen).cpu().numpy()
            for row, i in enumerate(batch):
                rows[i] = _to_sparse(weights[row])
        if len(rows) == len(texts) and not passages:
            yield from rows  # type: ignore[misc]
            return
        parts: list[list[SparseVector]] = [[] for _ in texts]
        offsets: list[list[int]] = [[] for _ in texts]
        for owner, vec, start in zip(owners, rows, starts):
            parts[owner].append(vec)  # type: ignore[arg-type]
            offsets[owner].append(start)
        for p, o in zip(parts, offsets):
            merged = p[0] if len(p) == 1 else max_merge(p, side.weight.shape[0])
            if passages:
                merged = replace(merged, passages=tuple(Passage(start, v) for start, v in zip(o, p)))
            yield merged


def _one_text_ids(tokenizer, max_length: int) -> Callable[[str], list[int]] | None:
    """One text's token ids from a copy of the fast tokenizer's Rust backend that truncates at ``max_length``:
    the same ids as ``tokenizer([text], truncation=True, max_length=...)`` without its Python wrapping, which
    cost a query 0.02-0.09 ms between two queries. None for a tokenizer without such a backend."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    one = copy.deepcopy(backend)
    one.enable_truncation(max_length)
    one.no_padding()
    return lambda text: one.encode(text).ids


def max_merge(vectors: Sequence[SparseVector], vocab_size: int) -> SparseVector:
    """Element-wise max of sparse vectors (the windows of one long document)."""
    dense = np.zeros(vocab_size, dtype=np.float32)
    for v in vectors:
        np.maximum.at(dense, v.indices, v.values)
    idx = np.flatnonzero(dense > 0)
    return SparseVector(idx.astype(np.int64), dense[idx], windows=len(vectors))


def _to_sparse(row: np.ndarray) -> SparseVector:
    idx = np.flatnonzero(row > 0)
    return SparseVector(idx.astype(np.int64, copy=False), row[idx])


def encode_stream(encoder: SpladeEncoder, texts: Iterable[str], window: int = 256) -> Iterator[SparseVector]:
    """Encode an unbounded stream in windows (length sorting happens inside each window)."""
    buf: list[str] = []
    for t in texts:
        buf.append(t)
        if len(buf) >= window:
            yield from encoder.encode_documents(buf)
            buf = []
    if buf:
        yield from encoder.encode_documents(buf)
