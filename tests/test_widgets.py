"""The fast-weights explorers: A(t) is Eq. 1 of the model's own hidden states."""

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from fwbook.chapters import widgets
from fwbook.core.data import encode
from fwbook.core.models import ModelConfig, build_model

matplotlib.use("Agg")


def test_history_is_equation_1_of_the_hidden_states():
    history = widgets.fast_weights_history("c9k8j3f1??c", decay=0.9, fast_lr=0.4, hidden=12)
    assert history.fast_weights.shape == (11, 12, 12)
    assert history.hidden_states.shape == (11, 12)
    expected = np.zeros((12, 12))
    for t, h in enumerate(history.hidden_states):
        expected = 0.9 * expected + 0.4 * np.outer(h, h)  # (Eq. 1)
        np.testing.assert_allclose(history.fast_weights[t], expected, rtol=1e-5, atol=1e-5)


def test_history_uses_a_supplied_model_and_matches_its_forward_pass():
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=10, decay=0.95, fast_lr=0.5))  # efficient form
    history = widgets.fast_weights_history("ab1?", decay=0.95, fast_lr=0.5, model=model)
    with torch.no_grad():
        states, _ = model.encode(encode("ab1?").unsqueeze(0))  # (1, T, H)
    np.testing.assert_allclose(history.hidden_states, states[0].numpy(), rtol=1e-5, atol=1e-6)
    # other λ, η: same slow weights, different memory
    other = widgets.fast_weights_history("ab1?", decay=0.5, fast_lr=0.0, model=model)
    assert np.allclose(other.fast_weights, 0)


def test_untrained_model_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    first = widgets.fast_weights_history(seed=3).fast_weights
    assert torch.equal(state, torch.random.get_rng_state())
    np.testing.assert_array_equal(first, widgets.fast_weights_history(seed=3).fast_weights)
    assert not np.array_equal(first, widgets.fast_weights_history(seed=4).fast_weights)


def test_bad_values():
    with pytest.raises(ValueError, match="decay"):
        widgets.fast_weights_history(decay=1.5)
    with pytest.raises(ValueError, match="fast_lr"):
        widgets.fast_weights_history(fast_lr=-1)
    with pytest.raises(ValueError, match="vocabulary"):
        widgets.fast_weights_history("AB")
    with pytest.raises(TypeError, match="FastWeightsRNN"):
        widgets.fast_weights_history(model=build_model(ModelConfig(model="lstm")))
    with pytest.raises(ValueError, match="step"):
        widgets.fast_weights_small_multiples(text="ab", step=5)


def test_small_multiples():
    figure = widgets.fast_weights_small_multiples(decays=(0.5, 0.95), fast_lrs=(0.1, 0.5, 1.0))
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 2 * 3 + 1  # panels and one shared colour bar


def test_explorer_reacts_to_its_controls():
    pytest.importorskip("ipywidgets")
    explorer = widgets.fast_weights_explorer(text="c9k8j3f1??c")
    assert explorer.step_slider.max == 11
    explorer.decay_slider.value = 0.5
    explorer.fast_lr_slider.value = 1.0
    explorer.text_box.value = "ab1?"
    assert explorer.step_slider.max == 4 and explorer.step_slider.value <= 4
    assert explorer.message.value == ""
    explorer.text_box.value = "AB"  # outside the vocabulary: a message, no exception
    assert "vocabulary" in explorer.message.value
    bundle = explorer._repr_mimebundle_()
    assert "live Jupyter kernel" in bundle["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in bundle
