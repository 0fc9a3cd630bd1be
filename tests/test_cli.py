"""The command line, used as a reader would: through ``python -m fwbook`` in a subprocess."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

SMOKE = ["--steps", "40", "--eval-every", "20", "--train-size", "1000"]


def fwbook(*args, timeout=300):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "fwbook", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


SUBCOMMANDS = ["train", "bench", "sweep", "book", "catch", "attention"]


@pytest.mark.parametrize("command", [[]] + [[name] for name in SUBCOMMANDS])
def test_help(command):
    result = fwbook(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: {' '.join(['fwbook', *command])} [-h]")
    if not command:  # every subcommand is listed
        listed = re.findall(r"^    (\w+)\s", result.stdout, re.M)
        assert listed == SUBCOMMANDS, result.stdout


def test_an_unknown_command_is_one_line_naming_every_command():
    result = fwbook("trian")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fwbook: error: argument COMMAND: invalid choice: 'trian'")
    assert all(repr(name) in lines[0] for name in SUBCOMMANDS), lines[0]


@pytest.mark.parametrize("args, message", [
    (["--hidden", "-3"], "argument --hidden: must be a positive integer, got -3"),
    (["--model", "gru"], "argument --model: invalid choice: 'gru'"),
    (["--lr", "0"], "argument --lr: must be a positive number, got 0"),
    (["--lr=-1e-3"], "argument --lr: must be a positive number, got -1e-3"),
    (["--decay", "2"], "argument --decay: must lie in [0, 1], got 2"),
    (["--pairs", "30"], "num_pairs (K) must be from 1 to 26"),
    (["--device", "tpu"], "device must be 'auto', 'cpu' or 'cuda[:N]'"),
    (["--threads", "0"], "argument --threads: must be a positive integer, got 0"),
])
def test_bad_values_print_one_line_and_exit_2(tmp_path, args, message):
    output = tmp_path / "run.json"
    result = fwbook("train", *args, "--output", str(output))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fwbook train: error:")
    assert message in lines[0]
    assert not output.exists()


def test_unwritable_output_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = fwbook("train", "--output", str(blocker / "run.json"))
    assert result.returncode == 2
    assert "is not writable" in result.stderr and result.stderr.count("\n") == 1


def test_corrupt_checkpoint_is_refused(tmp_path):
    output = tmp_path / "run.json"
    checkpoint = tmp_path / "run.json.ckpt.pt"
    checkpoint.write_bytes(b"\x00garbage")
    result = fwbook("train", *SMOKE, "--output", str(output))
    assert result.returncode == 2
    assert "checkpoint" in result.stderr and "is corrupt or unreadable" in result.stderr
    assert result.stderr.count("\n") == 1 and not output.exists()


def test_train_writes_a_record(tmp_path):
    output = tmp_path / "out" / "run.json"
    result = fwbook("train", *SMOKE, "--quiet", "--output", str(output), "--seed", "3",
                    "--fast-lr", "0.25", "--inner-steps", "2", "--pairs", "3", "--clip", "0",
                    "--layer-norm", "off", "--batch", "64", "--threads", "2")
    assert result.returncode == 0, result.stderr
    assert "test error" in result.stdout
    record = json.loads(output.read_text())
    config = record["config"]
    assert record["seed"] == 3 and config["steps"] == 40 and config["eval_every"] == 20
    assert (config["num_pairs"], config["clip_norm"], config["batch_size"]) == (3, None, 64)
    assert config["num_train"] == 1000 and config["lr"] == 1e-3  # the TrainConfig default
    assert config["model"]["fast_lr"] == 0.25 and config["model"]["inner_steps"] == 2
    assert config["model"]["layer_norm"] is False and config["model"]["decay"] == 0.95
    assert record["device"]["torch_threads"] == 2  # --threads, recorded


def test_killed_run_resumes_to_the_same_record(tmp_path):
    args = ["--steps", "200", "--eval-every", "50", "--train-size", "2000", "--quiet"]
    reference = tmp_path / "reference.json"
    assert fwbook("train", *args, "--output", str(reference)).returncode == 0
    output = tmp_path / "run.json"
    checkpoint = tmp_path / "run.json.ckpt.pt"
    process = subprocess.Popen([sys.executable, "-m", "fwbook", "train", *args, "--output",
                                str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if output.exists():
        pytest.skip("the run finished before it could be killed")
    assert checkpoint.exists()
    result = fwbook("train", *args, "--output", str(output))
    assert result.returncode == 0 and "resuming from" in result.stderr
    first, second = json.loads(reference.read_text()), json.loads(output.read_text())
    assert first["device"]["torch_threads"] == second["device"]["torch_threads"] == 1  # default
    assert first["curves"] == second["curves"]
    assert first["test_error"] == second["test_error"]


def test_diverging_run_reports_without_traceback(tmp_path):
    output = tmp_path / "run.json"
    result = fwbook("train", *SMOKE, "--model", "irnn", "--lr", "1e20", "--clip", "0", "--quiet",
                    "--output", str(output))
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "training diverged at update" in result.stderr and "last finite loss" in result.stderr
    assert json.loads(output.read_text())["status"] == "diverged"


def test_bench_json(tmp_path):
    output = tmp_path / "bench.json"
    result = fwbook("bench", "--hidden", "8", "--repeats", "2", "--steps", "2", "--threads", "1",
                    "--json", str(output))
    assert result.returncode == 0, result.stderr
    assert "Eq. 4 / explicit" in result.stdout
    assert "torch threads: 1 (asked for (--threads))" in result.stdout
    rows = json.loads(output.read_text())
    assert {(r["model"], r["memory"]) for r in rows} == {
        ("fast_weights", "efficient"), ("fast_weights", "explicit"), ("lstm", "-")}
    assert all(r["seq_per_s_min"] <= r["seq_per_s"] <= r["seq_per_s_max"] and r["seq_per_s"] > 0
               for r in rows)
    for row in rows:  # what the screen showed
        assert f"{row['seq_per_s']:>9,.0f}" in result.stdout


def test_bench_json_writes_the_suite_that_ran(tmp_path):
    output = tmp_path / "speedup.json"
    result = fwbook("bench", "--suite", "speedup", "--quick", "--repeats", "1", "--threads", "1",
                    "--json", str(output))
    assert result.returncode == 0, result.stderr
    rows = json.loads(output.read_text())
    assert [r["path"] for r in rows] == ["reference", "eager", "fused", "fused_bmm",
                                         "batched_seeds"]
    assert f"rows written to {output}" in result.stdout


def test_bench_json_unwritable_is_a_usage_error(tmp_path):
    result = fwbook("bench", "--json", str(tmp_path))
    assert result.returncode == 2
    assert "is a directory" in result.stderr and "Traceback" not in result.stderr
