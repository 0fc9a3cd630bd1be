"""Table 1, Figure 2 and the README block, built from (synthetic and real) run records:
the cells and statistics of ``experiments.table1`` and the page of ``chapters.ch05_results``."""

from pathlib import Path

import json
import matplotlib
import pytest

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from fwbook.chapters import ch05_results as results  # noqa: E402
from fwbook.core.records import config_hash, write_record  # noqa: E402
from fwbook.experiments import table1  # noqa: E402
from fwbook.experiments.grids import PAPER_TABLE1, recipe_config, retrieval_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def fake_record(directory, model, hidden, seed, test_error, paper_recipe=False, status="completed",
                wall_s=60.0):
    config = (recipe_config("paper_recipe", seed, "paper", model, hidden) if paper_recipe
              else retrieval_config(model, hidden, "paper", seed))
    name = ("paper_recipe_" if paper_recipe else "") + f"{model}_R{hidden}_seed{seed}"
    steps = [1000, 2000, 3000]
    record = {"name": name, "status": status, "model": model, "hidden": hidden, "seed": seed,
              "profile": "paper", "test_error": test_error if status == "completed" else None,
              "config": config.to_dict(), "config_hash": config_hash(config.to_dict()),
              "commit": "abc", "device": {"type": "cpu"}, "wall_s": wall_s,
              "curves": {"step": steps, "val_error": [0.9, 0.5, test_error or 0.9],
                         "val_loss": [3.0, 1.0, 0.5], "train_loss": [3.0, 1.0, 0.5],
                         "grad_norm": [1.0, 1.0, 1.0]}}
    write_record(Path(directory) / f"{name}.json", record)
    return record


@pytest.fixture
def grid(tmp_path):
    for seed, error in enumerate([0.010, 0.012, 0.014]):
        fake_record(tmp_path, "fast_weights", 20, seed, error)
    fake_record(tmp_path, "fast_weights", 20, 0, 0.30, paper_recipe=True)
    assert table1.recipe_of({"name": "cosine_lr3e-3_fast_weights_R20_seed0"}) == "cosine_lr3e-3"
    assert table1.recipe_of({"name": "cosine_lr3e-3_80k_fast_weights_R20_seed0"}) == "cosine_lr3e-3_80k"
    assert table1.recipe_of({"name": "fast_weights_R20_seed0"}) == ""
    fake_record(tmp_path, "irnn", 20, 0, 0.55)
    fake_record(tmp_path, "lstm", 20, 0, None, status="diverged")
    for model in ("fast_weights", "irnn", "lstm", "alstm"):
        fake_record(tmp_path, model, 50, 0, 0.02)
    return tmp_path


def test_table1_rows_mean_spread_sources_and_not_run_cells(grid):
    records = table1.load_table1(grid)
    rows = {row["model"]: row for row in table1.table1_rows(records)}
    fw = rows["fast_weights"]["cells"][20]
    assert fw["n"] == 3 and fw["mean"] == pytest.approx(1.2) and fw["std"] == pytest.approx(0.2)
    assert fw["paper"] == PAPER_TABLE1[("fast_weights", 20)]
    assert len(fw["paths"]) == 3 and all("paper_recipe" not in p for p in fw["paths"])
    assert rows["lstm"]["cells"][20]["n"] == 0 and rows["lstm"]["cells"][20]["diverged"] == 1
    assert rows["alstm"]["cells"][100]["n"] == 0
    assert results.format_cell(rows["alstm"]["cells"][100]) == results.NOT_RUN
    assert results.format_cell(rows["lstm"]["cells"][20]) == "1 diverged"
    assert results.format_cell(fw, unit="%") == "1.20 ± 0.20% (n=3)"
    assert table1.target_met(records) is True
    assert ("alstm", 100) in table1.missing_cells(list(rows.values()))
    assert rows["irnn"]["cells"][20]["std"] is None  # one seed: no spread, not 0
    assert results.format_cell(rows["irnn"]["cells"][20]) == "55.00 ± n/a (n=1)"


def test_records_of_another_recipe_are_left_out(grid):
    config = retrieval_config("irnn", 100, "paper", 0, lr=0.5)
    record = {"name": "irnn_R100_seed0", "status": "completed", "model": "irnn", "hidden": 100,
              "seed": 0, "profile": "paper", "test_error": 0.0, "config": config.to_dict(),
              "config_hash": config_hash(config.to_dict()), "wall_s": 1.0, "curves": {}}
    write_record(grid / "irnn_R100_seed0.json", record)
    assert not [r for r in table1.load_table1(grid) if r["hidden"] == 100 and r["model"] == "irnn"]
    assert [r for r in table1.load_table1(grid, current_only=False) if r["hidden"] == 100]


def test_target_needs_three_seeds(tmp_path):
    fake_record(tmp_path, "fast_weights", 20, 0, 0.001)
    assert table1.target_met(table1.load_table1(tmp_path)) is None
    fake_record(tmp_path, "fast_weights", 20, 1, 0.05)
    fake_record(tmp_path, "fast_weights", 20, 2, 0.05)
    assert table1.target_met(table1.load_table1(tmp_path)) is False


