"""Tests of the controls: the Associative LSTM (Danihelka et al. 2016) and its holographic memory.

The IRNN, LN-IRNN and LSTM share their tests with the fast-weights RNN in test_models.py.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from fwbook.core.controls import (
    AssociativeLSTMClassifier, bind, bound, from_complex, random_permutations,
    recall, store, to_complex, unbind)
from fwbook.core.data import make_splits
from fwbook.core.models import ModelConfig, build_model

torch.set_num_threads(1)


def _model(hidden=20, **kwargs):
    torch.manual_seed(0)
    return AssociativeLSTMClassifier(ModelConfig(model="alstm", hidden=hidden), **kwargs)


def _unit_keys(*shape, generator):
    """Random unit-modulus complex keys e^{iθ}, θ uniform, as (..., 2n) [Re | Im]."""
    phase = 2 * math.pi * torch.rand(*shape, generator=generator, dtype=torch.float64)
    return from_complex(torch.polar(torch.ones_like(phase), phase))


# ------------------------------------------------------------------ memory primitives

def test_bind_and_bound_match_torch_complex():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 5, 8, generator=gen, dtype=torch.float64)
    assert torch.allclose(to_complex(bind(a, b)), to_complex(a) * to_complex(b))
    z = to_complex(a)
    expected = z / torch.clamp(z.abs(), min=1.0)  # (HRR-bound) z / max(1, |z|)
    assert torch.allclose(to_complex(bound(a)), expected)
    assert (to_complex(bound(3 * a)).abs() <= 1 + 1e-12).all()
    small = 0.1 * a  # moduli below 1 pass unchanged
    assert torch.allclose(bound(small), small)
    # no NaN gradient at z = 0
    zero = torch.zeros(4, requires_grad=True)
    bound(zero).sum().backward()
    assert torch.isfinite(zero.grad).all()


def test_unbind_inverts_bind_for_unit_keys():
    gen = torch.Generator().manual_seed(2)
    key = _unit_keys(3, 16, generator=gen)
    value = torch.randn(3, 32, generator=gen, dtype=torch.float64)
    assert torch.allclose(unbind(key, bind(key, value)), value)


def test_store_then_recall_right_key_beats_wrong_key():
    gen = torch.Generator().manual_seed(3)
    units, pairs, copies, draws = 128, 3, 8, 20
    perms = random_permutations(copies, units, seed=0)
    keys = _unit_keys(draws, pairs, units, generator=gen)  # (D, K, 2n)
    values = _unit_keys(draws, pairs, units, generator=gen)  # (D, K, 2n), |x_j| = 1
    memory = store(keys, values, perms)  # (D, N, 2n)
    assert memory.shape == (draws, copies, 2 * units)
    target = values[:, 0]
    right = (recall(keys[:, 0], memory, perms) - target).pow(2).mean()
    wrong_key = _unit_keys(draws, units, generator=gen)
    wrong = (recall(wrong_key, memory, perms) - target).pow(2).mean()
    # per real entry: right ≈ (K-1)/(2N) = 0.125, wrong ≈ 1/2 + K/(2N) ≈ 0.69
    assert right < 0.2 < 0.5 < wrong
    assert right < wrong / 4


def test_more_copies_reduce_retrieval_noise():
    gen = torch.Generator().manual_seed(4)
    units, pairs, draws = 64, 4, 50
    keys = _unit_keys(draws, pairs, units, generator=gen)
    values = _unit_keys(draws, pairs, units, generator=gen)
    errors = []
    for copies in (1, 2, 4, 8):
        perms = random_permutations(copies, units, seed=copies)
        estimate = recall(keys[:, 0], store(keys, values, perms), perms)
        errors.append((estimate - values[:, 0]).pow(2).mean().item())
    assert errors == sorted(errors, reverse=True)
    # noise variance ~ (K-1)/N: one copy ≈ 1.5 per real entry, eight copies ≈ 0.19
    assert errors[0] == pytest.approx((pairs - 1) / 2, rel=0.15)
    assert errors[-1] < errors[0] / 5


def test_permutations_are_fixed_seeded_and_saved():
    perms = random_permutations(4, 10, seed=7)
    assert perms.shape == (4, 20)
    for row in perms:  # each row moves whole complex numbers: same P_s on Re and Im
        assert sorted(row[:10].tolist()) == list(range(10))
        assert torch.equal(row[10:], row[:10] + 10)
    torch.manual_seed(123)  # the global seed plays no part
    assert torch.equal(random_permutations(4, 10, seed=7), perms)
    assert not torch.equal(random_permutations(4, 10, seed=8), perms)
    a, b = _model(num_copies=4), _model(num_copies=4)
    torch.manual_seed(999)
    c = AssociativeLSTMClassifier(ModelConfig(model="alstm", hidden=20))
    assert torch.equal(a.core.permutations, c.core.permutations)
    assert "core.permutations" in a.state_dict()
    assert all(p is not a.core.permutations for p in a.parameters())
    before = a.core.permutations.clone()
    optimizer = torch.optim.Adam(a.parameters(), lr=0.1)
    a(torch.randint(0, 37, (2, 11))).sum().backward()
    optimizer.step()
    assert torch.equal(a.core.permutations, before)
    assert not torch.equal(_model(permutation_seed=1).core.permutations, b.core.permutations)


# ------------------------------------------------------------------ the model

@pytest.mark.parametrize("hidden,batch", [(20, 1), (20, 7), (50, 3), (100, 2), (2, 1)])
def test_output_shapes(hidden, batch):
    model = _model(hidden)
    tokens = torch.randint(0, 37, (batch, 11))
    assert model(tokens).shape == (batch, 37)
    trace = model.trace(tokens)
    assert trace.hidden_states.shape == (batch, 11, hidden)
    assert trace.memory_weights is None
    # |h_j| <= g_o <= 1 per complex unit (A6)
    assert (to_complex(trace.hidden_states).abs() <= 1 + 1e-6).all()


def test_build_model_and_odd_hidden():
    model = build_model(ModelConfig(model="alstm", hidden=20))
    assert isinstance(model, AssociativeLSTMClassifier)
    assert model.core.num_copies == 4
    with pytest.raises(ValueError, match="even"):
        build_model(ModelConfig(model="alstm", hidden=21))


@pytest.mark.parametrize("hidden,alstm,lstm", [(20, 5220, 4720), (50, 19800, 17800),
                                               (100, 62100, 55600)])
def test_parameter_counts_in_docstring(hidden, alstm, lstm):
    def recurrence(model):
        return sum(p.numel() for name, p in model.named_parameters()
                   if not name.startswith("readout"))
    assert recurrence(build_model(ModelConfig(model="alstm", hidden=hidden))) == alstm
    assert recurrence(build_model(ModelConfig(model="lstm", hidden=hidden))) == lstm


def test_gradients_reach_every_parameter():
    model = _model(20)
    tokens = torch.arange(37).repeat(2)[:66].view(6, 11)  # every token appears
    loss = F.cross_entropy(model(tokens), torch.randint(0, 37, (6,)))
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_sample_alone_equals_sample_in_batch():
    model = _model(20)
    tokens = torch.randint(0, 37, (5, 11))
    together = model(tokens)
    for b in range(5):
        alone = model(tokens[b : b + 1])
        assert torch.allclose(alone, together[b : b + 1], atol=1e-6)


def test_matches_complex_reference():
    """The real [Re | Im] implementation equals (A1)-(A6) written with torch complex numbers."""
    model = _model(8, num_copies=3).double()
    tokens = torch.randint(0, 37, (2, 11))
    states = model.trace(tokens).hidden_states  # (B, T, H)
    n, core = 4, model.core
    perm = core.permutations[:, :n]  # (N, n) P_s on complex indices
    h = torch.zeros(2, 2 * n, dtype=torch.float64)
    c = torch.zeros(2, 3, n, dtype=torch.complex128)

    def cbound(z):
        return z / torch.clamp(z.abs(), min=1.0)

    for t in range(11):
        pre = model.input_weight[tokens[:, t]] + model.bias + h @ core.recurrent
        f, i, o = torch.sigmoid(pre[:, : 3 * n]).split(n, dim=1)
        r_i, r_o, u = (cbound(torch.complex(x[:, :n], x[:, n:]))
                       for x in pre[:, 3 * n:].split(2 * n, dim=1))
        c = f[:, None] * c + r_i[:, perm] * (i * u)[:, None]
        hc = o * cbound((r_o[:, perm] * c).mean(1))
        h = torch.cat([hc.real, hc.imag], dim=1)
        assert torch.allclose(states[:, t], h, atol=1e-12)


def test_loss_decreases_on_associative_retrieval():
    data = make_splits(seed=0, num_train=256, num_validation=16, num_test=16)
    model = _model(20)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(data.train.inputs), data.train.targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1.0  # ln 37 ≈ 3.6 -> below ln 10 ≈ 2.3 (values are digits)
