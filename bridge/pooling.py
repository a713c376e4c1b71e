"""SPLADE pooling as pure torch functions: MLM logits (+ attention mask) -> one weight per vocabulary entry.

``weights[v] = pool over non-padding positions t of activation(logits[t, v])``.
Every activation is monotonic non-decreasing, so max pooling may be taken over the raw logits first;
``pool_hidden`` uses that to never hold a ``[batch, length, vocab]`` tensor.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import torch

from .config import check_options

log = logging.getLogger(__name__)


def activate(x: torch.Tensor, activation: str) -> torch.Tensor:
    """``relu``, ``log1p_relu`` (SPLADE's log(1 + relu)) or ``log1p_log1p_relu`` (OpenSearch's doc-v3 models)."""
    x = torch.relu(x)
    for _ in range(activation.count("log1p")):
        x = torch.log1p(x)
    return x


def pool_logits(logits: torch.Tensor, mask: torch.Tensor, pooling: str = "max",
                activation: str = "log1p_relu") -> torch.Tensor:
    """Reference pooling over a full ``[B, L, V]`` logits tensor and a ``[B, L]`` mask -> ``[B, V]``."""
    check_options(pooling, activation)
    act = activate(logits, activation) * mask.unsqueeze(-1).to(logits.dtype)
    return act.amax(dim=1) if pooling == "max" else act.sum(dim=1)


def _project(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, storage: torch.Tensor,
             across: int) -> torch.Tensor:
    """``rows @ weight.T (+ bias)`` into ``storage``, as ``[rows, V]`` (``across=0``) or its transpose."""
    n, vocab = rows.shape[0], weight.shape[0]
    shape = (n, vocab) if across == 0 else (vocab, n)
    logits = storage[: n * vocab].view(shape)  # contiguous, also for a last, shorter chunk
    a, b = (rows, weight.T) if across == 0 else (weight, rows.T)
    if bias is None:
        return torch.mm(a, b, out=logits)
    bias = bias.to(weight.dtype)
    return torch.addmm(bias if across == 0 else bias.unsqueeze(1), a, b, out=logits)


# The screen's error bound, relative to |x| |w|: bf16 keeps 8 significant bits (unit roundoff u = 2^-8), so each
# product of two rounded factors is off by at most (2u + u^2) |x_i w_i|, the sum of |x_i w_i| is at most |x| |w|
# (Cauchy-Schwarz), the bf16 result adds u |x.w|, and fp32 accumulation adds ~1e-5 relative. 2^-6 > 3u + all that.
SCREEN_ERROR = 2.0 ** -6
# bf16 rounds to nearest with 8 significant bits: x + |x| 2^-6, rounded to bf16, is still >= x
BF16_ROUNDING = 2.0 ** -6


@dataclass(frozen=True)
class Screen:
    """A bf16 copy of the projection and each vocabulary row's norm, for ``pool_hidden``'s screened max pooling;
    for few rows (queries) also what ``for_few_rows`` adds."""

    weight: torch.Tensor  # [V, H] bf16
    norms: torch.Tensor  # [V] fp32: |w_v|
    # for few rows (``for_few_rows``): the bf16 weights packed for torch.ops.mkldnn._linear_pointwise, the fp32
    # weights row-major (the candidates' rows are then contiguous) and the bias nudged up by BF16_ROUNDING
    packed: torch.Tensor | None = None
    exact: torch.Tensor | None = None
    lifted_bias: torch.Tensor | None = None

    @classmethod
    def of(cls, weight: torch.Tensor) -> "Screen":
        return cls(weight.to(torch.bfloat16).contiguous(), torch.linalg.vector_norm(weight.float(), dim=1))

    def for_few_rows(self, rows: int, weight: torch.Tensor, bias: torch.Tensor | None) -> "Screen":
        """This screen ready for multiplies of about ``rows`` rows (a query), where this torch build has oneDNN's
        packed linear: a plain bf16 multiply repacks all 30k x H weights on every call, which costs a short query
        more than the multiply saves (12-30 rows x SPLADE-tiny: 0.28 ms packed, 0.46 plain, 0.97 in fp32; 2 cores
        with AMX, BENCHMARKS.md). Also keeps ``weight`` (fp32) row-major: gathering a query's ~100 candidate rows
        from the column-major copy took 0.13 ms between two queries, one cache line per element."""
        packed = _pack(self.weight, rows)
        if packed is None:
            return self
        lifted = torch.zeros_like(self.norms) if bias is None else bias.float() + bias.float().abs() * BF16_ROUNDING
        return replace(self, packed=packed, exact=weight.float().contiguous(), lifted_bias=lifted)


def _pack(weight: torch.Tensor, rows: int) -> torch.Tensor | None:
    """``weight`` in oneDNN's layout for ``rows``-row multiplies, or None where this torch build lacks the op (it
    is internal to torch: checked here once, with the bias and relu ``_pool_one_packed`` uses, against fp32)."""
    probe, shift = torch.linspace(-1, 1, 2 * weight.shape[1]).view(2, -1), torch.linspace(-1, 1, weight.shape[0])
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, rows)
        got = _packed_linear(probe, packed, shift)
    except (AttributeError, RuntimeError, TypeError) as exc:
        log.info("no oneDNN packed linear in this torch (%s): queries are projected in fp32", exc)
        return None
    want = torch.relu(probe @ weight.float().T + shift)
    if got.shape != want.shape or not torch.allclose(got.float(), want, rtol=SCREEN_ERROR, atol=SCREEN_ERROR):
        log.info("oneDNN's packed linear disagrees with fp32 here: queries are projected in fp32")
        return None
    return packed


def _packed_linear(rows: torch.Tensor, packed: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``relu(rows @ weight.T + shift)`` in bf16 (fp32 accumulation), one fused oneDNN call."""
    return torch.ops.mkldnn._linear_pointwise(rows.to(torch.bfloat16), packed, shift.to(torch.bfloat16), "relu",
                                              [None], "")


