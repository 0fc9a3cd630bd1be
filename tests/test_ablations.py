"""The chapter-04 ablation grid: names, cells, budgets, the η = 0 identity, figures, prose."""

from __future__ import annotations

import json

import matplotlib
import pytest

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from fwbook import ablations  # noqa: E402
from fwbook.experiments import PROFILES  # noqa: E402
from fwbook.models import build_model  # noqa: E402
from fwbook.records import config_hash, write_record  # noqa: E402
from fwbook.sweep import run_sweep  # noqa: E402
from fwbook.train import TrainConfig  # noqa: E402


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
    with pytest.raises(ValueError):
        ablations.ablation_configs("huge")
    with pytest.raises(ValueError):
        ablations.ablation_configs("smoke", seeds=(-1,))
    with pytest.raises(ValueError):
        ablations.ablation_configs("smoke", seeds=())
    with pytest.raises(ValueError):
        ablations.parse_name("baseline_seed0")
    assert ablations.parse_name("ablation_decay_0.5_seed3") == ("decay_0.5", 3)


def test_eta_zero_is_an_ln_irnn():
    assert ablations.eta_zero_equals_ln_irnn(hidden=8, inner_steps=3) < 1e-6


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
    for fig in (ablations.plot_ablation_curves(records),
                ablations.plot_ablation_curves(records, groups=("fast_lr",), log=False),
                ablations.plot_ablation_bars(records), ablations.plot_grad_norms(records)):
        assert isinstance(fig, Figure)
    table = ablations.ablation_table(records)
    assert len(table) == 3 and set(table["status"]) <= {"completed", "diverged"}
    text = ablations.group_summary(records, "fast_lr")
    assert "η = 0 (memory off)" in text and "not run" in text  # η = 0.1, 1.0 not run here
    verdict = ablations.eta_zero_verdict(records)
    base = records["ablation_baseline_seed0"]["test_error"]
    assert f"{base:.2%}" in verdict
    assert "needs both" in ablations.eta_zero_verdict({})


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

    strong = ablations.eta_zero_verdict({"ablation_baseline_seed0": fake(0.01),
                                         "ablation_fast_lr_0_seed0": fake(0.10)})
    assert "10.0" in strong and "memory's contribution" in strong
    none = ablations.eta_zero_verdict({"ablation_baseline_seed0": fake(0.05),
                                       "ablation_fast_lr_0_seed0": fake(0.04)})
    assert "does not hurt" in none


def test_committed_paper_records_match_the_grid():
    """Every record committed in results/ablations/ belongs to the current paper grid."""
    directory = ablations.RESULTS_DIR
    if not directory.exists():
        pytest.skip("no committed ablation records")
    configs = ablations.ablation_configs("paper")
    for path in directory.glob("ablation_*.json"):
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
    assert "did not help" in ablations.eta_zero_verdict(records)
    records.update(ablation_inner_steps_2_seed0=fake(0.01), ablation_inner_steps_3_seed0=fake(0.01))
    assert "did lower" in ablations.eta_zero_verdict(records)
