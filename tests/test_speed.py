"""Fast paths equal the plain path: compiled step, batched seeds, CUDA graphs (GPU only).

The compiled step is what ``train`` runs by default for long CPU runs, so the real (inductor)
compile is tested whenever a C++ compiler is present: one tiny graph (T = 5, H = 8, batch 16,
~30 s cold on 2 cores), reused from inductor's cache by the ``train`` test. The rest uses the
quick ``aot_eager`` backend, which exercises the same tracing and autograd plumbing.
"""

from __future__ import annotations


import pytest
import torch

from fwbook.core.data import associative_retrieval
from fwbook.core.models import ModelConfig, build_model
from fwbook.core.steps import (AUTO_COMPILE_MIN_UPDATES, FastPathWarning, choose_training_step,
                               compiled_training_step, cpp_compiler, plain_training_step)
from fwbook.core.train import TrainConfig, train
from fwbook.experiments.grids import retrieval_config
from fwbook.perf.batched import StackedModels, clip_per_model, lstm_forward

needs_cpp = pytest.mark.skipif(cpp_compiler() is None,
                               reason="TorchInductor needs a C++ compiler on the CPU (none found); "
                                      "train's 'auto' step is eager here too")

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


@needs_cpp
def test_inductor_compiled_step_equals_plain_step():
    """The real fast path (TorchInductor), one tiny compile: T = 5, H = 8, batch 16; on the
    CPU clipping and Adam are compiled too, and a learning rate that changes every update (a
    schedule) is followed without compiling Adam again."""
    from torch._dynamo.utils import counters

    from step_equality import assert_steps_agree

    plain, fast = _pair("fast_weights")
    counters.clear()
    step = compiled_training_step(fast, torch.optim.Adam(fast.parameters(), lr=1e-2), 0.5)
    assert step.compile_update  # the CPU default
    assert_steps_agree(plain, torch.optim.Adam(plain.parameters(), lr=1e-2), fast, step,
                       updates=4, learning_rate=lambda update: 1e-2 / (update + 1))
    assert step.compiled, step.fallback_reason
    assert counters["stats"]["unique_graphs"] <= 4  # loss, clip and Adam: once each


def test_the_loss_alone_can_be_compiled():
    """compile_update=False: the compiled loss, foreach clipping and Adam in floats, eager."""
    plain, fast = _pair("fast_weights")
    optimizer = torch.optim.Adam(fast.parameters(), lr=1e-2)
    step = compiled_training_step(fast, optimizer, 0.5, backend="aot_eager",
                                  compile_update=False)
    _assert_steps_equal(step, plain, fast, _batches())
    assert isinstance(optimizer.param_groups[0]["lr"], float)
    assert optimizer.param_groups[0]["foreach"] is True


def _tiny_config(steps=6, seed=0):
    # the shapes of _batches(): T = 5 (one pair), batch 16, H = 8: inductor's cache is reused
    return TrainConfig(model=ModelConfig(model="fast_weights", hidden=8), num_pairs=1,
                       num_train=64, num_validation=32, num_test=32, batch_size=16,
                       steps=steps, eval_every=3, lr=1e-2, seed=seed)


@needs_cpp
def test_train_with_the_compiled_step_equals_eager_training():
    eager = train(_tiny_config(), quiet=True, device="cpu", step="eager")
    compiled = train(_tiny_config(), quiet=True, device="cpu", step="compiled")
    assert {key: eager["training_step"][key] for key in ("path", "reason")} == {
        "path": "eager", "reason": "asked for"}
    assert eager["training_step"]["step_s"] > 0  # measured seconds per update
    assert compiled["training_step"]["path"] == "compiled"
    assert compiled["training_step"]["compile_s"] > 0
    assert compiled["config_hash"] == eager["config_hash"]  # the step is not part of the config
    for name in ("train_loss", "val_loss", "grad_norm"):
        assert compiled["curves"][name] == pytest.approx(eager["curves"][name], rel=1e-4, abs=1e-5)
    assert compiled["test_error"] == pytest.approx(eager["test_error"], abs=1 / 32 + 1e-9)


def test_auto_step_compiles_long_cpu_runs_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    long_run = AUTO_COMPILE_MIN_UPDATES
    path, reason = choose_training_step("auto", "fast_weights", long_run, cpu)
    assert path == ("compiled" if cpp_compiler() else "eager")
    assert choose_training_step("auto", "alstm", 40_000, cpu)[0] == path
    assert choose_training_step("auto", "fast_weights", long_run - 1, cpu) == (
        "eager", f"auto: {long_run - 1} updates are too few to repay compiling "
                 f"(considered from {long_run})")
    path, reason = choose_training_step("auto", "lstm", 40_000, cpu)
    assert path == "eager" and "nn.LSTM" in reason
    path, reason = choose_training_step("auto", "fast_weights", 40_000, cuda)
    assert path == "eager" and "only when asked for" in reason
    assert choose_training_step("eager", "fast_weights", 40_000, cpu) == ("eager", "asked for")
    assert choose_training_step("compiled", "lstm", 10, cpu) == ("compiled", "asked for")


