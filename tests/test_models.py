"""The fast-weights RNN and controls, and every defect of earlier implementations (PAPER.md)."""

import ast
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fwbook.core.data import encode, make_splits
from fwbook.core.fast_weights import FastWeightsCore
from fwbook.core.models import ModelConfig, build_model
from fwbook.core.records import config_hash
from fwbook.core.train import classification_error

torch.set_num_threads(1)  # tiny tensors: extra threads only contend on a shared machine
ROOT = Path(__file__).resolve().parents[1]


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


def _reference_states(drive, W, gain, bias, decay, fast_lr, inner_steps, layer_norm, eps=1e-5):
    """Eq. 1-2 with the paper's layer norm, written out in float64 numpy, one sample at a time."""
    relu = lambda v: np.maximum(v, 0.0)
    batch, steps, hidden = drive.shape
    out = np.zeros((batch, steps, hidden))
    for b in range(batch):
        h, A = np.zeros(hidden), np.zeros((hidden, hidden))  # h(0) = 0, A(0) = 0
        for t in range(steps):
            slow = W @ h + drive[b, t]
            hs = relu(slow)  # h_0(t+1)
            for _ in range(inner_steps):
                z = slow + A @ hs
                if layer_norm:  # over the H units of this sample (biased variance, as LN)
                    z = (z - z.mean()) / np.sqrt(z.var() + eps) * gain + bias
                hs = relu(z)
            h = hs
            A = decay * A + fast_lr * np.outer(h, h)  # (Eq. 1)
            out[b, t] = h
    return out


@pytest.mark.parametrize("memory", ["efficient", "explicit"])
@pytest.mark.parametrize("inner_steps, layer_norm", [(1, True), (3, True), (2, False)])
def test_both_forms_match_an_independent_float64_reference(memory, inner_steps, layer_norm):
    gen = torch.Generator().manual_seed(5)
    hidden, decay, fast_lr = 6, 0.9, 0.7
    core = FastWeightsCore(hidden, decay, fast_lr, inner_steps, layer_norm, memory).double()
    with torch.no_grad():
        core.recurrent.copy_(0.3 * torch.randn(hidden, hidden, generator=gen))
        if layer_norm:
            core.norm.weight.copy_(1 + 0.2 * torch.randn(hidden, generator=gen))
            core.norm.bias.copy_(0.1 * torch.randn(hidden, generator=gen))
    scale = 1.0 if layer_norm else 0.3  # without LN, A(t) h_s grows fast with the input
    drive = scale * torch.randn(3, 7, hidden, generator=gen, dtype=torch.float64)
    states, _ = core(drive)
    gain, bias = ((core.norm.weight.detach().numpy(), core.norm.bias.detach().numpy())
                  if layer_norm else (None, None))
    expected = _reference_states(drive.numpy(), core.recurrent.detach().numpy(), gain, bias,
                                 decay, fast_lr, inner_steps, layer_norm)
    without_memory = _reference_states(drive.numpy(), core.recurrent.detach().numpy(), gain, bias,
                                       decay, 0.0, inner_steps, layer_norm)
    assert np.abs(expected).max() < 100  # nothing overflowed
    assert np.abs(expected - without_memory).max() > 0.1  # and the memory matters
    np.testing.assert_allclose(states.detach().numpy(), expected, rtol=1e-10, atol=1e-12)


def test_trace_records_every_inner_state(batch):
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=20, inner_steps=3))
    tokens = batch.inputs[:4]
    trace = model.trace(tokens)
    inner = trace.inner_states  # (B, T, S+1, H)
    assert inner.shape == (4, 11, 4, 20)
    assert torch.equal(inner[:, :, -1], trace.hidden_states)  # h(t+1) = h_S(t+1)
    drive = model.input_weight[tokens] + model.bias  # (B, T, H)
    previous = torch.cat([torch.zeros_like(inner[:, :1, -1]), trace.hidden_states[:, :-1]], 1)
    h0 = torch.relu(previous @ model.core.recurrent.T + drive)  # h_0(t+1) = f(W h(t) + C x(t))
    assert torch.allclose(inner[:, :, 0], h0, atol=1e-6)
    # A(0) = 0: at t = 0 every inner step gives the same state, and puts no weight anywhere
    assert torch.equal(inner[:, 0, 1], inner[:, 0, 3]) and not torch.equal(inner[:, 0, 0], inner[:, 0, 1])
    assert torch.all(trace.memory_weights[:, 0] == 0)
    assert not torch.equal(inner[:, 5, 1], inner[:, 5, 2])  # later, each inner step moves h


