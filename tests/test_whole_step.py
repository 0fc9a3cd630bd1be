"""The whole compiled step (fwbook.perf.whole_step) equals the plain eager step.

Losses, gradient norms, clipped gradients and the parameters after Adam, fp32 within 1e-5,
over updates whose learning rate changes (as a schedule changes it), traced by torch.compile
("aot_eager": the same graphs without inductor's C++ compile; the slow test compiles them).
"""

from __future__ import annotations

import pytest
import torch

from fwbook.core.data import associative_retrieval
from fwbook.core.models import ModelConfig, build_model
from fwbook.core.train import plain_training_step
from fwbook.perf.whole_step import whole_training_step

TOLERANCE = 1e-5


def _close(a, b):
    torch.testing.assert_close(a, b, atol=TOLERANCE, rtol=TOLERANCE)


def _compare(backend: str, model_name: str = "fast_weights", **options):
    plain = build_model(ModelConfig(model=model_name, hidden=8), seed=0)
    fast = build_model(ModelConfig(model=model_name, hidden=8), seed=0)
    plain_optimizer = torch.optim.Adam(plain.parameters(), lr=1e-2)
    step = whole_training_step(fast, torch.optim.Adam(fast.parameters(), lr=1e-2), 0.5,
                               backend=backend, fallback=False, **options)
    generator = torch.Generator().manual_seed(3)
    for update in range(4):
        for optimizer in (plain_optimizer, step.optimizer):
            for group in optimizer.param_groups:
                group["lr"] = 1e-2 / (update + 1)  # a schedule: a new float every update
        batch = associative_retrieval(16, num_pairs=1, generator=generator)
        loss_a, norm_a = plain_training_step(plain, plain_optimizer, batch.inputs,
                                             batch.targets, 0.5)
        loss_b, norm_b = step(batch.inputs, batch.targets)
        _close(loss_b, loss_a)
        _close(norm_b, norm_a)
        for a, b in zip(plain.parameters(), fast.parameters()):
            _close(b.grad, a.grad)  # clipped
            _close(b, a)  # after Adam
    assert step.compiled and step.compile_s > 0
    return step


@pytest.mark.parametrize("fused_backward", [False, True])
def test_whole_step_equals_the_plain_step(fused_backward):
    _compare("aot_eager", fused_backward=fused_backward)


def test_the_fused_backward_needs_eq4_fast_weights():
    model = build_model(ModelConfig(model="irnn", hidden=8), seed=0)
    with pytest.raises(ValueError, match="fused backward needs a fast-weights model"):
        whole_training_step(model, torch.optim.Adam(model.parameters()), 5.0,
                            fused_backward=True)


@pytest.mark.slow
@pytest.mark.parametrize("cpp_wrapper", [False, True])
def test_inductor_whole_step_equals_the_plain_step(cpp_wrapper):
    """Inductor's C++ kernels (and, with cpp_wrapper, its C++ caller) compute the same update;
    the compiled Adam is compiled once, not once per learning rate."""
    from torch._dynamo.utils import counters

    counters.clear()
    _compare("inductor", cpp_wrapper=cpp_wrapper)
    assert counters["stats"]["unique_graphs"] <= 4
