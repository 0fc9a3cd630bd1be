"""Sweeps: records per run, never redone, mismatches refused, half-done runs resumed; the CLI."""

import json
import os
import subprocess
import sys

import pytest
import torch

from fwbook.experiments import sweep as sweep_module
from fwbook.experiments.grids import (PAPER_RECIPE, PROFILE_SETTINGS, TABLE1_HIDDEN, TABLE1_MODELS,
                                retrieval_config, table1_configs)
from fwbook.core.records import read_record
from fwbook.experiments.sweep import (SweepConfigMismatch, checkpoint_path, run_sweep, sweep_status)
from fwbook.core.train import train


torch.set_num_threads(1)  # the machine is shared; one thread is also faster for tiny models


def tiny(model="fast_weights", seed=0, **overrides):
    settings = dict(num_train=500, num_validation=100, num_test=100, steps=20, eval_every=10)
    return retrieval_config(model, 8, "smoke", seed, **{**settings, **overrides})


def fwbook(*args, timeout=120):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "fwbook", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_sweep_writes_one_record_per_run_and_never_redoes_one(tmp_path, monkeypatch):
    configs = {"fw": tiny(), "irnn": tiny("irnn")}
    records = run_sweep(configs, tmp_path, workers=1, profile="smoke", quiet=True)
    assert [r["name"] for r in records] == ["fw", "irnn"]
    for name, record in zip(configs, records):
        on_disk = read_record(tmp_path / f"{name}.json")
        assert on_disk["test_error"] == record["test_error"]
        for field in ("model", "hidden", "seed", "profile", "test_error", "config", "commit",
                      "device", "wall_s", "config_hash"):
            assert field in on_disk
        assert on_disk["profile"] == "smoke"

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(sweep_module, "train", must_not_train)
    again = run_sweep(configs, tmp_path, workers=1, quiet=True)
    assert [r["test_error"] for r in again] == [r["test_error"] for r in records]
    assert sweep_status(configs, tmp_path) == {"done": ["fw", "irnn"], "todo": [],
                                               "wall_s": pytest.approx(sum(r["wall_s"] for r in records))}


def test_a_record_with_another_config_is_an_error_not_reused(tmp_path):
    run_sweep({"fw": tiny()}, tmp_path, workers=1, quiet=True)
    before = (tmp_path / "fw.json").read_text()
    with pytest.raises(SweepConfigMismatch, match=r"fw\.json holds run 'fw' with another "
                                                  r"configuration.*lr: 0\.001 -> 0\.0003"):
        run_sweep({"fw": tiny(lr=3e-4)}, tmp_path, workers=1, quiet=True)
    assert (tmp_path / "fw.json").read_text() == before


def test_a_half_done_run_resumes_from_its_checkpoint(tmp_path):
    config = tiny(steps=40)
    reference = train(config, quiet=True)
    checkpoints = tmp_path / "ckpt"
    # Interrupt the run half way, as a killed sweep would leave it.
    assert train(config, checkpoint=checkpoint_path(checkpoints, "fw", config), quiet=True,
                 stop_after=20) is None
    assert checkpoint_path(checkpoints, "fw", config).exists()
    [record] = run_sweep({"fw": config}, tmp_path, workers=1, quiet=True,
                         checkpoint_dir=checkpoints)
    assert record["curves"]["val_error"] == reference["curves"]["val_error"]
    assert record["test_error"] == reference["test_error"]
    assert not checkpoint_path(checkpoints, "fw", config).exists()


def test_parallel_workers_give_the_same_records_as_one(tmp_path):
    configs = {"a": tiny(seed=0), "b": tiny(seed=1)}
    serial = run_sweep(configs, tmp_path / "serial", workers=1, quiet=True)
    parallel = run_sweep(configs, tmp_path / "parallel", workers=2, quiet=True)
    assert [r["test_error"] for r in serial] == [r["test_error"] for r in parallel]
    assert [r["curves"]["val_loss"] for r in serial] == [r["curves"]["val_loss"] for r in parallel]


def test_bad_run_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="run name"):
        run_sweep({"../escape": tiny()}, tmp_path, workers=1, quiet=True)


