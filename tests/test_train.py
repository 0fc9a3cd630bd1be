"""Training: determinism, run records, resuming, divergence."""

import json

import pytest
import torch

from fwbook.experiments.grids import retrieval_config
from fwbook.core.models import ModelConfig
from fwbook.core.records import load_records, read_record
from fwbook.experiments.stats import aggregate
from fwbook.core.train import TrainConfig, load_checkpoint, resolve_device, train

REQUIRED_FIELDS = {"model", "hidden", "seed", "profile", "test_error", "config", "commit",
                   "device", "wall_s", "versions", "curves", "status", "config_hash"}


def _smoke(**overrides):
    return retrieval_config(profile="smoke", **overrides)


def test_record_has_full_provenance(tmp_path):
    record = train(_smoke(), output=tmp_path / "run.json", quiet=True, profile="smoke")
    on_disk = read_record(tmp_path / "run.json")
    assert REQUIRED_FIELDS <= set(on_disk)
    assert on_disk["status"] == "completed" and 0 <= on_disk["test_error"] <= 1
    assert on_disk["config"]["model"]["model"] == "fast_weights"
    assert on_disk["versions"]["torch"].startswith("2.13")
    assert on_disk["device"]["type"] == "cpu"
    curves = on_disk["curves"]
    assert curves["step"] == [20, 40, 60]
    assert len(curves["train_loss"]) == len(curves["val_error"]) == len(curves["grad_norm"]) == 3
    assert record["test_error"] == on_disk["test_error"]
    assert TrainConfig.from_dict(on_disk["config"]) == _smoke()


def test_same_config_and_seed_give_identical_curves():
    first = train(_smoke(), quiet=True)
    second = train(_smoke(), quiet=True)
    assert first["curves"] == second["curves"]
    assert first["test_error"] == second["test_error"]
    other = train(_smoke(seed=1), quiet=True)
    assert other["curves"]["train_loss"] != first["curves"]["train_loss"]


def test_training_learns_the_task():
    """A short run beats chance (90% error for a uniform guess over 10 digits) clearly."""
    config = _smoke(steps=300, eval_every=100, num_train=20_000, lr=3e-3)
    record = train(config, quiet=True)
    assert record["curves"]["train_loss"][-1] < record["curves"]["train_loss"][0]
    assert record["final_val_error"] < 0.75


def test_interrupted_and_resumed_run_ends_with_the_same_record(tmp_path):
    config = _smoke(steps=80, eval_every=20)
    straight = train(config, quiet=True)
    checkpoint = tmp_path / "run.ckpt.pt"
    assert train(config, checkpoint=checkpoint, quiet=True, stop_after=40) is None
    assert checkpoint.exists()
    resumed = train(config, checkpoint=checkpoint, quiet=True)
    assert resumed["curves"] == straight["curves"]
    assert resumed["test_error"] == straight["test_error"]
    assert not checkpoint.exists()  # removed once the record is written


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path):
    broken = tmp_path / "broken.ckpt.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is corrupt or unreadable.*is kept for inspection"):
        load_checkpoint(broken, _smoke())
    checkpoint = tmp_path / "run.ckpt.pt"
    train(_smoke(), checkpoint=checkpoint, quiet=True, stop_after=20)
    with pytest.raises(ValueError, match="belongs to a different configuration"):
        load_checkpoint(checkpoint, _smoke(lr=5e-4))


def test_divergence_stops_with_step_and_last_finite_loss(tmp_path):
    config = _smoke(model="irnn", lr=1e20, clip_norm=None)
    record = train(config, output=tmp_path / "run.json", quiet=True)
    assert record["status"] == "diverged"
    assert record["test_error"] is None
    assert "training diverged at update 2" in record["message"]
    assert "last finite loss 3.5" in record["message"]
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "diverged"


def test_bad_training_config_is_explained():
    with pytest.raises(ValueError, match="lr must be a positive number"):
        _smoke(lr=0.0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        _smoke(batch_size=0)
    with pytest.raises(ValueError, match="profile must be one of smoke, quick, paper"):
        retrieval_config(profile="huge")


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")


def test_records_aggregate_over_seeds(tmp_path):
    for seed in (0, 1):
        train(_smoke(seed=seed), output=tmp_path / f"fw_{seed}.json", quiet=True, profile="smoke")
    records = load_records(tmp_path, profile="smoke")
    rows = aggregate(records)
    assert len(rows) == 1 and rows[0]["n"] == 2
    errors = [r["test_error"] for r in records]
    assert rows[0]["mean"] == pytest.approx(sum(errors) / 2)
    assert len(rows[0]["paths"]) == 2
    assert rows[0]["std"] == pytest.approx(abs(errors[0] - errors[1]) / 2 ** 0.5)  # ddof = 1


def test_on_evaluation_sees_every_pass_and_can_stop_the_run():
    config = _smoke(steps=80, eval_every=20)
    full = train(config, quiet=True)
    seen = []

    def stop_at_40(point):
        seen.append(point)
        return point.step >= 40

    record, model = train(config, quiet=True, on_evaluation=stop_at_40, return_model=True)
    assert [point.step for point in seen] == [20, 40]
    assert [point.val_error for point in seen] == full["curves"]["val_error"][:2]
    assert [point.train_loss for point in seen] == full["curves"]["train_loss"][:2]
    assert 0 < seen[0].elapsed_s <= seen[1].elapsed_s and seen[1].model is model
    assert record["stopped_by"] == "on_evaluation" and record["steps_done"] == 40
    assert record["curves"]["step"] == [20, 40] and record["status"] == "completed"
    assert record["test_error"] is not None  # read once, after the stop
    assert "stopped_by" not in full and full["steps_done"] == 80
    never = train(config, quiet=True, on_evaluation=lambda point: False)
    assert never["curves"] == full["curves"] and "stopped_by" not in never


def test_time_to_accuracy_is_a_train_run_stopped_at_the_last_threshold():
    from fwbook.perf.bench import time_to_accuracy

    result = time_to_accuracy(8, (0.99, 0.0), max_updates=30, eval_every=10, batch_size=32,
                              step="eager", num_validation=200)
    assert result["step"] == "eager" and result["compile_s"] is None
    assert result["curve"]["step"] == [10, 20, 30]  # 0% error is not reached: runs to the cap
    assert result["thresholds"][1] == {"val_error": 0.0, "updates": None, "wall_s": None}
    assert result["thresholds"][0]["updates"] == 10  # 99% error: reached at the first pass
    config = TrainConfig(model=ModelConfig(model="fast_weights", hidden=8), num_pairs=4,
                         num_train=100_000, num_validation=200, num_test=1, batch_size=32,
                         steps=30, eval_every=10, lr=1e-3)
    assert train(config, quiet=True, step="eager")["curves"]["val_error"] == \
        result["curve"]["val_error"]
    stopped = time_to_accuracy(8, (0.99,), max_updates=30, eval_every=10, batch_size=32,
                               step="eager", num_validation=200)
    assert stopped["curve"]["step"] == [10]  # the last threshold reached: the run stops
