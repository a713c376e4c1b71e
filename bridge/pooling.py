"""SPLADE pooling as pure torch functions: MLM logits (+ attention mask) -> one weight per vocabulary entry.

``weights[v] = pool over non-padding positions t of activation(logits[t, v])``.
Both activations are monotonic non-decreasing, so max pooling may be taken over the raw logits first;
``pool_hidden`` uses that to never hold a ``[batch, length, vocab]`` tensor.
"""
from __future__ import annotations

import torch

POOLINGS = ("max", "sum")
ACTIVATIONS = ("log1p_relu", "relu")


def check_options(pooling: str, activation: str) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def activate(x: torch.Tensor, activation: str) -> torch.Tensor:
    x = torch.relu(x)
    return torch.log1p(x) if activation == "log1p_relu" else x


def pool_logits(logits: torch.Tensor, mask: torch.Tensor, pooling: str = "max",
                activation: str = "log1p_relu") -> torch.Tensor:
    """Reference pooling over a full ``[B, L, V]`` logits tensor and a ``[B, L]`` mask -> ``[B, V]``."""
    check_options(pooling, activation)
    act = activate(logits, activation) * mask.unsqueeze(-1).to(logits.dtype)
    return act.amax(dim=1) if pooling == "max" else act.sum(dim=1)


def pool_hidden(hidden: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                pooling: str = "max", activation: str = "log1p_relu",
                chunk_elements: int = 1 << 22) -> torch.Tensor:
    """Pool ``hidden @ weight.T + bias`` (``[B, L, H]`` x ``[V, H]``) without materialising ``[B, L, V]``.

    Positions are processed in chunks of about ``chunk_elements`` logits; padding never contributes.
    """
    check_options(pooling, activation)
    b, length, _ = hidden.shape
    vocab = weight.shape[0]
    step = max(1, chunk_elements // max(1, b * vocab))
    keep = mask.to(torch.bool)
    out = torch.zeros(b, vocab, dtype=torch.float32, device=hidden.device)
    if pooling == "max":
        out.fill_(float("-inf"))
    for start in range(0, length, step):
        part = hidden[:, start:start + step]
        logits = torch.nn.functional.linear(part, weight, bias).float()
        valid = keep[:, start:start + step].unsqueeze(-1)
        if pooling == "max":
            logits.masked_fill_(~valid, float("-inf"))
            torch.maximum(out, logits.amax(dim=1), out=out)
        else:
            out += (activate(logits, activation) * valid).sum(dim=1)
    if pooling == "max":
        out = activate(out, activation)  # commutes with max; rows without any token stay 0
        out.nan_to_num_(0.0, neginf=0.0)
    return out