def pool_hidden(hidden: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                pooling: str = "max", activation: str = "log1p_relu", chunk_rows: int = 256,
                row_layout_rows: int = 64, screen: Screen | None = None) -> torch.Tensor:
    """Pool ``hidden @ weight.T + bias`` (``[B, L, H]`` x ``[V, H]``) without materialising ``[B, L, V]``.

    Only non-padding positions are projected: they are packed into ``[N, H]`` and projected
    ``chunk_rows`` at a time into one reused buffer (fresh multi-MB allocations cost more than the matmul on
    CPU), and each document's part is reduced into its output row. Up to ``row_layout_rows`` rows (a query) the
    buffer is ``rows @ weight.T`` (``[N, V]``, reduced over rows); past that, ``weight @ rows.T`` (``[V, N]``,
    reduced over columns), which is faster for many rows. Both are fastest when ``weight.T`` is contiguous (the
    encoder stores it so): 0.75 vs 0.90 ms for 16 rows, 7.3 vs 8.8 ms for 256, SPLADE-tiny on 2 cores. For max
    pooling the bias is added once after the max (``max_t(x_t W + b) = max_t(x_t W) + b``), which saves a pass
    over every chunk. The multiply runs in ``weight``'s dtype (bf16 where the encoder's precision is bf16);
    the output is fp32.

    With a ``screen`` (max pooling, more than ``row_layout_rows`` positions), the whole multiply runs in bf16
    only to find the terms that can be non-zero, and those are computed again from the fp32 rows and weights:
    the same vectors as without it (within fp32 rounding), faster where the CPU multiplies bf16 natively
    (``_pool_screened``). Up to ``row_layout_rows`` positions it runs only for one text without padding (a
    query), with the screen's ``packed`` weights (``_pool_one_packed``): unpacked, a short multiply saves in bf16
    what the second pass costs.
    """
    check_options(pooling, activation)
    if screen is not None and pooling == "max":
        if screen.packed is not None and hidden.shape[0] == 1 and bool(mask.all()):
            return _pool_one_packed(hidden[0], weight, bias, activation, screen)
        if hidden.shape[0] * hidden.shape[1] > row_layout_rows:
            return _pool_screened(hidden, mask, weight, bias, activation, screen, chunk_rows, row_layout_rows)
    out = _pool_rows(hidden, mask, weight, bias, pooling, activation, chunk_rows, row_layout_rows)
    if pooling == "max":
        if bias is not None:
            out += bias.float()
        out = activate(out, activation)  # commutes with max; documents without tokens end at 0
    return out


