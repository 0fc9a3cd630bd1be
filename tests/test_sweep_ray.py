"""`fwbook sweep --backend ray`: the local backend's records and semantics, on a real Ray.

The tests start a Ray head on 127.0.0.1 themselves (`ray start --head`, an explicit free
port, 2 CPUs, no dashboard, no usage statistics, token authentication with a token of their
own) and stop it afterwards, by its process group. Runs are smoke-sized.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fwbook.experiments.grids import retrieval_config
from fwbook.experiments.sweep import SweepConfigMismatch, checkpoint_path, default_checkpoint_dir

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_AUTH_MODE": "token"}
RECORD_FIELDS = ("name", "config_hash", "config", "curves", "test_error", "final_val_error",
                 "status", "steps_done", "profile")
# what a run's step was and why; the measured seconds per update (step_s) and the timings behind
# an `auto` decision differ between any two runs, so they are not compared


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(**extra) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def fwbook(*args, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "fwbook", *args], capture_output=True,
                          text=True, timeout=timeout, env=env or environment())


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head on 127.0.0.1:<free port> with 2 CPUs; yields ``(address, env)``."""
    temp_dir = tempfile.mkdtemp(prefix="fwray")  # short: Ray's socket paths must stay short
    port = free_port()
    env = environment(**RAY_ENV, RAY_AUTH_TOKEN=secrets.token_hex(32))
    log = open(Path(temp_dir) / "head.log", "w")
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
         "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
         "--num-gpus", "0", "--include-dashboard=false", "--disable-usage-stats",
         "--object-store-memory", str(128 * 1024 ** 2), "--temp-dir", temp_dir,
         "--dashboard-agent-listen-port", str(free_port())],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in (Path(temp_dir) / "head.log").read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Ray head did not start:\n"
                            + (Path(temp_dir) / "head.log").read_text()[-3000:])
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", env
    finally:
        for sent in (signal.SIGTERM, signal.SIGKILL):  # the head and every process it started
            try:
                os.killpg(head.pid, sent)
            except ProcessLookupError:
                break
            try:
                head.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            time.sleep(1)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def sweep_args(directory, *only, profile="smoke"):
    return ["sweep", "table1", "--profile", profile, "--seeds", "0", "--directory",
            str(directory), "--only", *only]


def same_record(ray_record: dict, local_record: dict) -> None:
    for field in RECORD_FIELDS:
        assert ray_record[field] == local_record[field], field
    ray_step, local_step = ray_record["training_step"], local_record["training_step"]
    assert ray_step["path"] == local_step["path"]
    # a resumed run says its step was kept from the checkpoint, then why it was chosen
    assert local_step["reason"] in ray_step["reason"]


def test_ray_sweep_on_a_head_gives_the_local_backends_records(ray_head, tmp_path):
    address, env = ray_head
    runs = ("fast_weights_R20_seed0", "irnn_R20_seed0")
    local = fwbook(*sweep_args(tmp_path / "local", *runs), "--workers", "2")
    assert local.returncode == 0, local.stderr
    ray = fwbook(*sweep_args(tmp_path / "ray", *runs), "--backend", "ray", "--address", address,
                 env=env)
    assert ray.returncode == 0, ray.stdout + ray.stderr
    output = ray.stdout + ray.stderr
    assert f"Ray cluster at {address}: 1 node(s), 2 CPU(s)" in output
    for name in runs:
        assert f"{name}: test error" in output  # progress: one line per finished run
        ray_record = json.loads((tmp_path / "ray" / f"{name}.json").read_text())
        same_record(ray_record, json.loads((tmp_path / "local" / f"{name}.json").read_text()))
        assert ray_record["device"]["torch_threads"] == 1
    # Nothing written but whole records: no temporary files left beside them.
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == [".checkpoints"] + sorted(
        f"{name}.json" for name in runs)

    # A finished run is never redone: Ray is not even started, the records are untouched.
    before = {name: (tmp_path / "ray" / f"{name}.json").stat().st_mtime_ns for name in runs}
    again = fwbook(*sweep_args(tmp_path / "ray", *runs), "--backend", "ray", "--address",
                   address, env=env)
    assert again.returncode == 0, again.stderr
    assert "all 2 runs already have records" in again.stdout
    assert before == {name: (tmp_path / "ray" / f"{name}.json").stat().st_mtime_ns
                      for name in runs}