def test_markdown_lists_records_and_says_not_run_yet(grid):
    records = table1.load_table1(grid)
    table = results.table1_markdown(table1.table1_rows(records))
    assert "| Fast weights | 1.20 ± 0.20 (n=3) | 1.81 |" in table
    assert results.NOT_RUN in table
    assert "fast_weights_R20_seed2" in table
    verdict = results.verdict_markdown(records)
    assert "**reached**" in verdict and "Not run yet" in verdict
    assert "30.00% ± n/a (n=1)" in verdict  # the paper's recipe
    recipes = results.recipes_markdown(records)
    assert "| ours (every Table 1 cell) | 0.001 | constant | 40,000 | 1.20 ± 0.20 (n=3) | yes |" in recipes
    assert "| the paper's | 0.0001 | constant | 40,000 | 30.00 ± n/a (n=1) | not decided (fewer seeds) |" in recipes
    assert "| cosine_lr3e-3 | 0.003 | cosine | — | not run yet | not run yet |" in recipes
    ranking = results.ranking_markdown(records, hidden=20)
    assert ranking.startswith("1. Fast weights: 1.20")


def test_readme_block_rewrites_only_between_markers(grid, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\nbefore\n<!-- table1:start -->\nold table\n<!-- table1:end -->\n"
                      "after\n")
    results.write_readme_block(readme, grid)
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n<!-- table1:start -->\n")
    assert text.endswith("<!-- table1:end -->\nafter\n")
    assert "old table" not in text and "| Fast weights |" in text
    assert "Compute spent on these records: 10 runs" in text
    results.write_readme_block(readme, grid)  # idempotent
    assert readme.read_text() == text
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="table1:start"):
        results.write_readme_block(readme, grid)


def test_figures_are_drawn_from_records(grid):
    records = table1.load_table1(grid)
    figure = results.figure2(records, hidden=50)
    assert isinstance(figure, Figure)
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert any(label.startswith("Fast weights (n=1)") for label in labels)
    empty = results.figure2([], hidden=100)
    assert all(results.NOT_RUN in t.get_text() for t in empty.axes[0].get_legend().get_texts())
    loss = results.figure2(records, hidden=50, metric="val_loss")
    assert loss.axes[0].get_ylabel().startswith("validation cross-entropy")
    recipe = results.recipe_figure(records)
    labels = [t.get_text() for t in recipe.axes[0].get_legend().get_texts()]
    assert "the paper's: lr 0.0001, constant" in labels
    assert "ours (Table 1): lr 0.001, constant" in labels
    matplotlib.pyplot.close("all")


def test_committed_table1_records_are_complete():
    """Every committed Table 1 record carries what the book needs to trust it, and every run
    of today's paper grid has one (so the test fails on a missing or empty results/)."""
    from fwbook.experiments.grids import table1_configs

    committed = table1.load_table1(table1.TABLE1_DIR, profile=None, current_only=False)
    planned = table1_configs("paper")
    assert {record["name"] for record in table1.load_table1()} == set(planned)
    assert len(committed) >= len(planned) == 57
    rows = table1.table1_rows(committed)
    assert all(cell["n"] == 3 for row in rows for cell in row["cells"].values())
    for record in committed:
        for field in ("model", "hidden", "seed", "profile", "test_error", "config", "commit",
                      "device", "wall_s", "config_hash", "name"):
            assert field in record, (record["path"], field)
        assert record["config_hash"] == config_hash(record["config"])
        assert len(record["curves"]["step"]) <= 200
        assert Path(record["path"]).stem == record["name"]


def test_every_extra_recipe_is_kept_out_of_table1(tmp_path):
    config = recipe_config("cosine_lr3e-3", 0)
    record = {"name": "cosine_lr3e-3_fast_weights_R20_seed0", "status": "completed",
              "model": "fast_weights", "hidden": 20, "seed": 0, "profile": "paper",
              "test_error": 0.005, "config": config.to_dict(),
              "config_hash": config_hash(config.to_dict()), "wall_s": 1.0,
              "curves": {"step": [1, 2], "val_error": [0.5, 0.01]}}
    write_record(tmp_path / f"{record['name']}.json", record)
    records = table1.load_table1(tmp_path)
    assert len(records) == 1
    assert table1.table1_rows(records)[0]["cells"][20]["n"] == 0
    cells = {c["recipe"]: c for c in table1.recipe_cells(records)}
    assert cells["cosine_lr3e-3"]["n"] == 1 and cells["cosine_lr3e-3"]["mean"] == pytest.approx(0.5)
    assert cells[""]["n"] == 0


