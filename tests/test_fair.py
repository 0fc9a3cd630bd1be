"""The fair-controls protocol: input embedding, early stopping, the test set read once, LR
selection on validation only, the plan's order, the resumable `sweep fair` CLI; and every
committed record keeps its config_hash."""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fwbook.experiments import fair, fair_cap
from fwbook.experiments.stats import summarize
from fwbook.core import train as train_module
from fwbook.experiments.grids import retrieval_config, table1_configs
from fwbook.core.models import MODEL_NAMES, ModelConfig, build_model
from fwbook.core.records import REPO_ROOT, config_hash, read_record
from fwbook.core.train import TrainConfig, classification_error, train

torch.set_num_threads(1)


def tiny(model="irnn", seed=0, **overrides):
    settings = dict(num_train=500, num_validation=120, num_test=100, steps=40, eval_every=10)
    return retrieval_config(model, 8, "smoke", seed, **{**settings, **overrides})


def fwbook(*args, timeout=300):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "fwbook", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def committed_records():
    for folder in ("table1", "ablations", "readme", "bench", "attention"):
        for path in sorted((REPO_ROOT / "results" / folder).rglob("*.json")):
            record = json.loads(path.read_text())
            if isinstance(record, dict) and "config_hash" in record and "config" in record \
                    and isinstance(record["config"], dict) and "model" in record["config"]:
                yield path, record


def test_every_committed_record_keeps_its_config_hash():
    seen = {"table1": 0, "ablations": 0}
    for path, record in committed_records():
        config = TrainConfig.from_dict(record["config"])
        assert config_hash(config.to_dict()) == record["config_hash"], path
        assert "input_embedding" not in config.to_dict()["model"]
        assert "patience" not in config.to_dict()
        seen[path.parent.name] = seen.get(path.parent.name, 0) + 1
    assert seen["table1"] >= 45 and seen["ablations"] >= 42
    # and the Table 1 grid as the code builds it today still names those records
    hashes = {record["config_hash"] for path, record in committed_records()}
    for name, config in table1_configs("paper").items():
        assert config_hash(config.to_dict()) in hashes, name


def test_the_new_fields_enter_the_hash_once_set():
    plain = retrieval_config("lstm", 50, "paper", 0)
    embedded = retrieval_config("lstm", 50, "paper", 0, input_embedding=100)
    stopped = retrieval_config("lstm", 50, "paper", 0, patience=5_000)
    assert embedded.to_dict()["model"]["input_embedding"] == 100
    assert stopped.to_dict()["patience"] == 5_000
    assert len({config_hash(c.to_dict()) for c in (plain, embedded, stopped)}) == 3
    assert TrainConfig.from_dict(embedded.to_dict()) == embedded
    with pytest.raises(ValueError, match="input_embedding must be an integer >= 0"):
        ModelConfig(input_embedding=-1)
    with pytest.raises(ValueError, match="patience .* must be a multiple of eval_every"):
        retrieval_config("lstm", 50, "paper", 0, patience=1_500)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_model_reads_the_embedding_and_one_hot_models_are_unchanged(model):
    hidden = 8
    one_hot = build_model(ModelConfig(model=model, hidden=hidden))
    assert not any(name.startswith("embedding") for name in one_hot.state_dict())
    torch.manual_seed(0)
    embedded = build_model(ModelConfig(model=model, hidden=hidden, input_embedding=12))
    assert embedded.embedding.weight.shape == (37, 12)
    tokens = torch.randint(0, 37, (3, 9))
    logits = embedded(tokens)
    assert logits.shape == (3, 37)
    logits.sum().backward()
    assert embedded.embedding.weight.grad.abs().sum() > 0  # trained, not a fixed projection
    # the tokens' embeddings, not their one-hot codes, reach the recurrent layer
    with torch.no_grad():
        embedded.embedding.weight.zero_()
    assert torch.allclose(embedded(tokens)[0], embedded(tokens)[1])


def test_a_saved_one_hot_model_still_loads():
    checkpoint = REPO_ROOT / "results" / "attention" / "paper_fast_weights_K4_seed0.pt"
    record = read_record(checkpoint.with_suffix(".json"))
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = state.get("model", state) if isinstance(state, dict) else state
    build_model(record["config"]["model"]).load_state_dict(state)  # strict: same keys, shapes