def test_the_empty_memory_at_t0_takes_one_inner_step():
    """S layer norms per input step, except at t = 0 where A(0) = 0 makes them all the same."""
    core = FastWeightsCore(hidden=5, inner_steps=3)
    calls = []
    core.norm.register_forward_hook(lambda *args: calls.append(1))
    for memory in ("efficient", "explicit"):
        calls.clear()
        core.memory = memory
        core(torch.randn(2, 11, 5))
        assert len(calls) == 1 + 10 * 3, memory


# build_model(config, seed=0) before the split of models.py into fast_weights.py, controls.py
# and classifier.py: sha256 of the sorted (name, float32 bytes) of the state_dict, 16 digits
INITIAL_PARAMETERS = {
    (("model", "fast_weights"), ("hidden", 20)): "487e014aa2c58d0f",
    (("model", "irnn"), ("hidden", 20)): "52fdf906df19220f",
    (("model", "ln_irnn"), ("hidden", 20)): "03a04694ef751598",
    (("model", "lstm"), ("hidden", 20)): "1951e52a97f32137",
    (("model", "alstm"), ("hidden", 20)): "de257c5d94164ded",
    (("model", "fast_weights"), ("hidden", 50), ("input_embedding", 100)): "7f8153cabf42fdcf",
    (("model", "alstm"), ("hidden", 50), ("input_embedding", 100)): "51aebe555f17f7cc",
    (("model", "ln_irnn"), ("hidden", 20), ("input_embedding", 16)): "9d9e7efa7d481156",
    (("model", "lstm"), ("hidden", 20), ("input_embedding", 16)): "ce6c405a0b042c24",
}


@pytest.mark.parametrize("config", list(INITIAL_PARAMETERS))
def test_the_seeded_build_draws_the_same_parameters_as_before(config):
    model = build_model(ModelConfig(**dict(config)), seed=0)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    assert digest.hexdigest()[:16] == INITIAL_PARAMETERS[config]


@pytest.mark.parametrize("record_path", sorted((ROOT / "results" / "attention").glob("*.json")),
                         ids=lambda path: path.stem)
def test_committed_weights_load_and_reproduce_their_record(record_path):
    """Every parameter name still loads, and the model still computes the recorded test error."""
    record = json.loads(record_path.read_text())
    config = record["config"]
    assert config_hash(config) == record["config_hash"]
    assert ModelConfig(**config["model"]).to_dict() == config["model"]
    model = build_model(config["model"])
    weights = torch.load(record_path.with_name(record["weights_file"]), weights_only=True)
    model.load_state_dict(weights)  # strict: no name missing, none unexpected
    test = make_splits(seed=config["data_seed"], num_pairs=config["num_pairs"], num_train=1,
                       num_validation=1, num_test=config["num_test"]).test
    error, loss = classification_error(model, test)
    assert error == record["test_error"]
    assert loss == pytest.approx(record["test_loss"], rel=1e-6)


def test_no_import_cycle_inside_core():
    """Module- and function-level imports among fwbook.core modules form no cycle."""
    core = ROOT / "src" / "fwbook" / "core"
    imports = {}
    for path in core.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        imports[path.stem] = {name.rsplit(".", 1)[1] for name in names
                              if name.startswith("fwbook.core.")}
    done = set()

    def visit(module, path):
        assert module not in path, f"import cycle: {' -> '.join(path + [module])}"
        if module not in done:
            for imported in imports.get(module, ()):
                visit(imported, path + [module])
            done.add(module)

    for module in imports:
        visit(module, [])