def _pool_rows(hidden: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
               pooling: str, activation: str, chunk_rows: int, row_layout_rows: int) -> torch.Tensor:
    """Per text, ``max`` of ``rows @ weight.T`` (no bias, no activation; -inf for a text without tokens) or
    ``sum`` of ``activate(rows @ weight.T + bias)``; ``[B, V]`` fp32."""
    if pooling == "max" and hidden.shape[0] == 1 and hidden.shape[1] <= row_layout_rows and bool(mask.all()):
        # one short text without padding (a query): one multiply reduced over its rows, no packing bookkeeping
        return torch.mm(hidden[0].to(weight.dtype), weight.T).amax(dim=0, keepdim=True).float()
    keep = mask.to(torch.bool)
    flat = hidden[keep].to(weight.dtype)  # rows ordered by document, then position
    offsets = [0] + torch.cumsum(keep.sum(dim=1), 0).tolist()
    batch, vocab = hidden.shape[0], weight.shape[0]
    out = torch.full((batch, vocab), float("-inf") if pooling == "max" else 0.0, device=hidden.device)
    if flat.shape[0] == 0:
        return out
    across = 0 if flat.shape[0] <= row_layout_rows else 1  # the buffer's dimension that runs over rows
    storage = torch.empty(vocab * min(chunk_rows, flat.shape[0]), dtype=weight.dtype, device=hidden.device)
    doc = 0
    for start in range(0, flat.shape[0], chunk_rows):
        end = min(start + chunk_rows, flat.shape[0])
        logits = _project(flat[start:end], weight, bias if pooling == "sum" else None, storage, across)
        if pooling == "sum":
            logits = activate(logits.float(), activation)
        while doc < batch and offsets[doc] < end:
            lo, hi = max(offsets[doc], start) - start, min(offsets[doc + 1], end) - start
            if hi > lo:
                seg = logits.narrow(across, lo, hi - lo)
                if pooling == "max":
                    torch.maximum(out[doc], seg.amax(dim=across).float(), out=out[doc])
                else:
                    out[doc] += seg.sum(dim=across)
            if offsets[doc + 1] > end:
                break
            doc += 1
    return out


def _pool_screened(hidden: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   activation: str, screen: Screen, chunk_rows: int, row_layout_rows: int) -> torch.Tensor:
    """Max pooling, exact in fp32, with the full multiply in bf16.

    A term's pooled logit is ``max_t x_t.w + b``; the bf16 multiply's max is within
    ``SCREEN_ERROR * max_t |x_t| * |w|`` of it, so a term whose bf16 max plus that bound is <= 0 has an exact
    logit <= 0, which every activation maps to 0. The other terms (a few more than the non-zero ones) are
    multiplied again in fp32, from each text's own rows. The bf16 copy is row-major: ``weight @ rows.T`` runs
    fastest in bf16 that way (16 SciFact documents, 5,000 tokens: 110 ms against 190 in fp32, 2 cores with AMX).
    """
    approx = _pool_rows(hidden, mask, screen.weight, None, "max", activation, chunk_rows, row_layout_rows)
    keep = mask.to(torch.bool)
    largest = torch.linalg.vector_norm(hidden.float(), dim=-1).masked_fill(~keep, 0.0).amax(dim=1)  # per text
    upper = approx.add_(torch.outer(largest * SCREEN_ERROR, screen.norms))
    if bias is not None:
        upper += bias.float()
    out = torch.zeros_like(upper)
    for text, bound in enumerate(upper):
        terms = torch.nonzero(bound > 0).squeeze(1)
        if terms.numel():
            out[text, terms] = _exact(hidden[text][keep[text]], weight[terms].float(), bias, terms, activation)
    return out


def _exact(rows: torch.Tensor, candidates: torch.Tensor, bias: torch.Tensor | None, terms: torch.Tensor,
           activation: str) -> torch.Tensor:
    """The screened terms' pooled weights in fp32: ``activation(max_t x_t.w + b)`` over one text's ``rows``, with
    ``candidates`` the fp32 weight rows of ``terms``."""
    logits = torch.mm(rows.float(), candidates.T).amax(dim=0)
    if bias is not None:
        logits += bias[terms].float()
    return activate(logits, activation)


def _pool_one_packed(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str,
                     screen: Screen) -> torch.Tensor:
    """``_pool_screened`` for one text without padding (a query), with the screen's packed weights.

    The bound goes into the multiply's bias: ``shift_v = b_v + SCREEN_ERROR * max_t |x_t| * |w_v|`` (nudged up
    so that rounding it to bf16 never lowers it), so ``relu(x_t.w_v + shift_v)`` in bf16 is positive wherever the
    exact ``x_t.w_v + b_v`` is, and one fused call plus a max over rows finds the terms to compute in fp32. The
    max runs on the bf16 bits as int16: after the relu every value is >= 0, where the two orders agree, and an
    int16 max is several times faster than a bf16 one (SPLADE-tiny query: 0.02 vs 0.08 ms)."""
    largest = float(torch.linalg.vector_norm(rows, dim=1).max())
    # b + |b| e + c |w| (1 + e) >= (b + c |w|) + e |b + c |w||: rounding that to bf16 never takes it below b + c |w|
    shift = torch.add(screen.lifted_bias, screen.norms, alpha=largest * SCREEN_ERROR * (1 + BF16_ROUNDING))
    possible = _packed_linear(rows, screen.packed, shift).view(torch.int16).amax(dim=0)
    terms = torch.from_numpy(np.flatnonzero(possible.numpy() > 0))
    out = torch.zeros(1, weight.shape[0])
    if terms.numel():
        out[0, terms] = _exact(rows, screen.exact[terms], bias, terms, activation)
    return out