def test_early_stopping_keeps_the_best_parameters_and_reads_test_once(monkeypatch):
    calls = []
    real = train_module.classification_error

    def spy(model, split, *args, **kwargs):
        calls.append(len(split))
        return real(model, split, *args, **kwargs)

    monkeypatch.setattr(train_module, "classification_error", spy)
    config = tiny(lr=3e-2, steps=400, patience=30, min_steps=50, input_embedding=16)
    record, model = train(config, quiet=True, return_model=True)
    early = record["early_stopping"]
    assert calls[-1] == config.num_test and calls.count(config.num_test) == 1
    assert set(calls[:-1]) == {config.num_validation}
    assert len(calls) - 1 == len(record["curves"]["step"])
    # it stopped by patience, 30 updates after its best, before the cap; the model it returns
    # (and tested) is the one of the best validation point, not the last
    assert early["stop_reason"] == "patience", early
    assert record["steps_done"] == early["best_step"] + 30 < config.steps
    assert early["best_val_error"] == min(record["curves"]["val_error"])
    from fwbook.core.data import make_splits
    data = make_splits(config.data_seed, config.num_pairs, config.num_train,
                       config.num_validation, config.num_test)
    assert classification_error(model, data.validation)[0] == early["best_val_error"]
    assert classification_error(model, data.test)[0] == record["test_error"]


def test_an_interrupted_early_stopped_run_resumes_to_the_same_record(tmp_path):
    config = tiny(lr=3e-2, steps=400, patience=30, min_steps=50)
    whole = train(config, quiet=True)
    checkpoint = tmp_path / "run.ckpt.pt"
    assert train(config, quiet=True, checkpoint=checkpoint, stop_after=60) is None
    resumed = train(config, quiet=True, checkpoint=checkpoint)
    for key in ("test_error", "steps_done", "early_stopping", "curves"):
        assert resumed[key] == whole[key], key


def _record(lr, val_error, val_loss, test_error, status="completed"):
    return {"status": status, "test_error": test_error, "config": {"lr": lr},
            "early_stopping": {"best_val_error": val_error, "best_val_loss": val_loss,
                               "best_step": 1000}}


def test_the_learning_rate_is_chosen_on_validation_only():
    candidates = {3e-4: _record(3e-4, 0.10, 0.3, 0.01), 1e-3: _record(1e-3, 0.05, 0.2, 0.30),
                  3e-3: _record(3e-3, 0.05, 0.1, 0.50)}
    choice = fair.select_lr(candidates)
    assert choice["lr"] == 3e-3 and choice["val_error"] == 0.05  # tie broken by val loss
    for record in candidates.values():  # test errors do not enter the choice
        record["test_error"] = 0.0
    assert fair.select_lr(candidates)["lr"] == 3e-3
    candidates[3e-3] = _record(3e-3, None, None, None, status="diverged")
    assert fair.select_lr(candidates)["lr"] == 1e-3
    candidates[1e-3] = None
    assert fair.select_lr(candidates) is None  # waits for every learning rate
    diverged = {lr: _record(lr, None, None, None, status="diverged") for lr in fair.FAIR_LRS}
    assert fair.select_lr(diverged)["lr"] is None


def test_the_plan_puts_r20_first_then_the_lstm_finding(tmp_path):
    plan, waiting = fair.fair_plan(tmp_path, "paper")
    names = list(plan)
    r20 = [name for name in names if "_R20_" in name]
    assert names[:len(r20)] == r20 and len(r20) == 15  # 5 models x 3 learning rates
    finding = [fair.fair_name("lstm", 50, 1e-3, seed) for seed in fair.FAIR_SEEDS]
    assert names[len(r20):len(r20) + 3] == finding
    assert len(waiting) == 15  # no selection finished: no cell's other seeds are planned yet
    config = plan[names[0]]
    assert config.model.input_embedding == fair.FAIR_INPUT_EMBEDDING
    assert (config.steps, config.patience, config.lr_schedule) == (60_000, 15_000, "constant")
    assert {plan[fair.fair_name("alstm", 100, lr, 0)].lr for lr in fair.FAIR_LRS} \
        == set(fair.FAIR_LRS)