def test_grid_time_uses_only_records_that_name_their_step():
    def record(model, hidden, wall, seed=0, step=True, name=None):
        out = {"model": model, "hidden": hidden, "wall_s": wall, "seed": seed,
               "status": "completed", "name": name or f"{model}_R{hidden}_seed{seed}"}
        if step:
            out["training_step"] = {"path": "compiled", "reason": "auto: 40000 updates on the CPU"}
        return out

    records = [record("fast_weights", 20, 100.0), record("fast_weights", 20, 300.0, seed=1),
               record("fast_weights", 20, 200.0, seed=2),
               record("lstm", 20, 50.0),
               record("lstm", 20, 9999.0, seed=1, step=False),  # before the auto step: left out
               {**record("lstm", 20, 9999.0, seed=2),  # a step forced by hand: left out
                "training_step": {"path": "eager", "reason": "asked for"}},
               record("fast_weights", 20, 9999.0, name="paper_recipe_fast_weights_R20_seed0")]
    grid = table1.grid_time(records, models=("fast_weights", "lstm", "irnn"), hidden_sizes=(20,),
                             seeds=3, workers=2)
    assert grid["cells"][("fast_weights", 20)] == {"runs": 3, "median_wall_s": 200.0,
                                                   "steps": ["compiled"]}
    assert grid["cells"][("lstm", 20)]["median_wall_s"] == 50.0
    assert grid["missing"] == ["irnn R=20"]
    assert grid["grid_hours"] == pytest.approx((3 * 200 + 3 * 50) / 2 / 3600)


def test_control_budget_table_keeps_long_runs_apart(tmp_path):
    from fwbook.experiments.grids import table1_configs

    configs = table1_configs("paper", seeds=(0,))
    made = []
    for name, error in (("ln_irnn_R20_seed0", 0.62), ("long_250k_ln_irnn_R20_seed0", 0.104)):
        config = configs[name]
        made.append({"name": name, "model": "ln_irnn", "hidden": 20, "seed": 0,
                     "status": "completed", "test_error": error, "config": config.to_dict(),
                     "path": f"results/table1/{name}.json"})
    text = results.control_budget_markdown(made)
    assert "| ln_irnn | the profile's (Table 1) | 40,000 | 62.00 ± n/a (n=1) |" in text
    assert "| ln_irnn | long_250k | 250,000 |" in text and "10.40" in text
    assert "[long_250k_ln_irnn_R20_seed0](results/table1/long_250k_ln_irnn_R20_seed0.json) 10.40" in text
    # the long run stays out of Table 1's cell
    row = [r for r in table1.table1_rows(made) if r["model"] == "ln_irnn"][0]
    assert row["cells"][20]["n"] == 1 and row["cells"][20]["mean"] == pytest.approx(62.0)


def test_verdict_reports_the_longer_control_budget():
    from fwbook.experiments.grids import table1_configs

    configs = table1_configs("paper", seeds=(0,))
    made = [{"name": name, "model": "ln_irnn", "hidden": 20, "seed": 0, "status": "completed",
             "test_error": error, "config": configs[name].to_dict()}
            for name, error in (("ln_irnn_R20_seed0", 0.62), ("long_250k_ln_irnn_R20_seed0", 0.13))]
    text = results.verdict_markdown(made)
    assert ("- **LN-IRNN with a longer budget** (`long_250k`, 250,000 updates, R = 20): "
            "13.00% ± n/a (n=1), against 62.00% ± n/a (n=1) after the Table 1 budget.") in text


def test_compute_by_folder_counts_run_records_only(tmp_path):
    (tmp_path / "table1").mkdir()
    (tmp_path / "catch" / "runs").mkdir(parents=True)
    (tmp_path / "table1" / "a.json").write_text(json.dumps({"seed": 0, "wall_s": 1800}))
    (tmp_path / "table1" / "b.json").write_text(json.dumps({"seed": 1, "wall_s": 1800}))
    (tmp_path / "catch" / "runs" / "c.json").write_text(json.dumps({"seed": 0, "wall_time_s": 360}))
    (tmp_path / "bench.json").write_text(json.dumps({"suite": "tta", "rows": []}))  # not a run
    (tmp_path / "broken.json").write_text("{")
    assert table1.compute_by_folder(tmp_path) == {
        "catch/runs": {"runs": 1, "hours": 0.1}, "table1": {"runs": 2, "hours": 1.0}}


def test_verdict_names_larger_r_cells_where_the_paper_is_better():
    made = [{"name": f"lstm_R100_seed{s}", "model": "lstm", "hidden": 100, "seed": s,
             "status": "completed", "test_error": e, "config": {"steps": 40_000}}
            for s, e in ((0, 0.04), (1, 0.05))]
    made.append({"name": "irnn_R100_seed0", "model": "irnn", "hidden": 100, "seed": 0,
                 "status": "completed", "test_error": 0.01, "config": {"steps": 40_000}})
    text = results.verdict_markdown(made)
    line = next(l for l in text.splitlines() if l.startswith("- **Larger R"))
    assert "LSTM R = 100 4.50 ± 0.71% (n=2) (paper: 0%)" in line
    assert "IRNN" not in line  # 1.00% against the paper's 0.34%: within 1 point
