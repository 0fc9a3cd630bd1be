"""Figures and tables of chapters 02 and 03 (fwbook.chapters.ch02_equation, ch03_training)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from fwbook.chapters import ch02_equation as equation  # noqa: E402
from fwbook.chapters import ch03_training as training  # noqa: E402
from fwbook.core.data import encode  # noqa: E402
from fwbook.core.models import ModelConfig, build_model  # noqa: E402
from fwbook.core.train import train  # noqa: E402
from fwbook.experiments.grids import load_table1_records, retrieval_config  # noqa: E402


def _model(**changes):
    torch.manual_seed(0)
    return build_model(ModelConfig(hidden=12, **changes)).eval()


def test_explicit_fast_weights_follow_eq1_and_eq3():
    model = _model()
    text = "c9k8j3f1??c"
    fast_weights, hidden = equation.explicit_fast_weights(model, text)
    assert fast_weights.shape == (11, 12, 12) and hidden.shape == (11, 12)
    decay, fast_lr = model.config.decay, model.config.fast_lr
    # (Eq. 3) A(t) = η Σ_τ λ^(t-τ) h(τ) h(τ)ᵀ
    expected = sum(fast_lr * decay ** (10 - tau) * np.outer(hidden[tau], hidden[tau])
                   for tau in range(11))
    assert np.allclose(fast_weights[-1], expected, atol=1e-5)
    assert (fast_weights >= -1e-7).all()  # ReLU states: non-negative outer products
    # the same hidden states as the efficient model's trace
    trace = model.trace(encode(text).unsqueeze(0))  # (1, T)
    assert np.allclose(trace.hidden_states[0].detach().numpy(), hidden, atol=1e-5)


def test_chapter_02_figures():
    model = _model(inner_steps=2)
    for fig in (equation.plot_fast_weights_accumulation(model),
                equation.plot_fast_weights_accumulation(model, "a1b2??a", steps=(1, 5)),
                equation.plot_memory_weights(model),
                equation.plot_memory_weights(_model(memory="explicit"))):
        assert isinstance(fig, Figure)
    with pytest.raises(ValueError):
        equation.plot_fast_weights_accumulation(model, "a1b2??a", steps=(9,))
    with pytest.raises(TypeError):
        equation.explicit_fast_weights(build_model(ModelConfig("irnn", 8)))


def test_memory_forms_agree():
    table = equation.memory_forms_agreement(hidden=10, inner_steps=(1, 3), batch=16)
    assert list(table["S"]) == [1, 3]
    assert (table["max |Δ logits|"] < 1e-10).all()
    assert (table["max |Δ gradient|"] < 1e-10).all()
    assert (table["max |gradient|"] > 0).all()


def test_inner_loop_trajectory():
    table = equation.inner_loop_trajectory(_model(inner_steps=3), "c9k8??c")
    assert list(table.columns[:2]) == ["t", "token"] and len(table) == 7
    assert table.shape[1] == 2 + 3
    # at t = 1 the memory is empty: inner steps after the first change nothing
    assert table.iloc[0, 3] == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def smoke_run():
    config = retrieval_config("fast_weights", 12, "smoke", 0, steps=20, eval_every=10)
    return train(config, quiet=True, profile="smoke", return_model=True)


def test_learning_curves_from_records(smoke_run):
    record, _ = smoke_run
    other = dict(record, model="lstm", hidden=50)
    assert isinstance(training.plot_learning_curves([record, other], title="t"), Figure)
    assert isinstance(training.plot_learning_curves([]), Figure)


def test_predictions_table_and_figure(smoke_run):
    _, model = smoke_run
    table = training.predictions_table(model, ["c9k8j3f1??c", "j0a5s5z2??a"])
    assert list(table["answer"]) == ["9", "5"]
    assert table["p(prediction)"].between(0, 1).all()
    assert (table["p(prediction)"] >= table["p(answer)"]).all()
    assert (table["correct"] == (table["prediction"] == table["answer"])).all()
    assert len(training.predictions_table(model, "c9k8j3f1??c")) == 1
    with pytest.raises(ValueError, match="c9k8j3f1\\?\\?z"):
        training.predictions_table(model, ["c9k8j3f1??c", "c9k8j3f1??z"])
    assert isinstance(training.plot_predictions(model, ["c9k8j3f1??c"] * 5), Figure)
    queries = training.random_queries(5, seed=1)
    assert len(queries) == 5 and all(q[-3:-1] == "??" for q in queries)
    assert queries == training.random_queries(5, seed=1)


def test_load_table1_records_uses_only_the_profile_recipe(tmp_path):
    from fwbook.experiments.grids import table1_configs
    from fwbook.core.records import config_hash, write_record

    recipe = table1_configs("paper", seeds=(0,), paper_recipe=True)
    for name, config in recipe.items():
        if "fast_weights_R20" in name:
            write_record(tmp_path / f"{name}.json",
                         {"name": name, "model": "fast_weights", "hidden": 20, "seed": 0,
                          "status": "completed", "config": config.to_dict(),
                          "config_hash": config_hash(config.to_dict())})
    found = load_table1_records("paper", tmp_path)
    assert [r["name"] for r in found] == ["fast_weights_R20_seed0"]  # not paper_recipe_*
    assert load_table1_records("paper", tmp_path, model="lstm") == []
    assert load_table1_records("paper", tmp_path / "missing") == []


def test_most_attended(smoke_run):
    _, model = smoke_run
    position, token, weight = training.most_attended(model, "c9k8j3f1??c")
    assert 1 <= position <= 10 and token == "c9k8j3f1??c"[position - 1] and weight >= 0