def test_cli_sweep_fair_selects_then_plans_the_other_seeds_and_resumes(tmp_path):
    lrs = [fair.fair_name("irnn", 20, lr, 0) for lr in fair.FAIR_LRS]
    done = fwbook("sweep", "fair", "--profile", "smoke", "--directory", str(tmp_path),
                  "--quiet", "--only", *lrs)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(f"{n}.json" for n in lrs)
    choice = fair.cell_selection(tmp_path, "irnn", 20, "smoke")
    chosen = [fair.fair_name("irnn", 20, choice["lr"], seed) for seed in (1, 2)]
    status = fwbook("sweep", "fair", "--profile", "smoke", "--directory", str(tmp_path),
                    "--status")
    assert status.returncode == 0, status.stderr
    for name in lrs:
        assert f"done  {name}" in status.stdout
    for name in chosen:
        assert f"todo  {name}" in status.stdout
    assert "later ln_irnn R=20" in status.stdout
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")}
    again = fwbook("sweep", "fair", "--profile", "smoke", "--directory", str(tmp_path),
                   "--quiet", "--only", *lrs)
    assert again.returncode == 0 and stamps == {p: p.stat().st_mtime_ns
                                                for p in tmp_path.glob("*.json")}
    record = read_record(tmp_path / f"{lrs[0]}.json")
    for field in ("config", "seed", "commit", "device", "versions", "wall_s", "early_stopping"):
        assert field in record


def test_sweep_fair_trains_two_runs_at_a_time_in_plan_order(tmp_path):
    """--workers 2: the plan's next two runs together, the plan recomputed after each pair."""
    cell = [fair.fair_name("fast_weights", 20, lr, 0) for lr in fair.FAIR_LRS]
    done = fwbook("sweep", "fair", "--profile", "smoke", "--directory", str(tmp_path),
                  "--quiet", "--workers", "2", "--limit", "2")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(f"{n}.json" for n in cell[:2])
    result = fair.run_fair(tmp_path, "smoke", only=set(cell), quiet=True, workers=2)
    assert result == {"trained": cell[2:], "failed": {}}
    assert fair.cell_selection(tmp_path, "fast_weights", 20, "smoke")["lr"] in fair.FAIR_LRS


def test_cli_sweep_fair_refuses_a_name_outside_the_plan(tmp_path):
    bad = fwbook("sweep", "fair", "--profile", "smoke", "--directory", str(tmp_path),
                 "--only", "fair_irnn_R20_lr1e-3_seed1")
    assert bad.returncode == 2
    assert "--only: not in the fair plan (yet): fair_irnn_R20_lr1e-3_seed1" in bad.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def finished_cells(tmp_path_factory):
    """The smoke protocol run to the end for two models at R = 20 (10 runs)."""
    directory = tmp_path_factory.mktemp("fair")
    result = fair.run_fair(directory, "smoke", models=("irnn", "fast_weights"), hidden=(20,),
                           quiet=True)
    assert not result["failed"]
    return directory, result


def test_run_fair_trains_the_selection_then_the_chosen_seeds(finished_cells):
    directory, result = finished_cells
    assert len(result["trained"]) == 10
    for model in ("irnn", "fast_weights"):
        names = [n for n in result["trained"] if n.startswith(f"fair_{model}_")]
        chosen = fair.cell_selection(directory, model, 20, "smoke")["lr"]
        # the three learning rates first, then seeds 1 and 2 at the chosen one
        assert names[:3] == [fair.fair_name(model, 20, lr, 0) for lr in fair.FAIR_LRS]
        assert names[3:] == [fair.fair_name(model, 20, chosen, seed) for seed in (1, 2)]
    again = fair.run_fair(directory, "smoke", models=("irnn", "fast_weights"), hidden=(20,),
                          quiet=True)
    assert again == {"trained": [], "failed": {}}


