"""The whole compiled step (fwbook.perf.whole_step) equals the plain eager step.

Losses, gradient norms, clipped gradients and the parameters after Adam, fp32 within 1e-5,
over updates whose learning rate changes (as a schedule changes it), traced by torch.compile
("aot_eager": the same graphs without inductor's C++ compile; the slow test compiles them).
"""

from __future__ import annotations

import pytest
import torch

from fwbook.core.models import ModelConfig, build_model
from fwbook.perf.whole_step import whole_training_step
from step_equality import assert_steps_agree


def _compare(backend: str, model_name: str = "fast_weights", **options):
    plain = build_model(ModelConfig(model=model_name, hidden=8), seed=0)
    fast = build_model(ModelConfig(model=model_name, hidden=8), seed=0)
    plain_optimizer = torch.optim.Adam(plain.parameters(), lr=1e-2)
    step = whole_training_step(fast, torch.optim.Adam(fast.parameters(), lr=1e-2), 0.5,
                               backend=backend, fallback=False, **options)
    assert_steps_agree(plain, plain_optimizer, fast, step, updates=4,
                       learning_rate=lambda update: 1e-2 / (update + 1))  # a new float each time
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
