"""The hand-derived Eq. 4 backward (fwbook.perf.fused_eq4) equals the plain autograd path.

Outputs and every parameter gradient in fp32 within 1e-5, for S = 1 and 2 inner steps, with
and without layer norm, attention element-wise and as bmm; then whole training steps
(forward, backward, clipping, Adam), eager and traced by torch.compile.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from fwbook.core.data import associative_retrieval
from fwbook.perf.fused_eq4 import eq4_states, fused_loss, fused_training_step, supports
from fwbook.core.models import ModelConfig, build_model
from step_equality import TOLERANCE, assert_steps_agree


def _model(hidden=12, **changes):
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=hidden, **changes))
    with torch.no_grad():  # move off the initialisation (W = 0.05 I, LN gain 1, bias 0)
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def _close(a, b):
    torch.testing.assert_close(a, b, atol=TOLERANCE, rtol=TOLERANCE)


@pytest.mark.parametrize("inner_steps, layer_norm, bmm", [
    (1, True, False), (2, True, False), (1, False, False), (2, False, False), (2, True, True)])
def test_outputs_and_gradients_equal_autograd(inner_steps, layer_norm, bmm):
    plain = _model(inner_steps=inner_steps, layer_norm=layer_norm)
    fused = copy.deepcopy(plain)
    batch = associative_retrieval(32, generator=torch.Generator().manual_seed(1))
    drive = plain.input_weight[batch.inputs] + plain.bias
    states_plain, _ = plain.core(drive)
    states_fused = eq4_states(fused.core, fused.input_weight[batch.inputs] + fused.bias, bmm)
    _close(states_fused, states_plain)
    # a loss on every step's state, so the gradient of each output reaches the backward;
    # averaged over the batch like the cross-entropy of training
    weights = torch.randn_like(states_plain) / states_plain.shape[0]
    (states_plain * weights).sum().backward()
    (states_fused * weights).sum().backward()
    for (name, a), b in zip(plain.named_parameters(), fused.parameters()):
        if a.grad is None:  # the read-out takes no part here
            assert b.grad is None, name
            continue
        assert b.grad is not None, name
        _close(b.grad, a.grad)


def test_classifier_loss_and_gradients_equal_autograd():
    plain = _model(hidden=20)
    fused = copy.deepcopy(plain)
    batch = associative_retrieval(64, generator=torch.Generator().manual_seed(2))
    loss_plain = F.cross_entropy(plain(batch.inputs), batch.targets)
    loss_fused = fused_loss(fused, batch.inputs, batch.targets)
    _close(loss_fused, loss_plain)
    loss_plain.backward()
    loss_fused.backward()
    for a, b in zip(plain.parameters(), fused.parameters()):
        _close(b.grad, a.grad)


@pytest.mark.parametrize("compile", [False, True])
def test_training_steps_equal_the_plain_step(compile):
    plain = _model(hidden=8)
    fast = copy.deepcopy(plain)
    plain_optimizer = torch.optim.Adam(plain.parameters(), lr=1e-2)
    step = fused_training_step(fast, torch.optim.Adam(fast.parameters(), lr=1e-2), 0.5,
                               compile=compile, backend="aot_eager", fallback=False)
    assert_steps_agree(plain, plain_optimizer, fast, step, updates=3)
    assert step.compiled and step.compile_s > 0


def test_only_eq4_fast_weights_are_supported():
    assert supports(build_model(ModelConfig(hidden=8)))
    explicit = build_model(ModelConfig(hidden=8, memory="explicit"))
    assert not supports(explicit) and not supports(build_model(ModelConfig(model="lstm",
                                                                           hidden=8)))
    with pytest.raises(ValueError, match="needs a fast-weights model with memory='efficient'"):
        fused_training_step(explicit, torch.optim.Adam(explicit.parameters()), 5.0)
