"""What the fast memory attends to: slot roles, statistics on hand-built weights, figures."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fwbook.chapters import ch06_attention as attention  # noqa: E402
from fwbook.core.data import encode, make_splits  # noqa: E402
from fwbook.core.models import ModelConfig, build_model  # noqa: E402
from fwbook.experiments import attention_runs  # noqa: E402

torch.set_num_threads(1)  # tiny tensors: extra threads only contend on a shared machine


def _tokens(*texts):
    return torch.stack([encode(text) for text in texts])


def test_queried_pair_and_slot_roles():
    tokens = _tokens("c9k8j3f1??c", "c9k8j3f1??f")
    assert attention.queried_pair(tokens).tolist() == [0, 3]
    roles = attention.slot_roles(tokens)  # (2, 10)
    # slot i was written after reading token i: c 9 k 8 j 3 f 1 ? ?
    assert roles[0].tolist() == [0, 1, 2, 3, 2, 3, 2, 3, 4, 4]
    assert roles[1].tolist() == [2, 3, 2, 3, 2, 3, 0, 1, 4, 4]


def test_slot_roles_refuse_non_retrieval_sequences():
    with pytest.raises(ValueError, match="2K"):
        attention.slot_roles(_tokens("c9k8j3f1??"))
    with pytest.raises(ValueError, match="one of its keys"):
        attention.queried_pair(_tokens("c9k8j3f1??z"))


def test_statistics_on_hand_built_weights():
    tokens = _tokens("c9k8j3f1??c", "c9k8j3f1??k", "c9k8j3f1??j", "c9k8j3f1??f")
    weights = torch.full((4, 10), 0.1)
    weights[0, 1] = 5.0  # on the queried value (pair 0)
    weights[1, 2] = 5.0  # on the queried key (pair 1)
    weights[2, 9] = 5.0  # on a query mark
    weights[3, 0] = 5.0  # on another key (pair 0, while pair 3 is asked for)
    correct = torch.tensor([True, True, False, True])
    stats = attention.attention_statistics(weights, tokens, correct)
    assert stats["n"] == 4 and stats["accuracy"] == 0.75
    assert stats["argmax_share"] == {"queried key": 0.25, "queried value": 0.25,
                                     "other keys": 0.25, "other values": 0.0,
                                     "query marks": 0.25}
    assert stats["argmax_on_pair"] == 0.5
    assert stats["accuracy_if_on_pair"] == 1.0 and stats["accuracy_if_off_pair"] == 0.5
    assert stats["n_on_pair"] == 2 and stats["n_off_pair"] == 2
    # summed pair weight: row 2 puts 5 on a '?', but its pairs tie at 0.2 -> pair 0 (not 2)
    assert stats["pair_argmax"] == 0.5
    total = 5.0 + 9 * 0.1
    assert stats["mass_share"]["queried value"] == pytest.approx((5.0 / total + 0.1 / total * 3) / 4)
    assert sum(stats["mass_share"].values()) == pytest.approx(1.0)
    assert sum(stats["argmax_share"].values()) == pytest.approx(1.0)


def test_statistics_when_no_sequence_is_off_the_pair():
    tokens = _tokens("c9k8j3f1??c")
    weights = torch.zeros(1, 10)
    weights[0, 0] = 1.0
    stats = attention.attention_statistics(weights, tokens, torch.tensor([False]))
    assert stats["accuracy_if_on_pair"] == 0.0 and stats["accuracy_if_off_pair"] is None


def _small_model():
    torch.manual_seed(0)
    return build_model(ModelConfig(hidden=20)).eval()


def test_query_weights_are_the_last_trace_row():
    model = _small_model()
    tokens = make_splits(0, 4, 10, 10, 8).test.inputs
    weights, logits = attention.query_weights(model, tokens)
    trace = model.trace(tokens)
    assert weights.shape == (8, 10) and logits.shape == (8, 37)
    assert torch.equal(weights, trace.memory_weights[:, -1, -1, :-1])
    assert bool((weights >= 0).all())  # ReLU states: every similarity is non-negative
    with pytest.raises(ValueError, match="no fast memory"):
        attention.query_weights(build_model(ModelConfig(model="ln_irnn")), tokens)


def test_evaluate_attention_and_figures():
    model = _small_model()
    split = make_splits(0, 4, 10, 10, 300).test
    stats = attention.evaluate_attention(model, split.inputs, split.targets, batch_size=128)
    assert stats["n"] == 300 and stats["num_pairs"] == 4
    assert len(stats["mean_weights"]) == 4 and len(stats["mean_weights"][0]) == 10
    for figure in (attention.plot_sequence_attention(model, "c9k8j3f1??c"),
                   attention.plot_mean_query_weights(stats),
                   attention.plot_role_shares({"a": stats, "b": stats})):
        assert isinstance(figure, plt.Figure)
        plt.close(figure)
    record = {"model": "fast_weights", "config": {"num_pairs": 4}, "test_error": 0.5,
              "curves": {"step": [1, 2], "val_error": [0.9, 0.5]}}
    figure = attention.plot_k_comparison({"FW K=4": record})
    assert isinstance(figure, plt.Figure)
    plt.close(figure)


def test_sequence_figure_validates_the_query():
    model = _small_model()
    with pytest.raises(ValueError, match="one of the stored keys"):
        attention.plot_sequence_attention(model, "c9k8j3f1??z")
    with pytest.raises(ValueError):
        attention.plot_sequence_attention(model, "c9k8j3f1")


def _fwbook(*args, timeout=300):
    """The real command line, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "fwbook", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_fwbook_attention_trains_a_run_the_chapter_can_load(tmp_path):
    done = _fwbook("attention", "smoke", "--out", str(tmp_path), "--only", "fast_weights_K4",
                   "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert "fast_weights_K4: status completed" in done.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "smoke_fast_weights_K4_seed0.json", "smoke_fast_weights_K4_seed0.pt"]  # no checkpoint left
    record, model = attention_runs.load_run("fast_weights_K4", "smoke", 0, tmp_path)
    assert record["status"] == "completed" and record["run_name"] == "fast_weights_K4"
    # the weights file holds the model the record measured: the same test error, recomputed
    test = attention_runs.record_test_split(record)
    with torch.no_grad():
        error = (model(test.inputs).argmax(1) != test.targets).double().mean()
    assert float(error) == pytest.approx(record["test_error"], abs=1e-12)
    with pytest.raises(FileNotFoundError, match="fwbook attention smoke"):
        attention_runs.load_run("fast_weights_K8", "smoke", 0, tmp_path)


def test_fwbook_attention_refuses_an_unknown_run(tmp_path):
    done = _fwbook("attention", "smoke", "--out", str(tmp_path), "--only", "nope")
    assert done.returncode == 2
    assert "--only" in done.stderr and "fast_weights_K4" in done.stderr
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_read_strength_sums_each_step_row():
    model = _small_model()
    tokens = make_splits(0, 4, 10, 10, 12).test.inputs
    strength = attention.read_strength(model, tokens, batch_size=5)  # (T,)
    trace = model.trace(tokens)
    expected = trace.memory_weights[:, :, -1, :].sum(2).double().mean(0)
    assert strength.shape == (11,) and strength[0] == 0  # empty memory at the first step
    assert torch.allclose(strength, expected)
    figure = attention.plot_read_strength({"a": strength, "b": strength})
    assert isinstance(figure, plt.Figure)
    plt.close(figure)
