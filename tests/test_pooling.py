import pytest
import torch

from bridge.pooling import pool_hidden, pool_logits


def _reference(hidden, mask, weight, bias, pooling, activation):
    """Straight from the definition: full logits, activation, masked max/sum over positions."""
    logits = hidden @ weight.T + bias
    act = torch.relu(logits)
    if activation == "log1p_relu":
        act = torch.log1p(act)
    act = act * mask.unsqueeze(-1)
    return act.amax(1) if pooling == "max" else act.sum(1)


@pytest.mark.parametrize("pooling", ["max", "sum"])
@pytest.mark.parametrize("activation", ["log1p_relu", "relu"])
@pytest.mark.parametrize("chunk", [1, 3, 5, 512])
@pytest.mark.parametrize("layout_rows", [0, 64])  # [vocab, rows] buffers, [rows, vocab] buffers
def test_pool_hidden_matches_definition(pooling, activation, chunk, layout_rows):
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 7, 8, generator=g)  # a 4th, empty document is added below
    weight = torch.randn(50, 8, generator=g)
    bias = torch.randn(50, generator=g)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] + [0] * 6, [0] * 7])
    hidden = torch.cat([hidden, torch.full((1, 7, 8), 100.0)])
    # padding positions hold large values that must not leak into the result
    hidden[1, 4:] = 100.0
    hidden[2, 1:] = 100.0
    got = pool_hidden(hidden, mask, weight, bias, pooling, activation, chunk_rows=chunk, row_layout_rows=layout_rows)
    # the encoder's layout: weight.T contiguous
    stored = weight.T.contiguous().T
    torch.testing.assert_close(pool_hidden(hidden, mask, stored, bias, pooling, activation, chunk, layout_rows), got)
    want = _reference(hidden, mask.float(), weight, bias, pooling, activation)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    full = pool_logits(hidden @ weight.T + bias, mask, pooling, activation)
    torch.testing.assert_close(got, full, rtol=1e-5, atol=1e-5)


def test_pool_hidden_in_bf16_stays_close_and_returns_fp32():
    g = torch.Generator().manual_seed(1)
    hidden, weight, bias = torch.randn(2, 9, 16, generator=g), torch.randn(40, 16, generator=g), torch.randn(40, generator=g)
    mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4])
    exact = pool_hidden(hidden, mask, weight, bias)
    for layout_rows in (0, 64):
        low = pool_hidden(hidden, mask, weight.bfloat16(), bias, row_layout_rows=layout_rows)
        assert low.dtype == torch.float32
        torch.testing.assert_close(low, exact, rtol=0.05, atol=0.05)
        assert not torch.equal(low, exact)  # it did multiply in bf16


def test_unknown_options_raise():
    with pytest.raises(ValueError, match="pooling"):
        pool_logits(torch.zeros(1, 1, 2), torch.ones(1, 1), pooling="mean")
    with pytest.raises(ValueError, match="activation"):
        pool_logits(torch.zeros(1, 1, 2), torch.ones(1, 1), activation="gelu")