def test_a_run_held_by_a_live_process_is_not_started_on_ray(ray_head, tmp_path):
    from fwbook.experiments.grids import table1_configs

    address, env = ray_head
    held, free = "irnn_R20_seed0", "fast_weights_R20_seed0"
    checkpoint = checkpoint_path(default_checkpoint_dir(tmp_path), held,
                                 table1_configs("smoke", (0,))[held])
    lock = Path(f"{checkpoint}.lock")
    lock.parent.mkdir(parents=True)
    lock.write_text(str(os.getpid()))  # this test's process: live, and not the sweep's
    result = fwbook(*sweep_args(tmp_path, held, free), "--backend", "ray", "--address", address,
                    env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{held}: FAILED (RunLocked: process {os.getpid()} is training this run" \
        in result.stdout
    assert "1 of 2 runs failed" in result.stdout
    assert not (tmp_path / f"{held}.json").exists() and (tmp_path / f"{free}.json").exists()
    assert lock.read_text() == str(os.getpid())  # another's lock is left alone


def test_a_run_that_raises_is_reported_and_the_others_finish(ray_head, tmp_path):
    from fwbook.experiments.grids import table1_configs

    address, env = ray_head
    broken, fine = "irnn_R20_seed0", "fast_weights_R20_seed0"
    checkpoint = checkpoint_path(default_checkpoint_dir(tmp_path), broken,
                                 table1_configs("smoke", (0,))[broken])
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"not a checkpoint")
    result = fwbook(*sweep_args(tmp_path, broken, fine), "--backend", "ray", "--address",
                    address, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if f"{broken}: FAILED" in line]
    assert f"{broken}: FAILED (CheckpointDamaged: " in line and str(checkpoint) in line, line
    assert f"{fine}: test error" in result.stdout
    assert not (tmp_path / f"{broken}.json").exists() and (tmp_path / f"{fine}.json").exists()


def test_a_killed_ray_worker_fails_its_run_clearly_and_a_rerun_completes_it(ray_head, tmp_path):
    address, env = ray_head
    run = "alstm_R100_seed0"  # the slowest smoke run: 60 updates, a checkpoint every 20
    args = [*sweep_args(tmp_path, run), "--backend", "ray", "--address", address]
    driver = subprocess.Popen([sys.executable, "-m", "fwbook", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
    checkpoints = list((tmp_path / ".checkpoints").glob(f"{run}-*.ckpt.pt")) \
        if (tmp_path / ".checkpoints").exists() else []
    worker = None
    deadline = time.monotonic() + 180
    while worker is None and driver.poll() is None and time.monotonic() < deadline:
        checkpoints = list((tmp_path / ".checkpoints").glob(f"{run}-*.ckpt.pt")) \
            if (tmp_path / ".checkpoints").exists() else []
        if checkpoints:  # mid-run: past its first checkpoint
            worker = next((pid for pid, title in ray_processes() if title.startswith(
                "ray::train_task")), None)
        time.sleep(0.02)
    assert worker is not None, "the run's Ray worker was not seen mid-run"
    os.kill(worker, signal.SIGKILL)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 1, output
    assert (f"{run}: FAILED (the Ray worker training it died (WorkerCrashedError" in output), \
        output
    assert "1 of 1 runs failed" in output and "run the sweep again" in output
    assert not (tmp_path / f"{run}.json").exists()
    assert not list((tmp_path / ".checkpoints").glob("*.lock"))  # the driver let the run go

    rerun = fwbook(*args, env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    record = json.loads((tmp_path / f"{run}.json").read_text())
    assert record["status"] == "completed" and record["steps_done"] == 60
    local = fwbook(*sweep_args(tmp_path / "local", run), "--workers", "1", "--quiet")
    assert local.returncode == 0, local.stderr
    same_record(record, json.loads((tmp_path / "local" / f"{run}.json").read_text()))


def ray_processes():
    """(pid, process title) of every process whose title Ray set (``ray::...``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                continue
            if title.startswith("ray::"):
                found.append((int(entry.name), title))
    return found


def test_embedded_ray_sweep_needs_no_address(tmp_path):
    env = environment(RAY_USAGE_STATS_ENABLED="0")
    run = "fast_weights_R20_seed0"
    result = fwbook(*sweep_args(tmp_path / "ray", run), "--backend", "ray", "--workers", "1",
                    env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "embedded Ray on this machine: 1 node(s), 1 CPU(s)" in result.stdout + result.stderr
    local = fwbook(*sweep_args(tmp_path / "local", run), "--workers", "1", "--quiet")
    assert local.returncode == 0, local.stderr
    same_record(json.loads((tmp_path / "ray" / f"{run}.json").read_text()),
                json.loads((tmp_path / "local" / f"{run}.json").read_text()))


def test_an_unreachable_address_is_one_line_and_exit_2(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    for how, env in (("--address", environment()),
                     ("RAY_ADDRESS", environment(RAY_ADDRESS=address))):
        extra = ["--address", address] if how == "--address" else []
        result = fwbook(*sweep_args(tmp_path, "irnn_R20_seed0"), "--backend", "ray", *extra,
                        env=env, timeout=120)
        assert result.returncode == 2, (how, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"fwbook sweep: error: no Ray cluster at {address} "
                                        f"(Connection refused)"), result.stderr
        assert not list(tmp_path.glob("*.json"))
    bad = fwbook(*sweep_args(tmp_path, "irnn_R20_seed0"), "--backend", "ray", "--address",
                 "head-without-port")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "expected a Ray cluster address HOST:PORT" in bad.stderr
    local = fwbook(*sweep_args(tmp_path, "irnn_R20_seed0"), "--address", address)
    assert local.returncode == 2 and "--address only applies to --backend ray" in local.stderr


def test_a_record_of_another_configuration_is_refused_before_ray_starts(tmp_path):
    from fwbook.experiments.sweep_ray import run_sweep_ray

    config = retrieval_config("irnn", 8, "smoke", 0, num_train=500, num_validation=100,
                              num_test=100, steps=20, eval_every=10)
    other = retrieval_config("irnn", 8, "smoke", 0, num_train=500, num_validation=100,
                             num_test=100, steps=20, eval_every=10, lr=3e-4)
    from fwbook.experiments.sweep import run_sweep

    run_sweep({"run": config}, tmp_path, workers=1, quiet=True)
    before = (tmp_path / "run.json").read_text()
    # An address nothing listens on: the mismatch must be found before any connection.
    with pytest.raises(SweepConfigMismatch, match=r"run\.json holds run 'run' with another "
                                                  r"configuration.*lr: 0\.001 -> 0\.0003"):
        run_sweep_ray({"run": other}, tmp_path, address=f"127.0.0.1:{free_port()}", quiet=True)
    assert (tmp_path / "run.json").read_text() == before


def test_nothing_imports_ray_unless_the_ray_backend_is_chosen(tmp_path):
    check = ("import sys, fwbook, fwbook.cli.main, fwbook.experiments.sweep, fwbook.cli.sweep, fwbook.experiments.sweep_ray\n"
             "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')]\n")
    assert subprocess.run([sys.executable, "-c", check], env=environment()).returncode == 0
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fwbook",
         *sweep_args(tmp_path, "irnn_R20_seed0"), "--workers", "1", "--quiet"],
        capture_output=True, text=True, env=environment(), timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "irnn_R20_seed0.json").exists()
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "fwbook.experiments.sweep" in imported and "torch" in imported  # the check sees imports
    assert not [name for name in imported if name == "ray" or name.startswith("ray.")]