def test_chapter_tables_come_from_the_records(finished_cells):
    from fwbook.chapters import ch05_fair

    directory, _ = finished_cells
    cells = fair.fair_cells(directory)
    irnn = next(c for c in cells if (c["model"], c["hidden"]) == ("irnn", 20))
    assert irnn["n"] == 3 and [run["seed"] for run in irnn["runs"]] == [0, 1, 2]
    assert irnn["state"] == "finished"
    assert irnn["mean"] == pytest.approx(sum(r["test_error"] for r in irnn["runs"]) / 3)
    errors = [r["test_error"] for r in irnn["runs"]]
    assert irnn["std"] == pytest.approx(statistics.stdev(errors))  # ddof = 1
    today = {("irnn", 20): {"mean": 54.57, "std": 7.68, "n": 3},
             ("lstm", 20): {"mean": 15.0, "std": None, "n": 1}}
    table = ch05_fair.comparison_markdown(cells, today)
    row = next(line for line in table.splitlines() if line.startswith("| IRNN | 20 |"))
    assert f"{100 * irnn['mean']:.2f}" in row and "(n=3)" in row and "54.57 ± 7.68 (n=3)" in row
    assert f"{fair.lr_label(irnn['chosen']['lr'])} (" in row
    lstm = next(line for line in table.splitlines() if line.startswith("| LSTM | 20 |"))
    assert "not run yet" in lstm and "selecting (0 of 3 learning rates run)" in lstm
    assert "15.00 ± n/a (n=1)" in lstm  # one seed: the spread is undefined, not 0
    assert "**chosen**" in ch05_fair.selection_markdown(cells)
    progress = ch05_fair.progress_markdown(cells)
    assert "- **Finished** (2 of 15 cells, 3 seeds each): IRNN R = 20, Fast weights R = 20." \
        in progress
    assert "- **Pending, not run yet** (13):" in progress and "A-LSTM R = 100" in progress
    verdict = ch05_fair.verdict_markdown(cells, today, directory=directory)
    assert "Not decided yet at R = 20" in verdict and "LSTM" in verdict
    assert f"{100 * irnn['mean']:.2f}% under the protocol (n=3)" in verdict
    capped = [record["name"] for cell in cells for record in fair.cell_runs(cell)
              if fair.still_improving(record)]
    for name in capped:  # capped runs whose best was their last point
        record = read_record(directory / f"{name}.json")
        assert record["early_stopping"]["best_step"] == record["steps_done"] == 60
        assert name in verdict
    assert "- **Compute so far**: 10 runs," in verdict
    figure = ch05_fair.validation_curves_figure(cells)
    assert len(figure.axes) == 15
    plan = fair.projection(directory)
    assert plan["by_model"]["irnn"]["runs"] == 5
    assert plan["by_model"]["irnn"]["remaining_runs"] == 10
    assert plan["remaining_hours"] is None  # LSTM, A-LSTM, LN-IRNN have no measurement
    spent = fair.protocol_compute(directory)
    assert spent["runs"] == 10 and spent["by_model"]["irnn"]["updates"] == sum(
        read_record(path)["steps_done"] for path in directory.glob("fair_irnn_*.json"))
    assert 0 < spent["elapsed_hours"] and spent["first_start"] < spent["last_end"]
    assert "In all so far: 10 runs" in ch05_fair.compute_markdown(directory)
    pressure = fair_cap.cap_pressure(cells)
    finished = [r for cell in cells for r in fair.cell_runs(cell)]
    ended = [r for r in finished if r["early_stopping"]["stop_reason"] == "cap"]
    assert pressure["runs"] == len(finished) and pressure["ended_by_cap"] == len(ended)
    assert pressure["cap"] == 60 and pressure["still_improving"] == len(capped)
    assert set(pressure["drops"]) == {r["name"] for r in ended}
    assert pressure["extend_hours"] == pytest.approx(
        sum(r["wall_s"] for r in ended) / 3600, rel=1e-6)  # each ran its whole cap once
    assert f"{pressure['ended_by_cap']} of the {pressure['runs']} runs finished" in \
        ch05_fair.cap_markdown(cells)


def test_last_window_drop_reads_the_curve():
    record = {"steps_done": 60, "curves": {"step": [10, 20, 30, 40, 50, 60],
                                           "val_error": [0.5, 0.4, 0.3, 0.35, 0.25, 0.2]}}
    assert fair_cap.last_window_drop(record, 20) == pytest.approx(0.3 - 0.2)  # best by 40, then 0.2
    assert fair_cap.last_window_drop(record, 60) is None  # no point before the window
    flat = {"steps_done": 30, "curves": {"step": [10, 20, 30], "val_error": [0.2, 0.3, 0.25]}}
    assert fair_cap.last_window_drop(flat, 10) == 0.0


