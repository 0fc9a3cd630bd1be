"""Fast paths equal the plain path: compiled step, batched seeds, CUDA graphs (GPU only).

One real (inductor) compile at most, on a tiny model; the rest uses the quick ``aot_eager``
backend, which exercises the same tracing and autograd plumbing.
"""

from __future__ import annotations

import os
import warnings

import pytest
import torch

from fwbook.batched import check_batchable, lstm_forward, train_batched
from fwbook.data import associative_retrieval
from fwbook.experiments import retrieval_config
from fwbook.models import ModelConfig, build_model
from fwbook.speed import FastPathWarning, compiled_training_step
from fwbook.train import plain_training_step, train

TOLERANCE = 1e-5


def _pair(model="fast_weights", hidden=8):
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(build_model(ModelConfig(model=model, hidden=hidden)))
    return models


def _batches(count=3, num_pairs=1, size=16):
    generator = torch.Generator().manual_seed(0)
    return [associative_retrieval(size, num_pairs=num_pairs, generator=generator)
            for _ in range(count)]


def _assert_steps_equal(step, plain, fast, batches, clip=0.5):
    plain_optimizer = torch.optim.Adam(plain.parameters(), lr=1e-2)
    for batch in batches:
        loss_a, norm_a = plain_training_step(plain, plain_optimizer, batch.inputs, batch.targets,
                                             clip)
        grads_a = [p.grad.clone() for p in plain.parameters()]
        loss_b, norm_b = step(batch.inputs, batch.targets)
        grads_b = [p.grad for p in fast.parameters()]
        assert torch.allclose(loss_a, loss_b, atol=TOLERANCE, rtol=TOLERANCE)
        assert torch.allclose(norm_a, norm_b, atol=TOLERANCE, rtol=TOLERANCE)
        for a, b in zip(grads_a, grads_b):  # clipped gradients
            assert torch.allclose(a, b, atol=TOLERANCE, rtol=TOLERANCE)
        for a, b in zip(plain.parameters(), fast.parameters()):
            assert torch.allclose(a, b, atol=TOLERANCE, rtol=TOLERANCE)


def test_traced_step_equals_plain_step():
    plain, fast = _pair("fast_weights")
    step = compiled_training_step(fast, torch.optim.Adam(fast.parameters(), lr=1e-2), 0.5,
                                  backend="aot_eager")
    _assert_steps_equal(step, plain, fast, _batches())
    assert step.compiled and step.fallback_reason is None and step.compile_s > 0


@pytest.mark.skipif(os.environ.get("FWBOOK_COMPILE_TESTS") != "1",
                    reason="a real inductor compile takes 1-5 min on a busy 2-core machine; "
                           "set FWBOOK_COMPILE_TESTS=1 to run it")
def test_inductor_compiled_step_equals_plain_step():
    """The real fast path (TorchInductor), one tiny compile: T = 5, H = 8, batch 16."""
    plain, fast = _pair("fast_weights")
    step = compiled_training_step(fast, torch.optim.Adam(fast.parameters(), lr=1e-2), 0.5)
    _assert_steps_equal(step, plain, fast, _batches())
    assert step.compiled, step.fallback_reason


def test_compile_failure_falls_back_with_a_warning():
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler on this platform")

    plain, fast = _pair()
    step = compiled_training_step(fast, torch.optim.Adam(fast.parameters(), lr=1e-2), 0.5,
                                  backend=broken_backend)
    with pytest.warns(FastPathWarning, match="no compiler on this platform"):
        _assert_steps_equal(step, plain, fast, _batches(count=2))
    assert step.compiled is False and "no compiler" in step.fallback_reason


def test_compile_failure_raises_without_fallback():
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler")

    _, fast = _pair()
    step = compiled_training_step(fast, torch.optim.Adam(fast.parameters(), lr=1e-2), 0.5,
                                  backend=broken_backend, fallback=False)
    batch = _batches(count=1)[0]
    with pytest.raises(Exception, match="no compiler"):
        step(batch.inputs, batch.targets)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CUDA graphs)")
def test_cuda_graph_step_equals_plain_step():
    plain, fast = _pair("fast_weights", hidden=20)
    plain.cuda()
    fast.cuda()
    step = compiled_training_step(fast, torch.optim.Adam(fast.parameters(), lr=1e-2), 0.5)
    assert step.mode == "reduce-overhead"
    batches = [b.to("cuda") for b in _batches(count=4, num_pairs=4, size=32)]
    _assert_steps_equal(step, plain, fast, batches)


@pytest.mark.parametrize("model", ["fast_weights", "lstm"])
def test_batched_seeds_equal_single_runs(model):
    configs = [retrieval_config(model, 8, "smoke", seed=seed, steps=20, eval_every=10,
                                num_validation=200, num_test=200) for seed in (0, 3)]
    singles = [train(config, quiet=True, device="cpu") for config in configs]
    batched = train_batched(configs, device="cpu")
    for single, together in zip(singles, batched):
        assert together["seed"] == single["seed"]
        assert together["config_hash"] == single["config_hash"]
        assert together["trainer"] == {"name": "batched", "models": 2}
        assert together["status"] == single["status"] == "completed"
        assert together["test_error"] == pytest.approx(single["test_error"], abs=2e-3)
        curves_a, curves_b = single["curves"], together["curves"]
        assert curves_a["step"] == curves_b["step"]
        for name in ("train_loss", "val_loss", "grad_norm"):
            assert curves_b[name] == pytest.approx(curves_a[name], rel=1e-4, abs=1e-5)
    # different seeds really are different runs
    assert batched[0]["curves"]["train_loss"] != batched[1]["curves"]["train_loss"]


def test_batched_writes_records(tmp_path):
    configs = [retrieval_config("irnn", 4, "smoke", seed=s, steps=4, eval_every=2)
               for s in (0, 1)]
    paths = [tmp_path / f"seed{s}.json" for s in (0, 1)]
    records = train_batched(configs, outputs=paths, device="cpu")
    assert all(path.exists() for path in paths)
    assert [r["steps_done"] for r in records] == [4, 4]


def test_batched_rejects_mixed_configurations():
    with pytest.raises(ValueError, match="equal except for their seeds"):
        check_batchable([retrieval_config("irnn", 8, "smoke"), retrieval_config("irnn", 16, "smoke")])
    with pytest.raises(ValueError, match="distinct seeds"):
        check_batchable([retrieval_config("irnn", 8, "smoke")] * 2)


def test_lstm_forward_equals_nn_lstm():
    torch.manual_seed(0)
    model = build_model(ModelConfig(model="lstm", hidden=12))
    tokens = _batches(count=1, num_pairs=4)[0].inputs
    params = dict(model.named_parameters())
    assert torch.allclose(lstm_forward(params, tokens, 37), model(tokens), atol=1e-6)
