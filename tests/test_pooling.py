import pytest
import torch

from bridge.pooling import Screen, pool_hidden, pool_logits


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


@pytest.mark.parametrize("activation", ["log1p_relu", "relu"])
def test_one_unpadded_text_takes_the_query_path_and_matches(activation):
    g = torch.Generator().manual_seed(2)
    hidden, weight, bias = torch.randn(1, 6, 8, generator=g), torch.randn(50, 8, generator=g), torch.randn(50, generator=g)
    mask = torch.ones(1, 6, dtype=torch.long)
    short = pool_hidden(hidden, mask, weight, bias, "max", activation)  # 6 rows <= row_layout_rows
    packed = pool_hidden(hidden, mask, weight, bias, "max", activation, row_layout_rows=0)
    torch.testing.assert_close(short, packed)
    torch.testing.assert_close(short, _reference(hidden, mask.float(), weight, bias, "max", activation))


def _near_zero_case(seed: int = 3):
    """Texts (with padding and an empty one) and a bias that puts every term's pooled logit at +-0.001:
    far inside bf16's error, so only a screen that respects its bound keeps the right terms."""
    g = torch.Generator().manual_seed(seed)
    hidden, weight = torch.randn(3, 40, 32, generator=g) * 3, torch.randn(300, 32, generator=g)
    mask = torch.tensor([[1] * 40, [1] * 25 + [0] * 15, [0] * 40])
    hidden[1, 25:] = 100.0
    exact_max = ((hidden[:2] @ weight.T).masked_fill(~mask[:2, :, None].bool(), float("-inf"))).amax(1)  # [2, V]
    sign = torch.where(torch.arange(300) % 2 == 0, 1e-3, -1e-3)
    bias = -exact_max[0] + sign  # text 0: half its terms just above zero, half just below
    return hidden, mask, weight, bias


def test_screened_max_pooling_equals_plain_fp32_at_the_threshold():
    hidden, mask, weight, bias = _near_zero_case()
    plain = pool_hidden(hidden, mask, weight, bias, row_layout_rows=0)
    screen = Screen.of(weight)
    approx = (hidden[0].bfloat16() @ screen.weight.T).float().amax(0) + bias
    assert ((approx > 0) != (plain[0] > 0)).sum() > 10  # bf16 alone would pick other terms
    for layout_rows in (0, 64):
        got = pool_hidden(hidden, mask, weight.T.contiguous().T, bias, row_layout_rows=layout_rows, screen=screen)
        assert torch.equal(got > 0, plain > 0)
        torch.testing.assert_close(got, plain, rtol=0, atol=1e-6)
    assert int((plain[0] > 0).sum()) == 150 and not plain[2].any()  # the empty text stays empty


def test_the_screen_decides_which_terms_are_computed():
    hidden, mask, weight, bias = _near_zero_case()
    # a screen that sees only the bias: terms it rules out stay 0 even where their exact logit is positive
    blind = Screen(torch.zeros_like(weight, dtype=torch.bfloat16), torch.zeros(weight.shape[0]))
    plain = pool_hidden(hidden, mask, weight, bias, row_layout_rows=0)
    got = pool_hidden(hidden, mask, weight, bias, row_layout_rows=0, screen=blind)
    assert torch.equal(got > 0, (plain > 0) & (bias > 0))
    assert (bias < 0).all() and not got.any() and int((plain > 0).sum()) >= 150  # here: it rules out every term
    # sum pooling does not screen
    sum_pooled = pool_hidden(hidden, mask, weight, bias, "sum", row_layout_rows=0, screen=blind)
    torch.testing.assert_close(sum_pooled, pool_hidden(hidden, mask, weight, bias, "sum", row_layout_rows=0))


def test_one_text_is_screened_through_the_packed_weights(monkeypatch):
    """A query (one text, no padding) goes through the screen's oneDNN-packed weights, with the bound folded into
    the fused multiply's bias: the same terms as plain fp32 at +-0.001 from zero, and a blind screen rules out
    every term, so the packed multiply is what decides."""
    from bridge import pooling, runtime

    hidden, mask, weight, bias = _near_zero_case()
    one, ones = hidden[:1], mask[:1]
    # the bias also as one more input dimension, so that without one only the error bound keeps the terms
    one_more, weight_more = torch.cat([one, torch.ones(1, 40, 1)], dim=2), torch.cat([weight, bias[:, None]], dim=1)
    plain = pool_hidden(one, ones, weight, bias)
    screen = Screen.of(weight).for_few_rows(40, weight, bias)
    if screen.packed is None:  # this torch or CPU has no packed bf16 linear: the screen still works, unpacked
        assert not runtime.cpu_has_bf16()
    calls, packed_pool = [], pooling._pool_one_packed
    monkeypatch.setattr(pooling, "_pool_one_packed", lambda *args: calls.append(args) or packed_pool(*args))
    got = pool_hidden(one, ones, weight.T.contiguous().T, bias, screen=screen)
    assert len(calls) == (screen.packed is not None)
    assert torch.equal(got > 0, plain > 0) and int((plain > 0).sum()) == 150
    torch.testing.assert_close(got, plain, rtol=0, atol=1e-6)
    lifted = Screen.of(weight_more).for_few_rows(40, weight_more, None)
    got = pool_hidden(one_more, ones, weight_more, None, screen=lifted)
    assert torch.equal(got > 0, plain > 0)
    torch.testing.assert_close(got, plain, rtol=0, atol=1e-5)
    if screen.packed is not None:
        blind = Screen(torch.zeros_like(screen.weight), torch.zeros(weight.shape[0])).for_few_rows(40, weight, bias)
        assert (bias < 0).all() and not pool_hidden(one, ones, weight, bias, screen=blind).any()


def test_unknown_options_raise():
    with pytest.raises(ValueError, match="pooling"):
        pool_logits(torch.zeros(1, 1, 2), torch.ones(1, 1), pooling="mean")
    with pytest.raises(ValueError, match="activation"):
        pool_logits(torch.zeros(1, 1, 2), torch.ones(1, 1), activation="gelu")