def test_the_verdict_says_when_the_cap_held_fast_weights_back():
    """Fast weights stopped by the cap while still improving, controls stopped by patience:
    the verdict says plainly that the cap works against the model the paper champions."""
    from fwbook.chapters import ch05_fair

    def run(model, seed, error, reason, best, steps=60_000):
        return {"name": fair.fair_name(model, 20, 1e-3, seed), "seed": seed, "status": "completed",
                "test_error": error, "steps_done": steps, "config": {"steps": 60_000, "lr": 1e-3},
                "early_stopping": {"stop_reason": reason, "best_step": best,
                                   "best_val_error": error, "best_val_loss": 0.1}}

    def cell(model, runs):
        chosen = {"lr": 1e-3, "val_error": runs[0]["test_error"], "val_loss": 0.1, "step": 1,
                  "reason": "lowest validation error"}
        summary = summarize(r["test_error"] for r in runs)
        return {"model": model, "hidden": 20, "runs": runs, "chosen": chosen, "state": "finished",
                "selection": {lr: None for lr in fair.FAIR_LRS}, **summary}

    cells = [cell("fast_weights", [run("fast_weights", s, 0.05, "cap", 60_000) for s in range(3)]),
             cell("lstm", [run("lstm", 0, 0.08, "cap", 60_000),
                           *(run("lstm", s, 0.09, "patience", 20_000, 35_000) for s in (1, 2))])]
    verdict = fair.fair_verdict(cells)
    assert verdict["fast_weights_capped"] == 1.0
    assert verdict["controls_capped"] == {"lstm": pytest.approx(1 / 3)}
    lines = ch05_fair._claim_lines(cells, 20)
    assert any(line.startswith("- **The cap held back fast weights, the model the paper "
                               "champions**: 3 of its 3 runs at R = 20 (lr 1e-3) were still "
                               "improving when the 60,000-update cap stopped them — more of its "
                               "runs than of any control's.") for line in lines), lines
    assert "- **Controls also stopped by the cap while improving** at R = 20: LSTM 1 of 3 runs." \
        in lines


def test_the_committed_protocol_records_belong_to_the_plan():
    """Every record in results/fair/ is a run of today's paper plan with its configuration's
    hash; fails on a missing or empty results/fair/ (19 records when this test was written)."""
    paths = sorted(fair.FAIR_DIR.glob("fair_*.json"))
    assert len(paths) >= 19
    plan, _ = fair.fair_plan(fair.FAIR_DIR, "paper")
    for path in paths:
        record = read_record(path)
        assert path.stem in plan, path
        assert record["config_hash"] == config_hash(plan[path.stem].to_dict()), path
        assert record["status"] == "completed" and "early_stopping" in record, path
    cells = fair.fair_cells()
    finished = [cell for cell in cells if cell["state"] == "finished"]
    assert len(finished) >= 3  # IRNN, LSTM and fast weights at R = 20
    for cell in finished:
        assert cell["n"] == 3 and cell["std"] is not None
        assert cell["mean"] == pytest.approx(statistics.mean(r["test_error"] for r in cell["runs"]))


def test_the_inspection_tools_read_the_embedding_too():
    from fwbook.core.data import encode
    from fwbook.chapters.explorer import model_spec
    from fwbook.chapters.ch02_equation import explicit_fast_weights
    from fwbook.chapters.ch07_linear_attention import fast_weights_as_linear_attention

    torch.manual_seed(0)
    model = build_model(ModelConfig(model="fast_weights", hidden=8, input_embedding=12)).eval()
    text = "a1b2c3d4??b"
    _, states = explicit_fast_weights(model, text)
    with torch.no_grad():
        traced = model.trace(encode(text).unsqueeze(0)).hidden_states[0]
    assert torch.allclose(torch.from_numpy(states), traced, atol=1e-5)
    result = fast_weights_as_linear_attention(model, encode(text).unsqueeze(0))
    assert torch.allclose(result["hidden"], result["trace_hidden"], atol=1e-5)
    with pytest.raises(ValueError, match="explorer reads one-hot input only"):
        model_spec(model, "embedded", "embedded")


def test_a_pending_control_already_below_fast_weights_on_validation_is_named():
    from fwbook.chapters import ch05_fair

    fast = {"model": "fast_weights", "hidden": 20, "selection": {},
            "chosen": {"lr": 3e-4, "val_error": 0.0307}}
    pending = {"model": "alstm", "hidden": 20, "chosen": None, "state": "selecting",
               "selection": {3e-4: {"val_error": 0.08}, 1e-3: {"val_error": 0.0271}, 3e-3: None}}
    lines = ch05_fair.pending_below_fast_weights([fast, pending], 20)
    assert len(lines) == 1 and "A-LSTM at R = 20, lr 1e-3, reached 2.71% validation" in lines[0]
    assert "3.07% for fast weights' chosen run" in lines[0]
    pending["selection"][1e-3]["val_error"] = 0.04  # no longer below: nothing to say
    assert ch05_fair.pending_below_fast_weights([fast, pending], 20) == []
    # the R of the call only; a finished cell is the verdict's business, not this line's
    assert ch05_fair.pending_below_fast_weights([fast, dict(pending, hidden=50)], 20) == []
    pending["selection"][1e-3]["val_error"] = 0.0271
    waiting = dict(pending, state="seeds", chosen={"lr": 1e-3, "val_error": 0.0271})
    assert len(ch05_fair.pending_below_fast_weights([fast, waiting], 20)) == 1
    assert ch05_fair.pending_below_fast_weights([fast, dict(waiting, state="finished")], 20) == []