def test_table1_grid_covers_every_cell_and_puts_the_key_cell_first():
    configs = table1_configs("paper")
    names = list(configs)
    assert names[:3] == [f"fast_weights_R20_seed{s}" for s in range(3)]
    for model in TABLE1_MODELS:
        for r in TABLE1_HIDDEN:
            for s in range(3):
                assert f"{model}_R{r}_seed{s}" in configs
    # Figure 2 (R = 50, one seed per model) comes before the R = 100 runs.
    first_r100 = min(i for i, n in enumerate(names) if "_R100_" in n)
    assert all(names.index(f"{m}_R50_seed0") < first_r100 for m in TABLE1_MODELS)
    fw = configs["fast_weights_R20_seed0"]
    paper = configs["paper_recipe_fast_weights_R20_seed0"]
    assert fw.lr == PROFILE_SETTINGS["paper"]["lr"] and fw.steps == PROFILE_SETTINGS["paper"]["steps"]
    assert paper.lr == PAPER_RECIPE["lr"] == 1e-4 and paper.steps == fw.steps
    assert paper.batch_size == fw.batch_size == 128
    assert len(set(names)) == len(names)


def test_cli_status_and_usage_errors(tmp_path):
    result = fwbook("sweep", "table1", "--profile", "smoke", "--seeds", "0", "--status",
                    "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "0 of" in result.stdout and "todo  fast_weights_R20_seed0" in result.stdout
    bad = fwbook("sweep", "table1", "--only", "nonsense", "--directory", str(tmp_path))
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "not in the table1 grid" in bad.stderr


def test_cli_trains_only_and_refuses_a_mismatched_record(tmp_path):
    args = ["sweep", "table1", "--profile", "smoke", "--seeds", "0", "--directory", str(tmp_path),
            "--workers", "1", "--quiet"]
    result = fwbook(*args, "--only", "irnn_R20_seed0")
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "irnn_R20_seed0.json").read_text())
    assert record["profile"] == "smoke" and record["name"] == "irnn_R20_seed0"
    record["config"]["lr"] = 0.5
    record["config_hash"] = "0" * 16
    (tmp_path / "irnn_R20_seed0.json").write_text(json.dumps(record))
    bad = fwbook(*args, "--status")
    assert bad.returncode == 2 and "another configuration" in bad.stderr


def test_git_commit_record_commits_that_file_alone(tmp_path):
    from fwbook.experiments.sweep import git_commit_record

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True,
                              check=True).stdout

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "other.txt").write_text("someone else's work\n")
    git("add", "other.txt")  # staged by another engineer: must not be swept into the commit
    record = tmp_path / "results" / "run.json"
    record.parent.mkdir()
    record.write_text("{}\n")
    assert git_commit_record(record, "results: run", root=tmp_path)
    assert git("show", "--name-only", "--format=", "HEAD").split() == ["results/run.json"]
    assert "other.txt" in git("diff", "--cached", "--name-only")


def test_cli_rewrites_the_readme_block_without_training(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table1:start -->\nstale\n<!-- table1:end -->\noutro\n")
    records = tmp_path / "records"
    records.mkdir()
    committed = sweep_module.REPO_ROOT / "results" / "table1" / "fast_weights_R20_seed0.json"
    (records / committed.name).write_bytes(committed.read_bytes())
    result = fwbook("sweep", "table1", "--no-train", "--readme", str(readme), "--directory",
                    str(records))
    assert result.returncode == 0, result.stderr
    text = readme.read_text()
    assert "stale" not in text and "not run yet" in text and "fast_weights_R20_seed0" in text
    assert text.startswith("intro\n") and text.endswith("outro\n")
    bad = fwbook("sweep", "ablations", "--readme", str(readme))
    assert bad.returncode == 2 and "--readme only applies to the table1 grid" in bad.stderr


def test_a_run_locked_by_a_live_process_is_not_trained_twice(tmp_path):
    from fwbook.experiments.sweep import SweepFailed, default_checkpoint_dir

    config = tiny()
    checkpoints = tmp_path / "ckpt"
    lock = checkpoint_path(checkpoints, "fw", config).with_name(
        checkpoint_path(checkpoints, "fw", config).name + ".lock")
    lock.parent.mkdir(parents=True)
    lock.write_text(str(os.getppid()))  # a live process that is not us
    with pytest.raises(SweepFailed, match="is training this run"):
        run_sweep({"fw": config}, tmp_path, workers=1, quiet=True, checkpoint_dir=checkpoints)
    assert not (tmp_path / "fw.json").exists()
    lock.write_text("999999999")  # a dead process: its lock is taken over
    [record] = run_sweep({"fw": config}, tmp_path, workers=1, quiet=True,
                         checkpoint_dir=checkpoints)
    assert record["status"] == "completed" and not lock.exists()
    assert default_checkpoint_dir(tmp_path) == tmp_path.resolve() / ".checkpoints"
