"""Causal linear attention with decay: the three direct forms agree, and fast weights are it."""

import pytest
import torch

from fwbook.core.data import make_splits
from fwbook.chapters.ch07_linear_attention import (decay_mask, fast_weights_as_linear_attention,
                                     linear_attention_chunked, linear_attention_masked,
                                     linear_attention_recurrent, linear_attention_weights,
                                     time_forms)
from fwbook.core.models import ModelConfig, build_model

torch.set_num_threads(1)  # tiny tensors: extra threads only contend on a shared machine

TOLERANCE = 1e-5


def _random(batch=3, steps=11, dim=6, value_dim=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, steps, dim, generator=generator)
    k = torch.randn(batch, steps, dim, generator=generator)
    v = torch.randn(batch, steps, value_dim, generator=generator)
    return q, k, v


def _close(a, b, scale=1.0):
    return torch.allclose(a, b, atol=TOLERANCE * scale, rtol=TOLERANCE)


@pytest.mark.parametrize("decay", [0.0, 0.5, 0.95, 1.0])
def test_masked_recurrent_and_chunked_forms_agree(decay):
    q, k, v = _random()
    masked = linear_attention_masked(q, k, v, decay)
    scale = float(masked.abs().max())
    assert masked.dtype == torch.float32 and masked.shape == (3, 11, 5)
    assert _close(linear_attention_recurrent(q, k, v, decay), masked, scale)
    for chunk in (1, 3, 4, 11, 16):
        assert _close(linear_attention_chunked(q, k, v, decay, chunk), masked, scale)


def test_masked_form_matches_the_definition_written_out():
    q, k, v = _random(batch=2, steps=5, dim=3, value_dim=2)
    decay = 0.8
    expected = torch.zeros(2, 5, 2)
    for t in range(5):
        for tau in range(t + 1):
            weight = decay ** (t - tau) * (q[:, t] * k[:, tau]).sum(-1, keepdim=True)  # (B, 1)
            expected[:, t] += weight * v[:, tau]
    assert _close(linear_attention_masked(q, k, v, decay), expected)


def test_decay_mask_is_causal():
    mask = decay_mask(4, 0.5)
    assert torch.equal(mask.triu(1), torch.zeros(4, 4))
    assert mask[3, 0] == pytest.approx(0.125) and mask[2, 2] == 1.0
    zero_decay = decay_mask(4, 0.0)  # only the current step survives, no inf/nan from 0^-n
    assert torch.equal(zero_decay, torch.eye(4))


def test_bad_inputs_are_refused():
    q, k, v = _random()
    with pytest.raises(ValueError, match="3-d"):
        linear_attention_masked(q[0], k, v, 0.9)
    with pytest.raises(ValueError, match="decay"):
        linear_attention_recurrent(q, k, v, 1.5)
    with pytest.raises(ValueError, match="chunk"):
        linear_attention_chunked(q, k, v, 0.9, chunk=0)
    with pytest.raises(ValueError, match="same shape"):
        linear_attention_masked(q, k[:, :5], v, 0.9)


@pytest.mark.parametrize("memory", ["efficient", "explicit"])
def test_fast_weights_read_is_linear_attention(memory):
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=20, memory=memory)).eval()
    tokens = make_splits(0, 4, 10, 10, 16).test.inputs  # (16, 11)
    result = fast_weights_as_linear_attention(model, tokens)
    fast = result["fast_term"]  # A(t) h_0(t+1) from the core's explicit matrix
    scale = float(fast.abs().max())
    assert scale > 0
    assert _close(result["linear_attention"], fast, scale)
    # the core stepped here computes the same hidden states as the model's own trace
    assert _close(result["hidden"], result["trace_hidden"])
    # and the attention weights are exactly what the trace records (Eq. 4)
    weights = result["memory_weights"]
    assert _close(result["attention_weights"], weights, float(weights.abs().max()))
    # the recurrent state form gives the same read
    keys = torch.cat([torch.zeros_like(result["hidden"][:, :1]), result["hidden"][:, :-1]], 1)
    recurrent = linear_attention_recurrent(result["queries"], keys, model.core.fast_lr * keys,
                                           model.core.decay)
    assert _close(recurrent, fast, scale)


def test_attention_weights_are_causal():
    q, k, _ = _random()
    weights = linear_attention_weights(q, k, 0.9)
    assert torch.equal(weights.triu(1), torch.zeros_like(weights))


def test_time_forms_reports_each_form():
    timings = time_forms(batch=4, steps=6, dim=4, repeats=2)
    assert set(timings) == {"masked", "recurrent", "chunked"}
    assert all(value > 0 for value in timings.values())


def test_key_dependence_and_its_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fwbook.chapters.ch07_linear_attention import key_dependence, plot_key_dependence

    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=20)).eval()
    tokens = make_splits(0, 4, 10, 10, 16).test.inputs
    shift = key_dependence(model, tokens)  # (T,)
    assert shift.shape == (11,)
    assert shift[0] == 0  # the memory is empty at the first step
    assert bool((shift[1:] > 0).all())  # later keys depend on earlier reads
    assert model.core.fast_lr == 0.5  # the switched-off copy leaves the model alone
    figure = plot_key_dependence({"fresh": shift})
    assert isinstance(figure, plt.Figure)
    plt.close(figure)