def test_cap_check_trains_the_chosen_rate_with_twice_the_cap(tmp_path):
    """`fwbook sweep fair-cap`: fast weights at R = 20, the rate its committed cell chose, the
    protocol's patience and minimum, twice its cap; records in their own folder."""
    chosen = fair.cell_selection(fair.FAIR_DIR, "fast_weights", 20)["lr"]
    done = fwbook("sweep", "fair-cap", "--profile", "smoke", "--directory", str(tmp_path),
                  "--seeds", "0", "--quiet")
    assert done.returncode == 0, done.stderr
    name = fair_cap.cap_check_name("fast_weights", 20, chosen, 0, 2)
    assert [p.name for p in tmp_path.glob("*.json")] == [f"{name}.json"]
    record = read_record(tmp_path / f"{name}.json")
    smoke = fair.FAIR_BUDGET["smoke"]
    assert record["config"]["steps"] == 2 * smoke["steps"]
    assert record["config"]["patience"] == smoke["patience"]
    assert record["config"]["lr"] == chosen
    assert record["config"]["model"]["input_embedding"] == fair.FAIR_INPUT_EMBEDDING
    status = fwbook("sweep", "fair-cap", "--profile", "smoke", "--directory", str(tmp_path),
                    "--seeds", "0", "--status")
    assert f"  done  {name}" in status.stdout


def test_cap_check_waits_for_its_cell_and_reads_against_the_best_control(tmp_path):
    with pytest.raises(ValueError, match="the cap check waits for fast_weights R=20 to choose"):
        fair_cap.cap_check_configs("paper", fair_directory=tmp_path)
    assert fair_cap.cap_check_summary([], tmp_path, fair_directory=tmp_path) is None
    cells = fair.fair_cells()
    summary = fair_cap.cap_check_summary(cells, tmp_path)  # no cap-check record in tmp_path
    assert summary["n"] == 0 and summary["outcome"] == "pending" and summary["planned"] == 3
    assert summary["cap"] == 2 * fair.FAIR_BUDGET["paper"]["steps"]
    fw = next(c for c in cells if c["model"] == "fast_weights" and c["hidden"] == 20)
    assert summary["at_cap"] == fw["mean"]
    for seed, error in enumerate((0.01, 0.02, 0.03)):  # three finished runs, below every control
        name = fair_cap.cap_check_name("fast_weights", 20, fw["chosen"]["lr"], seed, 2)
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"status": "completed", "test_error": error, "seed": seed, "steps_done": 120_000,
             "config": {"steps": 120_000, "patience": 15_000},
             "early_stopping": {"stop_reason": "patience", "best_step": 90_000}}))
    summary = fair_cap.cap_check_summary(cells, tmp_path)
    assert summary["n"] == 3 and summary["mean"] == pytest.approx(0.02)
    best = summary["best_control"]
    assert summary["outcome"] == ("open" if 0.02 <= best[1] else "claim fails even so")
    from fwbook.chapters import ch05_fair

    text = ch05_fair.cap_check_markdown(cells, tmp_path)
    assert "3 runs of 3 finished, test error (%) 2.00 ± 1.00 (n=3)" in text
    assert f"{100 * best[1]:.2f}%" in text
    assert ("hangs on the cap" if summary["outcome"] == "open" else "does not hang") in text
    line = ch05_fair.summary_markdown(cells, cap_directory=tmp_path)
    assert line.startswith("- Under the fair-controls protocol the paper's claim at R = 20 ")
    assert f"fast weights {100 * summary['at_cap']:.2f}%" in line
    assert f"reach {100 * summary['mean']:.2f}%" in line
    assert "has 0 of its 3 runs so far" in ch05_fair.summary_markdown(
        cells, cap_directory=tmp_path / "none")
    pending = ch05_fair.cap_check_markdown(cells, tmp_path / "none")
    assert "0 runs of 3 finished" in pending and "**Pending**" in pending