def test_unknown_training_step_is_a_clear_error():
    with pytest.raises(ValueError, match="training step must be one of auto, eager, compiled; "
                                         "got 'fast'"):
        choose_training_step("fast", "fast_weights", 10, torch.device("cpu"))
    with pytest.raises(ValueError, match="training step must be one of"):
        train(_tiny_config(), quiet=True, device="cpu", step="fast")


def test_short_runs_record_the_eager_step():
    record = train(_tiny_config(), quiet=True, device="cpu")
    assert record["training_step"]["path"] == "eager"
    assert "too few" in record["training_step"]["reason"]


def test_many_compiled_steps_in_one_process_all_compile():
    """A sweep worker builds a compiled step per run; past Dynamo's recompile limit (8) the
    same code would silently run eagerly unless every step starts from a reset cache."""
    from torch._dynamo.utils import counters

    limit = torch._dynamo.config.recompile_limit
    batch = _batches(count=1)[0]
    for hidden in range(2, limit + 4):  # limit + 2 configurations of distinct shapes
        torch.manual_seed(0)
        model = build_model(ModelConfig(model="fast_weights", hidden=hidden))
        before = counters["stats"]["unique_graphs"]
        step = compiled_training_step(model, torch.optim.Adam(model.parameters(), lr=1e-2),
                                      0.5, backend="aot_eager")
        step(batch.inputs, batch.targets)
        assert counters["stats"]["unique_graphs"] > before, f"H = {hidden} ran uncompiled"


def test_compile_failure_falls_back_with_a_warning():
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler on this platform")

    plain, fast = _pair()
    step = compiled_training_step(fast, torch.optim.Adam(fast.parameters(), lr=1e-2), 0.5,
                                  backend=broken_backend)
    with pytest.warns(FastPathWarning, match="no compiler on this platform"):
        _assert_steps_equal(step, plain, fast, _batches(count=2))
    assert step.compiled is False and "no compiler" in step.fallback_reason
    # the plain step's optimizer again: a float learning rate and foreach Adam
    group = step.optimizer.param_groups[0]
    assert group["lr"] == 1e-2 and isinstance(group["lr"], float) and group["foreach"] is True


def test_compile_failure_of_the_loss_alone_falls_back_too():
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler here")

    plain, fast = _pair()
    step = compiled_training_step(fast, torch.optim.Adam(fast.parameters(), lr=1e-2), 0.5,
                                  backend=broken_backend, compile_update=False)
    with pytest.warns(FastPathWarning, match="no compiler here"):
        _assert_steps_equal(step, plain, fast, _batches(count=2))
    assert step.compiled is False


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
def test_one_batched_update_equals_an_update_of_each_seed(model):
    """The batched benchmark's update: vmapped losses, clipping per model, one Adam."""
    configs = [retrieval_config(model, 8, "smoke", seed=seed) for seed in (0, 3)]
    singles = [build_model(config.model, seed=config.seed) for config in configs]
    single_optimizers = [torch.optim.Adam(single.parameters(), lr=1e-2) for single in singles]
    stacked = StackedModels([build_model(c.model, seed=c.seed) for c in configs], configs[0])
    parameters = list(stacked.params.values())
    optimizer = torch.optim.Adam(parameters, lr=1e-2)
    batches = _batches(count=2, num_pairs=4)
    inputs = torch.stack([b.inputs for b in batches])  # (K, B, T)
    targets = torch.stack([b.targets for b in batches])  # (K, B)
    for _ in range(2):  # the second update also checks Adam's state
        optimizer.zero_grad(set_to_none=True)
        losses = stacked.losses(stacked.params, stacked.buffers, inputs, targets)  # (K,)
        losses.sum().backward()
        norms = clip_per_model(parameters, len(configs), 0.5)  # (K,)
        optimizer.step()
        for k, (single, single_optimizer) in enumerate(zip(singles, single_optimizers)):
            loss, norm = plain_training_step(single, single_optimizer, inputs[k], targets[k], 0.5)
            assert torch.allclose(losses[k], loss, atol=TOLERANCE, rtol=TOLERANCE)
            assert torch.allclose(norms[k], norm, atol=TOLERANCE, rtol=TOLERANCE)
            for name, parameter in single.named_parameters():
                assert torch.allclose(stacked.params[name][k], parameter, atol=TOLERANCE,
                                      rtol=TOLERANCE), name
    assert not torch.allclose(losses[0], losses[1])  # different seeds really are different


def test_batched_lstm_refuses_an_input_embedding():
    config = retrieval_config("lstm", 8, "smoke", input_embedding=8)
    with pytest.raises(ValueError, match="one-hot input only"):
        StackedModels([build_model(config.model, seed=seed) for seed in (0, 1)], config)


def test_lstm_forward_equals_nn_lstm():
    torch.manual_seed(0)
    model = build_model(ModelConfig(model="lstm", hidden=12))
    tokens = _batches(count=1, num_pairs=4)[0].inputs
    params = dict(model.named_parameters())
    assert torch.allclose(lstm_forward(params, tokens, 37), model(tokens), atol=1e-6)
