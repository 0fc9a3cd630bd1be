"""The fast-weights RNN and controls, and every defect of earlier implementations (PAPER.md)."""

import numpy as np
import pytest
import torch

from fwbook.core.data import encode, make_splits
from fwbook.core.models import FastWeightsCore, ModelConfig, build_model


@pytest.fixture(scope="module")
def batch():
    return make_splits(seed=0, num_train=64, num_validation=1, num_test=1).train


def _pair(config, seed=0):
    torch.manual_seed(seed)
    efficient = build_model(ModelConfig(**{**config, "memory": "efficient"}))
    explicit = build_model(ModelConfig(**{**config, "memory": "explicit"}))
    explicit.load_state_dict(efficient.state_dict())
    return efficient, explicit


@pytest.mark.parametrize("config", [
    dict(hidden=20), dict(hidden=50, inner_steps=3), dict(hidden=20, layer_norm=False, inner_steps=2),
    dict(hidden=30, decay=0.8, fast_lr=1.0),
])
def test_explicit_and_eq4_forms_agree_in_outputs_and_gradients(batch, config):
    efficient, explicit = _pair(config)
    out_a, out_b = efficient(batch.inputs), explicit(batch.inputs)
    assert torch.allclose(out_a, out_b, atol=1e-5, rtol=1e-5)
    loss_a = torch.nn.functional.cross_entropy(out_a, batch.targets)
    loss_b = torch.nn.functional.cross_entropy(out_b, batch.targets)
    loss_a.backward(), loss_b.backward()
    for (name, p_a), p_b in zip(efficient.named_parameters(), explicit.parameters()):
        assert torch.allclose(p_a.grad, p_b.grad, atol=1e-5, rtol=1e-4), name


@pytest.mark.parametrize("model", ["fast_weights", "irnn", "ln_irnn", "lstm"])
def test_a_sample_is_the_same_alone_and_inside_any_batch(batch, model):
    torch.manual_seed(1)
    net = build_model(ModelConfig(model=model, hidden=20)).eval()
    full = net(batch.inputs)  # (64, 37)
    alone = torch.cat([net(batch.inputs[i:i + 1]) for i in range(8)])
    assert torch.allclose(full[:8], alone, atol=1e-6)
    shuffled = net(batch.inputs.flip(0))
    assert torch.allclose(full, shuffled.flip(0), atol=1e-6)
    assert torch.isfinite(alone).all()  # a batch of one works (batch-axis "layer norm" gives NaN)


def test_a_is_per_sample():
    """Changing one sample's input must not change another sample's fast weights."""
    core = FastWeightsCore(hidden=4, memory="explicit")
    drive = torch.randn(2, 3, 4)
    state = core.initial_state(2, drive)
    for t in range(3):
        state, _ = core.step(drive[:, t], state)
    changed = drive.clone()
    changed[1] = torch.randn(3, 4) * 5
    other = core.initial_state(2, drive)
    for t in range(3):
        other, _ = core.step(changed[:, t], other)
    assert torch.equal(state.fast_weights[0], other.fast_weights[0])
    assert not torch.allclose(state.fast_weights[1], other.fast_weights[1])


def test_hand_computed_two_steps_use_h_t_for_a_and_the_slow_term():
    """Two steps worked out by hand with numpy: A(t) is built from h(t), slow term is W h(t)."""
    hidden, decay, fast_lr = 2, 0.5, 0.25
    core = FastWeightsCore(hidden, decay=decay, fast_lr=fast_lr, inner_steps=1,
                           layer_norm=False, memory="explicit", recurrent_init=0.0)
    W = np.array([[0.5, -0.25], [0.75, 1.0]], dtype=np.float32)
    with torch.no_grad():
        core.recurrent.copy_(torch.from_numpy(W))
    x1, x2 = np.array([1.0, 2.0], np.float32), np.array([-1.0, 3.0], np.float32)
    relu = lambda v: np.maximum(v, 0)
    # step 1: h(0) = 0, A(0) = 0  ->  h(1) = f(C x(1))
    h1 = relu(x1)                                   # [1, 2]
    A1 = fast_lr * np.outer(h1, h1)                 # A(1) = λ·0 + η h(1) h(1)ᵀ
    # step 2: preliminary h_0(2) = f(W h(1) + C x(2)); then h(2) = f(W h(1) + C x(2) + A(1) h_0(2))
    slow = W @ h1 + x2                              # [0 - 1, 2.75 + 3] = [-1, 5.75]
    h0 = relu(slow)                                 # [0, 5.75]
    h2 = relu(slow + A1 @ h0)                       # A(1) h_0 = 0.25 * [1,2]·(2*5.75) * [1,2]
    A2 = decay * A1 + fast_lr * np.outer(h2, h2)
    drive = torch.from_numpy(np.stack([x1, x2]))[None]  # (1, 2, 2)
    states, _ = core(drive)
    assert np.allclose(states[0, 0].detach().numpy(), h1)
    assert np.allclose(states[0, 1].detach().numpy(), h2)
    assert np.allclose(h2, [1.875, 11.5])           # by hand: [-1 + 2.875, 5.75 + 5.75]
    state = core.initial_state(1, drive)
    state, _ = core.step(drive[:, 0], state)
    state, _ = core.step(drive[:, 1], state)
    assert np.allclose(state.fast_weights[0].detach().numpy(), A2)
    # the efficient form gives the same two states
    core.memory = "efficient"
    assert np.allclose(core(drive)[0][0].detach().numpy(), np.stack([h1, h2]))


