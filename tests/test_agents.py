"""Actor-critic Catch agents: each core trains in the smoke profile and writes a valid record;
the committed records load; ``fwbook catch`` runs through the real command line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fwbook.chapters.ch08_agents import (elapsed_span_s, learning_speed_verdict,
                                         plot_learning_curves, summarize_by_core)
from fwbook.core.records import config_hash, read_record
from fwbook.experiments.stats import summarize
from fwbook.rl.agents import (CORES, RESULTS_DIR, AgentConfig, CatchAgent, discounted_returns,
                              load_records, profile_config, run_profile, train)
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
        saved = read_record(out / f"{record['name']}.json")
        config = profile_config("smoke", saved["config"]["core"])
        assert saved["config_hash"] == config_hash(config.to_dict())
        assert saved["name"] == f"smoke_{config.core}_seed{saved['seed']}"
        curves = saved["curves"]
        assert len(curves["episodes"]) == len(curves["catch_rate"]) == 3  # 12 updates / 4
        assert curves["episodes"][-1] == 12 * 8
        assert all(0.0 <= c <= 1.0 for c in curves["catch_rate"])
        assert 0.0 <= saved["final_greedy_catch_rate"] <= 1.0
        assert saved["wall_s"] > 0 and saved["device"]["type"] == "cpu"
        assert saved["versions"]["torch"] == torch.__version__ and saved["commit"]
    assert len(load_records(out, "smoke", seeds=(0, 1))) == 6


def test_training_is_deterministic_on_cpu(smoke_records):
    _, records = smoke_records
    again = train(profile_config("smoke", "fast_weights"), 0, "cpu", quiet=True)
    assert again["curves"] == records[0]["curves"]
    assert again["final_greedy_catch_rate"] == records[0]["final_greedy_catch_rate"]


def test_summary_and_figure(smoke_records):
    _, records = smoke_records
    rows = summarize_by_core(records)
    assert [row["core"] for row in rows] == list(CORES)
    assert all(len(row["episodes_to_threshold"]) == 2 for row in rows)
    # nobody reaches 80% in 96 smoke episodes: each seed counts as the whole budget
    assert all(row["reach"]["mean"] == 96 and row["reach"]["std"] == 0 for row in rows)
    for row in rows:  # the spread over seeds is the sample standard deviation (ddof = 1)
        finals = [r["final_greedy_catch_rate"] for r in records if r["config"]["core"] == row["core"]]
        assert row["final"]["std"] == pytest.approx(abs(finals[0] - finals[1]) / 2 ** 0.5)
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
    def row(core, auc, reach, std=0.01, reach_std=100.0):
        return {"core": core, "auc": dict(summarize([]), mean=auc, std=std),
                "reach": dict(summarize([]), mean=reach, std=reach_std), "threshold": 0.8,
                "episodes_to_threshold": [reach]}
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
    one_seed = learning_speed_verdict([row("fast_weights", 0.8, 1000, None, None),
                                       row("irnn", 0.5, 3000, None, None),
                                       row("lstm", 0.6, 2000, None, None)])
    assert one_seed.startswith("Not clearly")  # no spread over seeds: no margin is clear


def test_elapsed_span(smoke_records):
    _, records = smoke_records
    assert elapsed_span_s(records) >= max(r["wall_s"] for r in records) - 1.0


def test_committed_records_load_with_their_config_hash():
    paths = sorted(RESULTS_DIR.glob("*.json"))
    assert paths, f"no Catch records in {RESULTS_DIR}"
    for path in paths:
        record = read_record(path)
        config = AgentConfig(**record["config"])
        assert record["config_hash"] == config_hash(config.to_dict()), path
        assert record["name"] == path.stem and record["wall_s"] > 0, path
    assert len(load_records(RESULTS_DIR, "paper")) == len(CORES) * 10


def test_run_profile_reuses_a_finished_record(tmp_path):
    first = run_profile("smoke", cores=("irnn",), seeds=(3,), out=tmp_path, quiet=True)
    again = run_profile("smoke", cores=("irnn",), seeds=(3,), out=tmp_path, quiet=True)
    assert again[0]["finished_at"] == first[0]["finished_at"]  # read back, not retrained
    assert again[0]["curves"] == first[0]["curves"]


def _fwbook(*args):
    return subprocess.run([sys.executable, "-m", "fwbook", *args], capture_output=True,
                          text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])


def test_catch_command_trains_then_skips(tmp_path):
    out = tmp_path / "catch"
    result = _fwbook("catch", "smoke", "--out", str(out), "--cores", "lstm", "fast_weights",
                     "--seeds", "0")
    assert result.returncode == 0, result.stderr
    assert "fast_weights seed 0: greedy catch rate" in result.stdout
    records = load_records(out, "smoke", cores=("lstm", "fast_weights"), seeds=(0,))
    assert [r["config"]["core"] for r in records] == ["lstm", "fast_weights"]
    again = _fwbook("catch", "smoke", "--out", str(out), "--cores", "lstm", "--seeds", "0")
    assert again.returncode == 0 and "already recorded" in again.stdout, again.stderr
    assert read_record(out / "smoke_lstm_seed0.json") == records[0]


def test_catch_command_rejects_bad_values(tmp_path):
    result = _fwbook("catch", "smoke", "--seeds", "-1", "--out", str(tmp_path))
    assert result.returncode == 2 and "--seeds" in result.stderr
    assert result.stderr.count("\n") == 1 and not list(tmp_path.iterdir())
