"""The chapter-04 ablation grid (names, cells, budgets, the η = 0 identity, seed statistics) and
its figures, table and prose (fwbook.chapters.ch04_tricks)."""

from __future__ import annotations

import json

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from fwbook.chapters import ch04_tricks as tricks  # noqa: E402
from fwbook.experiments import ablations  # noqa: E402
from fwbook.core.data import PAPER_NUM_PAIRS, associative_retrieval, value_only_error  # noqa: E402
from fwbook.experiments.grids import PROFILES  # noqa: E402
from fwbook.core.models import build_model  # noqa: E402
from fwbook.core.records import config_hash, write_record  # noqa: E402
from fwbook.experiments.sweep import run_sweep  # noqa: E402
from fwbook.core.train import TrainConfig  # noqa: E402


@pytest.mark.parametrize("profile", PROFILES)
def test_grid_has_every_cell_and_valid_configs(profile):
    configs = ablations.ablation_configs(profile, seeds=(0, 1))
    cells = [cell for _, cell, _ in ablations.ABLATION_CELLS]
    assert list(configs) == [f"ablation_{c}_seed{s}" for s in (0, 1) for c in cells]
    assert "ablation_layer_norm_off_seed0" in configs
    for name, config in configs.items():
        assert isinstance(config, TrainConfig)
        assert config.model.model == "fast_weights" and config.model.hidden == 20
        build_model(config.model)  # builds
        TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))  # round-trips
        assert config.seed == ablations.parse_name(name)[1]
        assert config.steps == ablations.ABLATION_BUDGETS[profile]["steps"]
    # distinct configurations, one per name
    assert len({config_hash(c.to_dict()) for c in configs.values()}) == len(configs)


def test_each_cell_changes_exactly_what_it_says():
    configs = ablations.ablation_configs("paper")
    base = configs["ablation_baseline_seed0"]
    assert (base.model.decay, base.model.fast_lr, base.model.inner_steps) == (0.95, 0.5, 1)
    assert base.model.layer_norm and base.clip_norm == 5.0 and base.lr == 1e-3
    cell = lambda name: configs[f"ablation_{name}_seed0"]  # noqa: E731
    assert not cell("layer_norm_off").model.layer_norm
    assert cell("identity_init_off").model.recurrent_init == 0.0
    assert base.model.recurrent_init is None  # 0.05·I, the fast-weights default
    assert [cell(f"inner_steps_{s}").model.inner_steps for s in (2, 3)] == [2, 3]
    assert [cell(f"decay_{d}").model.decay for d in ("0.5", "1.0")] == [0.5, 1.0]
    assert [cell(f"fast_lr_{e}").model.fast_lr for e in ("0", "0.1", "1.0")] == [0.0, 0.1, 1.0]
    assert cell("clipping_off").clip_norm is None
    assert [cell(f"lr_{x}").lr for x in ("1e-4", "3e-4", "3e-3")] == [1e-4, 3e-4, 3e-3]
    for name, config in configs.items():  # everything else equals the baseline
        if name == "ablation_baseline_seed0":
            continue
        differing = [k for k, v in config.to_dict().items() if k != "model"
                     and v != base.to_dict()[k]]
        differing += [k for k, v in config.model.to_dict().items()
                      if v != base.model.to_dict()[k]]
        assert len(differing) == 1, (name, differing)


def test_bad_arguments():
    with pytest.raises(ValueError, match="huge"):
        ablations.ablation_configs("huge")
    with pytest.raises(ValueError, match="non-negative integers, got -1"):
        ablations.ablation_configs("smoke", seeds=(-1,))
    with pytest.raises(ValueError, match="at least one seed"):
        ablations.ablation_configs("smoke", seeds=())
    with pytest.raises(ValueError, match="not an ablation run name: 'baseline_seed0'"):
        ablations.parse_name("baseline_seed0")
    with pytest.raises(ValueError, match="unknown ablation cell 'dropout'"):
        ablations.cell_stats({}, "dropout")
    with pytest.raises(ValueError, match="field must be one of test_error, final_val_error"):
        ablations.cell_stats({}, "baseline", field="test_loss")
    with pytest.raises(ValueError, match="unknown ablation group 'momentum'"):
        tricks.group_summary({}, "momentum")
    with pytest.raises(ValueError, match=r"unknown ablation group\(s\) \['momentum'\]"):
        tricks.plot_ablation_curves({}, groups=("momentum",))
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -2"):
        ablations.profile_seeds("smoke", -2)
    with pytest.raises(ValueError, match="seeds must name at least one seed"):
        tricks.coverage_summary({}, ())
    with pytest.raises(ValueError, match="num_pairs must be a positive integer, got 0"):
        value_only_error(num_pairs=0)
    with pytest.raises(ValueError, match="too many to enumerate"):
        value_only_error(num_pairs=26, num_values=10)
    with pytest.raises(ValueError, match="band must be a fraction between 0 and 1, got 2"):
        ablations.stalled_runs({}, band=2)
    assert ablations.parse_name("ablation_decay_0.5_seed3") == ("decay_0.5", 3)


