"""Actor-critic Catch agents: each core trains in the smoke profile and writes a valid record."""

import json

import pytest
import torch

from fwbook.rl.agents import (CORES, AgentConfig, CatchAgent, config_hash, discounted_returns,
                           load_records, plot_learning_curves, profile_config, summarize, train)
from fwbook.rl.catch import VectorCatch


@pytest.fixture(scope="module")
def smoke_records(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("catch")
    records = [train(profile_config("smoke", core), seed, "cpu", out, quiet=True,
                     profile="smoke") for core in CORES for seed in (0, 1)]
    return out, records


def test_smoke_run_writes_valid_record(smoke_records):
    out, records = smoke_records
    for record in records:
        saved = json.loads(open(record["path"]).read())
        assert saved["config_hash"] == config_hash(profile_config("smoke", saved["config"]["core"]))
        curves = saved["curves"]
        assert len(curves["episodes"]) == len(curves["catch_rate"]) == 3  # 12 updates / 4
        assert curves["episodes"][-1] == 12 * 8
        assert all(0.0 <= c <= 1.0 for c in curves["catch_rate"])
        assert 0.0 <= saved["final_greedy_catch_rate"] <= 1.0
        assert saved["wall_time_s"] > 0 and saved["device"]["type"] == "cpu"
        assert saved["versions"]["torch"] == torch.__version__
    assert len(load_records(out, "smoke", seeds=(0, 1))) == 6


def test_training_is_deterministic_on_cpu(smoke_records):
    _, records = smoke_records
    again = train(profile_config("smoke", "fast_weights"), 0, "cpu", quiet=True)
    assert again["curves"] == records[0]["curves"]
    assert again["final_greedy_catch_rate"] == records[0]["final_greedy_catch_rate"]


def test_summary_and_figure(smoke_records):
    _, records = smoke_records
    rows = summarize(records)
    assert [row["core"] for row in rows] == list(CORES)
    assert all(len(row["episodes_to_threshold"]) == 2 for row in rows)
    # nobody reaches 80% in 96 smoke episodes: each seed counts as the whole budget
    assert all(row["reach_mean"] == 96 and row["reach_std"] == 0 for row in rows)
    ax = plot_learning_curves(records)
    assert len(ax.get_lines()) >= 3
    import matplotlib.pyplot as plt
    plt.close(ax.figure)


def test_load_records_rejects_other_config(smoke_records, tmp_path):
    out, records = smoke_records
    record = dict(records[0], config_hash="0" * 16)
    (tmp_path / "smoke_fast_weights_seed0.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="different configuration"):
        load_records(tmp_path, "smoke", cores=("fast_weights",), seeds=(0,))
    with pytest.raises(FileNotFoundError):
        load_records(tmp_path, "smoke", cores=("lstm",), seeds=(0,))


@pytest.mark.parametrize("core", CORES)
def test_agent_step_shapes(core):
    config = AgentConfig(core=core, size=5, visible_steps=2, hidden=8)
    agent = CatchAgent(config)
    frames = VectorCatch(4, 5, 2, seed=0).reset()
    logits, value, state = agent.step(frames, agent.initial_state(4, frames))
    assert logits.shape == (4, 3) and value.shape == (4,)


def test_discounted_returns():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    returns = discounted_returns(rewards, 0.5)
    torch.testing.assert_close(returns, torch.tensor([[0.25, 0.5, 1.0], [-0.25, -0.5, -1.0]]))


def test_bad_config_rejected():
    with pytest.raises(ValueError, match="core must be one of"):
        AgentConfig(core="gru")
    with pytest.raises(ValueError, match="visible_steps"):
        AgentConfig(size=5, visible_steps=9)
    with pytest.raises(ValueError, match="profile must be one of"):
        profile_config("huge", "lstm")


def test_verdict_follows_the_numbers():
    from fwbook.rl.agents import learning_speed_verdict

    def row(core, auc, reach, std=0.01, reach_std=100.0):
        return {"core": core, "auc_mean": auc, "auc_std": std, "reach_mean": reach,
                "reach_std": reach_std, "threshold": 0.8, "episodes_to_threshold": [reach]}
    clear = learning_speed_verdict([row("fast_weights", 0.8, 1000), row("irnn", 0.5, 3000),
                                    row("lstm", 0.6, 2000)])
    assert clear.startswith("Yes.") and "LSTM, the quicker control (clear)" in clear
    weak = learning_speed_verdict([row("fast_weights", 0.61, 1950, 0.05), row("irnn", 0.5, 3000),
                                   row("lstm", 0.6, 2000)])
    assert weak.startswith("Not clearly")
    one_clear = learning_speed_verdict([row("fast_weights", 0.61, 1000, 0.05),
                                        row("irnn", 0.5, 3000), row("lstm", 0.6, 2000)])
    assert one_clear.startswith("Yes, but not by a clear margin")
    mixed = learning_speed_verdict([row("fast_weights", 0.7, 2500), row("irnn", 0.5, 3000),
                                    row("lstm", 0.6, 2000)])
    assert mixed.startswith("Partly")
    assert learning_speed_verdict([row("fast_weights", 0.5, 4000), row("irnn", 0.4, 3000),
                                   row("lstm", 0.6, 2000)]).startswith("No.")
    never = [dict(row(core, 0.2, 96), episodes_to_threshold=[None]) for core in CORES]
    text = learning_speed_verdict(never)
    assert text.startswith("No.") and "No run reached" in text


def test_elapsed_span(smoke_records):
    from fwbook.rl.agents import elapsed_span_s
    _, records = smoke_records
    assert elapsed_span_s(records) >= max(r["wall_time_s"] for r in records) - 1.0
