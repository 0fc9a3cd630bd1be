"""core.models.variant: the one way to re-form a trained model under other settings."""

import pytest
import torch

from fwbook.core.models import ModelConfig, build_model, variant


def test_variant_keeps_float64_parameters_exactly_and_leaves_the_source_alone():
    model = build_model(ModelConfig(hidden=8), seed=0).double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1e-12)  # a change float32 cannot hold
    state = torch.random.get_rng_state()
    explicit = variant(model, memory="explicit")
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert explicit.config.memory == "explicit" and model.config.memory == "efficient"
    assert not explicit.training
    for (name, a), (_, b) in zip(model.state_dict().items(), explicit.state_dict().items()):
        assert a.dtype == b.dtype == torch.float64 and torch.equal(a, b), name
    tokens = torch.randint(0, 37, (4, 11))
    torch.testing.assert_close(explicit(tokens), model(tokens), rtol=0, atol=1e-12)


def test_variant_refuses_a_change_of_parameters():
    model = build_model(ModelConfig(hidden=8), seed=0)
    with pytest.raises(ValueError, match="hidden=9 changes the model's parameters"):
        variant(model, hidden=9)