def test_eta_zero_is_an_ln_irnn():
    assert ablations.eta_zero_equals_ln_irnn(hidden=8, inner_steps=3) < 1e-6


def test_the_eta_zero_check_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = ablations.eta_zero_equals_ln_irnn(hidden=8)
    assert torch.equal(torch.rand(3), expected)
    assert ablations.eta_zero_equals_ln_irnn(hidden=8) == first  # seeded: the same number


@pytest.fixture(scope="module")
def smoke_records(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ablations")
    configs = ablations.ablation_configs("smoke")
    chosen = {name: config for name, config in configs.items()
              if ablations.parse_name(name)[0] in ("baseline", "fast_lr_0", "clipping_off")}
    chosen = {name: TrainConfig.from_dict({**config.to_dict(), "steps": 20, "eval_every": 10})
              for name, config in chosen.items()}
    records = run_sweep(chosen, directory, workers=1, profile="smoke", quiet=True)
    return {record["name"]: record for record in records}, directory


def test_figures_and_sentences_from_records(smoke_records):
    records, _ = smoke_records
    for fig in (tricks.plot_ablation_curves(records),
                tricks.plot_ablation_curves(records, groups=("fast_lr",), log=False),
                tricks.plot_ablation_bars(records), tricks.plot_grad_norms(records)):
        assert isinstance(fig, Figure)
    table = tricks.ablation_table(records)
    assert len(table) == len(ablations.ABLATION_CELLS)  # one row per cell, run or not
    ran = table[table["n"] > 0]
    assert list(ran["setting"]) == ["baseline", "η = 0 (memory off)", "no clipping"]
    assert set(ran["seeds"]) == {"0"} and ran["sd"].isna().all()  # one seed: no sd
    assert (table[table["n"] == 0]["status"] == "not run").all()
    text = tricks.group_summary(records, "fast_lr")
    assert "η = 0 (memory off)" in text and "not run" in text  # η = 0.1, 1.0 not run here
    assert "n = 1, seed 0" in text and "one seed per cell" in text
    verdict = tricks.eta_zero_verdict(records)
    base = records["ablation_baseline_seed0"]["test_error"]
    assert f"{base:.2%}" in verdict
    assert "needs a finished baseline run and a finished η = 0 run" in (
        tricks.eta_zero_verdict({}))
    assert "S = 2 and S = 3" in tricks.stall_summary(records)  # none run: says so
    assert "seed 0" in tricks.clipping_summary(records)


def test_load_ablation_records_matches_config_exactly(smoke_records, tmp_path):
    records, _ = smoke_records
    configs = ablations.ablation_configs("smoke")
    good = dict(records["ablation_baseline_seed0"])
    good["config"] = configs["ablation_baseline_seed0"].to_dict()
    good["config_hash"] = config_hash(good["config"])
    write_record(tmp_path / "ablation_baseline_seed0.json", good)
    stale = dict(good, config_hash="0" * 16)  # made with some other configuration
    write_record(tmp_path / "ablation_fast_lr_0_seed0.json", stale)
    found = ablations.load_ablation_records("smoke", tmp_path)
    assert list(found) == ["ablation_baseline_seed0"]


def test_verdict_follows_the_numbers():
    def fake(error):
        return {"test_error": error, "status": "completed", "curves": {}}

    strong = tricks.eta_zero_verdict({"ablation_baseline_seed0": fake(0.01),
                                         "ablation_fast_lr_0_seed0": fake(0.10)})
    assert "10.0" in strong and "memory's contribution" in strong
    none = tricks.eta_zero_verdict({"ablation_baseline_seed0": fake(0.05),
                                       "ablation_fast_lr_0_seed0": fake(0.04)})
    assert "does not hurt" in none


def test_committed_paper_records_match_the_grid():
    """The paper grid is committed whole in results/ablations/, every record under its hash."""
    configs = ablations.ablation_configs("paper", seeds=ablations.PAPER_SEEDS)
    paths = sorted(ablations.RESULTS_DIR.glob("ablation_*.json"))
    assert {path.stem for path in paths} == set(configs)  # fails on a missing or empty folder
    for path in paths:
        record = json.loads(path.read_text())
        assert path.stem in configs, path
        assert record["config_hash"] == config_hash(configs[path.stem].to_dict()), path


def test_clipping_activity():
    record = {"curves": {"step": [10, 20, 30], "grad_norm": [6.0, 5.5, 1.0]}}
    assert ablations.clipping_activity(record) == {"above": 2, "intervals": 3,
                                                   "last_above": 20, "max": 6.0}
    assert ablations.clipping_activity({})["max"] is None


def test_verdict_on_depth():
    def fake(error):
        return {"test_error": error, "status": "completed", "curves": {}}

    records = {"ablation_baseline_seed0": fake(0.03), "ablation_fast_lr_0_seed0": fake(0.6),
               "ablation_inner_steps_2_seed0": fake(0.6), "ablation_inner_steps_3_seed0": fake(0.1)}
    assert "did not help" in tricks.eta_zero_verdict(records)
    records.update(ablation_inner_steps_2_seed0=fake(0.01), ablation_inner_steps_3_seed0=fake(0.01))
    assert "did lower" in tricks.eta_zero_verdict(records)


# ---------------------------------------------------------------- several seeds per cell

def fake(error, status="completed", message="", val=None, curve=None, grad=None):
    """A hand-made record: test error ``error`` (fraction, None for a failed run), the
    validation curve ``curve`` (fractions, one per 500 updates) and gradient norms ``grad``."""
    curve = [] if curve is None else list(curve)
    steps = [500 * (i + 1) for i in range(len(curve))]
    return {"test_error": error, "final_val_error": error if val is None else val,
            "status": status, "message": message,
            "config": {"num_pairs": 4},
            "curves": {"step": steps, "val_error": curve, "train_loss": [1.0] * len(curve),
                       "val_loss": [1.0] * len(curve),
                       "grad_norm": list(grad) if grad is not None else [1.0] * len(curve)}}


def cell(name, errors, **kwargs):
    """``{run name: fake record}`` for seeds 0, 1, ... of one cell (None: skip that seed)."""
    return {f"ablation_{name}_seed{seed}": fake(error, **kwargs)
            for seed, error in enumerate(errors) if error is not None}


DIVERGED = dict(status="diverged", message="training diverged at update 23: loss 4.8e+08")


def test_profile_seeds():
    assert ablations.profile_seeds("paper") == ablations.PAPER_SEEDS == (0, 1, 2)
    assert ablations.profile_seeds("paper", seed=5) == (0, 1, 2)
    assert ablations.profile_seeds("smoke", seed=3) == (3,)
    assert ablations.profile_seeds("quick") == (0,)


def test_stats_over_seeds():
    records = cell("baseline", [0.03, 0.04, 0.05], val=0.02)
    stats = ablations.cell_stats(records, "baseline")
    assert stats["n"] == 3 and stats["seeds"] == [0, 1, 2]
    assert stats["mean"] == pytest.approx(0.04) and stats["std"] == pytest.approx(0.01)  # ddof 1
    assert (stats["min"], stats["max"]) == (0.03, 0.05) and stats["failed"] == {}
    validation = ablations.cell_stats(records, "baseline", "final_val_error")
    assert validation["mean"] == pytest.approx(0.02)
    assert tricks.stats_text(stats) == (
        "4.00% ± 1.00% (n = 3; seeds 0, 1, 2: 3.00%, 4.00%, 5.00%)")
    one = ablations.cell_stats(cell("baseline", [0.03]), "baseline")
    assert one["std"] is None and tricks.stats_text(one) == "3.00% (n = 1, seed 0)"
    row = tricks.ablation_table(records).iloc[0]
    assert (row["setting"], row["n"], row["seeds"]) == ("baseline", 3, "0, 1, 2")
    assert (row["test error % mean"], row["sd"], row["min"], row["max"]) == (4.0, 1.0, 3.0, 5.0)
    assert row["per seed"] == "0: 3.00, 1: 4.00, 2: 5.00" and row["status"] == "completed"
    assert row["final val error % mean"] == 2.0
    assert row["records"] == ", ".join(f"ablation_baseline_seed{s}" for s in range(3))


def test_missing_seeds_are_shown_with_the_seeds_they_have():
    records = {**cell("baseline", [0.03, None, 0.05]), **cell("decay_0.5", [0.6])}
    coverage = ablations.seed_coverage(records, (0, 1, 2))
    assert coverage["baseline"] == [0, 2] and coverage["decay_0.5"] == [0]
    assert coverage["decay_1.0"] == []
    text = tricks.coverage_summary(records, (0, 1, 2))
    assert "0 of 14 cells have all of them" in text
    assert "baseline (n = 2: seeds 0, 2)" in text and "λ = 0.5 (n = 1: seed 0)" in text
    assert "not run: LN off" in text
    summary = tricks.group_summary(records, "decay")
    assert "n = 2; seeds 0, 2: 3.00%, 5.00%" in summary
    assert "λ = 1.0: not run" in summary
    assert "only one seed of λ = 0.5" in summary  # ratio rule, and it says so
    table = tricks.ablation_table(records).set_index("setting")
    assert table.loc["λ = 1.0", "n"] == 0 and table.loc["λ = 1.0", "status"] == "not run"
    assert table.loc["baseline", "seeds"] == "0, 2"
    full = {**cell("baseline", [0.03, 0.04, 0.05])}
    assert "1 of 14 cells have all of them" in tricks.coverage_summary(full, (0, 1, 2))


def test_a_diverged_seed_is_named_not_averaged():
    records = {**cell("baseline", [0.03, 0.04, 0.05]),
               **cell("layer_norm_off", [0.60, 0.62]),
               "ablation_layer_norm_off_seed2": fake(None, **DIVERGED)}
    stats = ablations.cell_stats(records, "layer_norm_off")
    assert stats["n"] == 2 and stats["seeds"] == [0, 1, 2]
    assert stats["mean"] == pytest.approx(0.61)
    assert stats["failed"] == {2: "diverged at update 23"}
    assert tricks.stats_text(stats).endswith(
        "; seed 2 diverged at update 23, not averaged in)")
    assert ablations.cell_status(records, "layer_norm_off") == (
        "completed (seeds 0, 1); diverged at update 23 (seed 2)")
    assert ablations.cell_status(records, "baseline") == "completed"
    assert ablations.cell_status(records, "decay_0.5") is None
    verdict = tricks.layer_norm_verdict(records)
    assert "seed 2 diverged at update 23, seed 0 finished at 60.00%" in verdict
    assert "diverged or ended far above the baseline" in verdict
    assert "blow up or do not learn" in verdict
    only_diverged = {**cell("baseline", [0.03]),
                     "ablation_layer_norm_off_seed0": fake(None, **DIVERGED)}
    stats = ablations.cell_stats(only_diverged, "layer_norm_off")
    assert tricks.stats_text(stats) == "diverged at update 23 (seed 0)"
    assert "Every seed without layer norm diverged: " in (
        tricks.layer_norm_verdict(only_diverged))
    row = tricks.ablation_table(records).set_index("setting").loc["LN off"]
    assert row["n"] == 2 and row["seeds"] == "0, 1, 2" and "diverged" in row["status"]
    fig = tricks.plot_ablation_bars(records)
    labels = [label.get_text() for label in fig.axes[0].get_yticklabels()]
    assert "LN off (n = 2, seed 2 diverged)" in labels and "baseline (n = 3)" in labels


def test_overlap_wording():
    base = cell("baseline", [0.03, 0.04, 0.05])
    close = {**base, **cell("clipping_off", [0.045, 0.06, 0.07])}
    comparison = ablations.compare_cells(close, "clipping_off")
    assert comparison["kind"] == "overlap" and comparison["rule"] == "ranges"
    text = tricks.group_summary(close, "clipping")
    assert ("but the seed ranges overlap (4.50%–7.00% against 3.00%–5.00%, n = 3 and 3): "
            "not told apart") in text
    assert ("Lowest mean in this group: clip at 5 (baseline), not told apart from "
            "no clipping") in text
    apart = {**base, **cell("clipping_off", [0.10, 0.12, 0.11])}
    comparison = ablations.compare_cells(apart, "clipping_off")
    assert comparison["kind"] == "higher" and comparison["ratio"] == pytest.approx(2.75)
    text = tricks.group_summary(apart, "clipping")
    assert ("2.8× the baseline's mean, higher on every seed (10.00%–12.00% against "
            "3.00%–5.00%)") in text
    assert "below every other setting on every seed" in text
    below = {**base, **cell("lr_3e-4", [0.01, 0.02])}
    assert ablations.compare_cells(below, "lr_3e-4")["kind"] == "lower"
    assert "Lowest in this group: lr = 3e-4" in tricks.group_summary(below, "lr")


def test_single_seed_wording():
    records = {**cell("baseline", [0.030]), **cell("decay_1.0", [0.033]),
               **cell("decay_0.5", [0.6])}
    text = tricks.group_summary(records, "decay")
    assert ("λ = 1.0: 3.30% (n = 1, seed 0), 1.1× the baseline's error, a tie by the 1.25× "
            "rule, one seed per cell") in text
    assert ("λ = 0.5: 60.00% (n = 1, seed 0), 20.0× the baseline's error, one seed per "
            "cell") in text
    assert "not told apart from λ = 1.0" in text
    mixed = {**cell("baseline", [0.03, 0.04, 0.05]), **cell("decay_1.0", [0.045])}
    comparison = ablations.compare_cells(mixed, "decay_1.0")
    assert comparison["rule"] == "one seed" and comparison["kind"] == "tie"
    assert comparison["text"].endswith("a tie by the 1.25× rule, only one seed of λ = 1.0")
    assert ablations.compare_cells(mixed, "decay_0.5")["kind"] is None  # not run


def test_verdict_over_seeds():
    base = cell("baseline", [0.03, 0.04, 0.05])
    strong = tricks.eta_zero_verdict({**base, **cell("fast_lr_0", [0.60, 0.66, 0.63])})
    assert "Every η = 0 seed ends above every η = 0.5 seed (60.00%–66.00% against " in strong
    assert "multiplies the mean error by 15.8" in strong and "memory's contribution" in strong
    unclear = tricks.eta_zero_verdict({**base, **cell("fast_lr_0", [0.045, 0.06])})
    assert "cannot be told apart" in unclear and "memory's contribution" not in unclear
    depth = {**base, **cell("fast_lr_0", [0.6, 0.6]), **cell("inner_steps_2", [0.6, 0.61]),
             **cell("inner_steps_3", [0.02, 0.06])}
    text = tricks.eta_zero_verdict(depth)
    assert "not all on one side of S = 1" in text and "S = 3: " in text
    ties = {**depth, **cell("inner_steps_2", [0.05, 0.06]), **cell("inner_steps_3", [0.04, 0.045])}
    assert "No deeper model is told apart from S = 1" in tricks.eta_zero_verdict(ties)
    depth.update(cell("inner_steps_3", [0.6, 0.62]))
    assert "higher error than S = 1, on every seed" in tricks.eta_zero_verdict(depth)


def test_value_only_error():
    assert value_only_error(num_pairs=1) == 0.0  # one pair: its value is the answer
    # two pairs over two digits: (0,0) (1,1) always right, (0,1) (1,0) right half the time
    assert value_only_error(num_pairs=2, num_values=2) == pytest.approx(0.25)
    # against the data itself: a reader answering the most frequent value of each sequence
    split = associative_retrieval(20_000, generator=torch.Generator().manual_seed(0))
    values = split.inputs[:, 1:2 * PAPER_NUM_PAIRS:2]  # (N, K) value tokens
    answers = values.mode(dim=1).values  # (N,) a most frequent value (ties: the smallest)
    measured = float((answers != split.targets).float().mean())
    assert value_only_error() == pytest.approx(measured, abs=0.01)  # 20,000 draws: sd 0.3%


def test_stall_over_seeds():
    level = value_only_error()
    flat = [0.9, 0.7] + [level + 0.005] * 4  # second half (updates > 1500) at the level
    learnt = [0.9, 0.6, 0.3, 0.1, 0.05, 0.03]
    records = {**cell("baseline", [0.03, 0.03], curve=learnt),
               **cell("inner_steps_2", [0.62, 0.62], curve=flat),
               **cell("inner_steps_3", [0.62], curve=flat),
               "ablation_inner_steps_3_seed1": fake(0.03, curve=learnt),
               **cell("decay_0.5", [0.62], curve=flat)}
    stalled = ablations.stalled_runs(records)
    assert set(stalled) == {"ablation_inner_steps_2_seed0", "ablation_inner_steps_2_seed1",
                            "ablation_inner_steps_3_seed0", "ablation_decay_0.5_seed0"}
    assert stalled["ablation_decay_0.5_seed0"]["from_step"] == 2000
    text = tricks.stall_summary(records)
    assert "S = 2: 2 of 2" in text and "S = 3: 1 of 2" in text
    assert "The stall does not hold for every seed: S = 3 seed 1 left that level" in text
    assert "Other runs of the grid at the same level: λ = 0.5 (seed 0)" in text
    assert f"{level:.2%} is the error of a reader that ignores the query" in text
    del records["ablation_inner_steps_3_seed1"]
    assert "All 3 finished runs of S = 2 and S = 3 stall there" in (
        tricks.stall_summary(records))


def test_clipping_summary_over_seeds():
    records = {"ablation_baseline_seed0": fake(0.03, curve=[0.5] * 4, grad=[6, 6, 1, 1]),
               "ablation_baseline_seed1": fake(0.03, curve=[0.5] * 4, grad=[6, 1, 1, 1])}
    text = tricks.clipping_summary(records)
    assert ("seed 0: 2 of 4 intervals (the last ending at update 1,000 of 2,000); "
            "seed 1: 1 of 4 intervals (the last ending at update 500 of 2,000)") in text
    assert "first half of training" in text
    calm = {"ablation_baseline_seed0": fake(0.03, curve=[0.5] * 2, grad=[1, 1])}
    assert tricks.clipping_summary(calm) == (
        "In the baseline (seed 0) the interval-mean gradient norm never exceeds the threshold (5).")
    assert "No run of no clipping" in tricks.clipping_summary(calm, "clipping_off")


def test_figures_over_seeds():
    curve = [0.6, 0.3, 0.1, 0.05]
    records = {**cell("baseline", [0.03, 0.04, 0.05], curve=curve),
               **cell("layer_norm_off", [0.6], curve=[0.6] * 4),
               "ablation_layer_norm_off_seed1": fake(None, **DIVERGED)}
    curves = tricks.plot_ablation_curves(records, groups=("layer_norm",), ncols=1)
    ax = curves.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "LN on (baseline) (n = 3)" in labels and "LN off (n = 1)" in labels
    assert "LN off, seed 1: diverged at update 23" in labels
    widths = sorted({line.get_linewidth() for line in ax.get_lines()})
    assert widths[0] < 1 < widths[-1]  # thin lines for seeds, a thick one for the mean
    bars = tricks.plot_ablation_bars(records)
    dots = [line for line in bars.axes[0].get_lines() if line.get_marker() == "o"]
    assert sum(len(line.get_xdata()) for line in dots) == 4  # every finished seed a dot
    assert isinstance(tricks.plot_grad_norms(records), Figure)


def test_load_several_seeds(smoke_records, tmp_path):
    records, _ = smoke_records
    configs = ablations.ablation_configs("smoke", seeds=(0, 1, 2))
    for name in ("ablation_baseline_seed0", "ablation_baseline_seed2"):
        record = dict(records["ablation_baseline_seed0"], name=name)
        record["config"] = configs[name].to_dict()
        record["config_hash"] = config_hash(record["config"])
        write_record(tmp_path / f"{name}.json", record)
    found = ablations.load_ablation_records("smoke", tmp_path, seeds=(0, 1, 2))
    assert list(found) == ["ablation_baseline_seed0", "ablation_baseline_seed2"]
    assert ablations.seed_coverage(found, (0, 1, 2))["baseline"] == [0, 2]


def test_building_a_grid_imports_no_plotting_library():
    import subprocess
    import sys

    code = ("import sys, fwbook.experiments.ablations, fwbook.experiments.attention_runs\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'seaborn'}))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert shown == "[]"
