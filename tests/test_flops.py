"""The analytic FLOP counts of fwbook.perf.flops against torch's FlopCounterMode on real updates."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fwbook.perf.speedup import reference_eager_model
from fwbook.core.data import associative_retrieval
from fwbook.perf.flops import (FLOP_MODELS, count_matmul_flops, matmul_rate, parameter_count,
                          training_flops)
from fwbook.core.models import ModelConfig, build_model

BATCH, HIDDEN = 16, 12


def _forward_backward(model, num_pairs=4):
    batch = associative_retrieval(BATCH, num_pairs=num_pairs,
                                  generator=torch.Generator().manual_seed(0))
    return lambda: F.cross_entropy(model(batch.inputs), batch.targets).backward()


@pytest.mark.parametrize("model_name", FLOP_MODELS)
@pytest.mark.parametrize("num_pairs", [1, 4])
def test_matrix_products_match_flop_counter(model_name, num_pairs):
    """Recurrence and read-out products, forward and backward, counted by torch itself
    (nn.LSTM with oneDNN off: its fused CPU kernel is invisible to the counter)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(model=model_name, hidden=HIDDEN))
    counts = training_flops(model_name, HIDDEN, BATCH, num_pairs)
    with torch.backends.mkldnn.flags(enabled=False):
        counted = count_matmul_flops(_forward_backward(model, num_pairs))
    # the package computes the Eq. 4 attention element-wise: the counter does not see it
    assert counted == counts["recurrent"] + counts["readout"]
    assert counts["matmul"] == counts["recurrent"] + counts["attention"] + counts["readout"]
    assert counts["total"] == counts["matmul"] + counts["elementwise"] + counts["optimizer"]
    assert (counts["attention"] > 0) == (model_name == "fast_weights")


@pytest.mark.parametrize("num_pairs", [1, 4])
def test_eq4_attention_matches_flop_counter_through_bmm(num_pairs):
    """The reference recurrence computes the attention with bmm, so the counter sees all of
    it; it also multiplies h(0) = 0 by W (forward and dW), which the package skips."""
    model = reference_eager_model(HIDDEN)
    counts = training_flops("fast_weights", HIDDEN, BATCH, num_pairs)
    initial_step = 2 * (2 * BATCH * HIDDEN * HIDDEN)
    assert count_matmul_flops(_forward_backward(model, num_pairs)) == \
        counts["matmul"] + initial_step


def test_optimizer_work_scales_with_parameters():
    counts = training_flops("lstm", 20)
    assert counts["optimizer"] == 14 * parameter_count("lstm", 20) == 14 * 10_557
    assert counts["per_sequence"] == counts["total"] / 128
    with pytest.raises(ValueError, match="model must be one of fast_weights, irnn"):
        training_flops("gru", 20)


def test_matmul_rate_is_measured():
    rate = matmul_rate(32, 16, 16, seconds=0.02, repeats=2)
    assert rate["shape"] == [32, 16, 16]
    assert 0 < rate["gflops_min"] <= rate["gflops"] <= rate["gflops_max"]
