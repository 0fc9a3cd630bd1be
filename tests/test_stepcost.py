"""``--step auto``: compile only when the measured (or assumed) compile time is repaid."""

import json
from dataclasses import replace

import pytest
import torch

from fwbook.experiments.grids import retrieval_config
from fwbook.core.models import build_model
from fwbook.core.stepcost import (PRIOR_COMPILE_UPDATES, PRIOR_RATIO, cache_file, cached_costs,
                                  choose_step, cost_key, decide, remember, remember_run,
                                  time_eager_updates)
from fwbook.core.steps import cpp_compiler, plain_training_step


def test_with_nothing_measured_only_runs_long_enough_for_the_worst_cold_compile_compile():
    break_even = PRIOR_COMPILE_UPDATES / (1 - PRIOR_RATIO)  # 37,500 updates
    path, reason, numbers = decide(10_000, 0.003, {})
    assert path == "eager" and "would not be repaid over 10,000 updates" in reason
    assert numbers["predicted_compiled_s"] > numbers["predicted_eager_s"]
    assert decide(int(break_even) - 1, 0.003, {})[0] == "eager"
    assert decide(int(break_even) + 1, 0.003, {})[0] == "compiled"


def test_a_measured_compile_time_decides_both_ways():
    # the loaded machine: 173 s to compile; eager 3 ms, compiled 1.5 ms per update
    slow = {"compile_s": 173.0, "compiled_step_s": 0.0015}
    path, _, numbers = decide(10_000, 0.003, slow)
    assert path == "eager" and numbers["source"] == "measured on this machine"
    # predicted: 173 + 15 s compiled against 30 s eager; auto stays within eager's time
    assert numbers["predicted_compiled_s"] == pytest.approx(188.0)
    assert decide(200_000, 0.003, slow)[0] == "compiled"
    warm = {"compile_s": 3.0, "compiled_step_s": 0.0015}
    assert decide(10_000, 0.003, warm)[0] == "compiled"
    no_faster = {"compile_s": 3.0, "compiled_step_s": 0.0031}  # the switch back
    assert decide(1_000_000, 0.003, no_faster)[0] == "eager"


def test_measurements_are_cached_per_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("FWBOOK_STEP_COSTS", str(tmp_path / "costs.json"))
    config = retrieval_config(profile="smoke")
    key = cost_key(config, torch.device("cpu"), 1)
    assert cache_file() == tmp_path / "costs.json" and cached_costs(key) == {}
    remember(key, compile_s=12.5, compiled_step_s=0.002)
    remember(key, compile_s=2.5)  # a later warm compile replaces the cold one
    assert cached_costs(key) == {"compile_s": 2.5, "compiled_step_s": 0.002}
    other = cost_key(retrieval_config(profile="smoke", hidden=50), torch.device("cpu"), 1)
    assert cached_costs(other) == {}
    (tmp_path / "costs.json").write_text("{broken")
    assert cached_costs(key) == {}  # a damaged cache only means nothing is known


def test_timing_the_eager_step_leaves_the_model_untouched():
    config = retrieval_config(profile="smoke")
    model = build_model(config.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    inputs = torch.randint(0, 37, (config.batch_size, 11))
    targets = torch.randint(26, 36, (config.batch_size,))
    seconds = time_eager_updates(model, optimizer, inputs, targets, config.clip_norm,
                                 plain_training_step, updates=3)
    assert seconds > 0
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert optimizer.state_dict()["state"] == {}


def test_choose_step_obeys_keeps_a_resumed_decision_and_times_only_long_cpu_runs(
        tmp_path, monkeypatch):
    monkeypatch.setenv("FWBOOK_STEP_COSTS", str(tmp_path / "costs.json"))
    config = retrieval_config(profile="smoke")  # 60 updates
    model = build_model(config.model, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    batch = (torch.randint(0, 37, (config.batch_size, 11)),
             torch.randint(26, 36, (config.batch_size,)))
    cpu = torch.device("cpu")
    assert choose_step("eager", config, model, optimizer, *batch, cpu) == {
        "path": "eager", "reason": "asked for", "decision": {}}
    short = choose_step("auto", config, model, optimizer, *batch, cpu)
    assert short["path"] == "eager" and "too few" in short["reason"] and not short["decision"]
    resumed = {"path": "compiled", "reason": "auto: earlier", "decision": {"compile_s": 1.0}}
    assert choose_step("auto", config, model, optimizer, *batch, cpu, resumed) == {
        "path": "compiled", "reason": "auto, kept from the checkpoint: auto: earlier",
        "decision": {"compile_s": 1.0}}
    long = choose_step("auto", replace(config, steps=50_000), model, optimizer, *batch, cpu)
    if cpp_compiler():  # 50,000 updates repay even the assumed worst cold compile
        assert long["path"] == "compiled"
        assert long["decision"]["source"] == "prior (nothing measured yet)"
    key = cost_key(config, cpu, torch.get_num_threads())
    remember_run(config, cpu, {"path": "eager", "step_s": 0.003})
    assert cached_costs(key) == {}  # the eager step is timed afresh by every decision
    remember_run(config, cpu, {"path": "compiled", "step_s": 0.0015, "compile_s": 4.0})
    assert cached_costs(key) == {"compile_s": 4.0, "compiled_step_s": 0.0015}