def test_trace_returns_states_and_eq4_weights(batch):
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=20, inner_steps=2))
    trace = model.trace(batch.inputs[:3])
    assert trace.hidden_states.shape == (3, 11, 20)
    assert trace.memory_weights.shape == (3, 11, 2, 11)
    assert torch.allclose(trace.logits, model(batch.inputs[:3]))
    weights = trace.memory_weights
    # no weight on the future: step t attends to h(1)..h(t) only
    assert torch.all(weights[:, 0] == 0)
    assert torch.all(torch.triu(weights[:, :, 0], diagonal=0) == 0)


def test_traced_weights_are_eq4_of_the_preliminary_vector(batch):
    """With S = 1 the weight on h(τ) is η λ^(t-τ) h(τ)ᵀ h_0(t+1), h_0(t+1) = f(W h(t) + C x(t))."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=20, inner_steps=1))
    tokens = batch.inputs[:3]
    trace = model.trace(tokens)
    states, weights = trace.hidden_states, trace.memory_weights
    t = 10  # the step reading the query key; states[:, t - 1] is h(t)
    drive = model.input_weight[tokens[:, t]] + model.bias
    h0 = torch.relu(states[:, t - 1] @ model.core.recurrent.T + drive)  # (3, H)
    decay = 0.95 ** torch.arange(t - 1, -1, -1.0)  # λ^(t-τ), τ = 1..t
    expected = 0.5 * decay * (states[:, :t] @ h0[:, :, None]).squeeze(2)
    assert torch.allclose(weights[:, t, 0, :t], expected, atol=1e-4, rtol=1e-5)


def test_explicit_form_cannot_trace_weights():
    model = build_model(ModelConfig(hidden=8, memory="explicit"))
    with pytest.raises(ValueError, match="efficient form only"):
        model.trace(encode("c9k8j3f1??c")[None])


def test_controls_initialisation_and_shapes(batch):
    irnn = build_model(ModelConfig(model="irnn", hidden=20))
    assert torch.equal(irnn.recurrent.detach(), torch.eye(20))
    fw = build_model(ModelConfig(hidden=20))
    assert torch.allclose(fw.core.recurrent.detach(), 0.05 * torch.eye(20))
    bound = 1 / 20 ** 0.5
    assert fw.input_weight.abs().max() <= bound
    for name in ("irnn", "ln_irnn", "lstm"):
        model = build_model(ModelConfig(model=name, hidden=20))
        assert model(batch.inputs).shape == (64, 37)


@pytest.mark.parametrize("kwargs, message", [
    (dict(model="gru"), "model must be one of fast_weights, irnn"),
    (dict(hidden=-3), "hidden must be a positive integer"),
    (dict(inner_steps=0), "inner_steps (S) must be an integer >= 1"),
    (dict(decay=1.5), "decay (λ) must lie in [0, 1]"),
    (dict(fast_lr=-0.1), "fast_lr (η) must be >= 0"),
    (dict(memory="dense"), "memory must be one of efficient, explicit"),
])
def test_bad_model_config_is_explained(kwargs, message):
    with pytest.raises(ValueError) as error:
        ModelConfig(**kwargs)
    assert message in str(error.value)
