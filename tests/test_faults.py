"""Bad input and faults, tried through the real CLI in a subprocess (issue 13).

Every test asserts the message, the exit status and the files on disk before and after:
bad input is one line and exit 2 with nothing created, changed or deleted; a fault is one
line saying what happened and what to do; nothing is lost, nothing is silent.
"""

import errno
import hashlib
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

SMOKE = ["--steps", "40", "--eval-every", "20", "--train-size", "1000", "--quiet",
         "--step", "eager"]
# long enough to be caught mid-run on a fast machine; checkpoints every 500 updates
LONG = ["--steps", "3000", "--eval-every", "500", "--train-size", "1000", "--quiet",
        "--step", "eager"]


def fwbook(*args, timeout=300, env=None, preexec_fn=None):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fwbook", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, preexec_fn=preexec_fn)


def _interruptible():
    # A command started in the background by a non-interactive shell (as CI may run this suite)
    # inherits SIGINT ignored, and fwbook rightly leaves an ignored SIGINT alone; the test
    # plays a user pressing Ctrl-C at a terminal, so the child gets the default disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "fwbook", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (hidden ones too) with the sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(result, command="train"):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"fwbook {command}: error:"), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished SMOKE record (seed 0), trained once for the tests of this module."""
    folder = tmp_path_factory.mktemp("finished")
    result = fwbook("train", *SMOKE, "--output", str(folder / "R.json"))
    assert result.returncode == 0, result.stderr
    return folder / "R.json"


# 1. an existing record is never overwritten silently
def test_a_record_of_another_run_or_a_broken_file_at_output_is_never_overwritten(tmp_path,
                                                                                  finished):
    record = tmp_path / "R.json"
    shutil.copy(finished, record)
    before = snapshot(tmp_path)
    other = fwbook("train", *SMOKE, "--seed", "1", "--output", str(record))
    assert other.returncode == 2
    line = one_error_line(other)
    assert f"--output {record} holds another run (differs in seed: 0 -> 1)" in line
    assert "--overwrite" in line
    for broken in (b'{"schema": 1, "status": "compl', b"\x00\xff\x13binary"):
        (tmp_path / "B.json").write_bytes(broken)
        before_broken = snapshot(tmp_path)
        result = fwbook("train", *SMOKE, "--output", str(tmp_path / "B.json"))
        assert result.returncode == 2
        assert "exists and is not a fwbook run record" in one_error_line(result)
        assert snapshot(tmp_path) == before_broken
    (tmp_path / "B.json").unlink()
    assert snapshot(tmp_path) == before
    again = fwbook("train", *SMOKE, "--output", str(record))  # the same run: nothing to do
    assert again.returncode == 0 and "already holds this run" in again.stdout, again.stderr
    assert snapshot(tmp_path) == before
    replaced = fwbook("train", *SMOKE, "--seed", "1", "--overwrite", "--output", str(record))
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(record.read_text())["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R.json"]


# 2. --checkpoint equal to --output
def test_checkpoint_equal_to_output_is_refused(tmp_path, finished):
    record = tmp_path / "R.json"
    shutil.copy(finished, record)
    before = snapshot(tmp_path)
    for output in (record, tmp_path / "new.json"):
        result = fwbook("train", *SMOKE, "--output", str(output), "--checkpoint", str(output))
        assert result.returncode == 2
        assert "is the --output file" in one_error_line(result)
        assert snapshot(tmp_path) == before


# 4. a damaged checkpoint is refused and kept; 5. one process per output; 7. Ctrl-C
def test_lock_ctrl_c_damaged_checkpoint_and_resume(tmp_path):
    output = tmp_path / "R.json"
    checkpoint = tmp_path / "R.json.ckpt.pt"
    lock = tmp_path / "R.json.lock"
    first = start("train", *LONG, "--output", str(output))
    deadline = time.time() + 240
    while not lock.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert lock.exists(), first.communicate()
    second = fwbook("train", *LONG, "--output", str(output))  # the same command, at once
    assert second.returncode == 2
    assert f"process {first.pid} is training {output}" in one_error_line(second)
    while not checkpoint.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if first.poll() is not None:
        pytest.skip("the first run finished before it could be interrupted")
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=240)
    assert first.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr
    assert lines[0].startswith("fwbook train: interrupted at update ")
    assert lines[0].endswith("; run the same command to resume")
    from fwbook.core.checkpoints import read_checkpoint

    step = read_checkpoint(checkpoint)["step"]
    assert lines[0] == f"fwbook train: interrupted at update {step:,}; run the same command to resume"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R.json.ckpt.pt"]  # no lock, no temp

    # damage bytes inside a tensor, leaving the zip structure intact
    good = checkpoint.read_bytes()
    header_end = good.index(b"\n") + 1
    body = bytearray(good[header_end:])
    archive = zipfile.ZipFile(io.BytesIO(bytes(body)))
    tensor = max((info for info in archive.infolist() if "/data/" in info.filename),
                 key=lambda info: info.file_size)
    local = tensor.header_offset
    name_length = int.from_bytes(body[local + 26:local + 28], "little")
    extra_length = int.from_bytes(body[local + 28:local + 30], "little")
    inside = local + 30 + name_length + extra_length + tensor.file_size // 2
    body[inside] ^= 0x40
    checkpoint.write_bytes(good[:header_end] + bytes(body))
    zipfile.ZipFile(io.BytesIO(bytes(body))).testzip()  # still a readable zip
    before = snapshot(tmp_path)
    damaged = fwbook("train", *LONG, "--output", str(output))
    assert damaged.returncode == 2
    line = one_error_line(damaged)
    assert f"checkpoint {checkpoint} is damaged (its bytes do not match its sha256 checksum)" in line
    assert "kept for inspection" in line
    assert snapshot(tmp_path) == before  # kept, nothing written

    checkpoint.write_bytes(good)
    resumed = fwbook("train", *LONG, "--output", str(output))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {checkpoint} at update {step:,}" in resumed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R.json"]
    reference = tmp_path / "reference" / "R.json"
    assert fwbook("train", *LONG, "--output", str(reference)).returncode == 0
    first_record, second_record = json.loads(reference.read_text()), json.loads(output.read_text())
    assert first_record["curves"] == second_record["curves"]  # interrupted mid-interval too
    assert first_record["test_error"] == second_record["test_error"]


def _file_size_limit(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    return apply


# 6. no room for the checkpoint (a real OS limit: RLIMIT_FSIZE makes write() fail with EFBIG)
def test_no_room_for_the_checkpoint_is_one_line_and_leaves_no_temporary_file(tmp_path):
    output = tmp_path / "R.json"
    result = fwbook("train", *SMOKE, "--output", str(output), preexec_fn=_file_size_limit(4096))
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0] == (f"fwbook train: could not write {tmp_path / 'R.json.ckpt.pt'}: the "
                        f"file-size limit is reached ({os.strerror(errno.EFBIG)}) at update 20; "
                        f"there is no earlier checkpoint: free space and run the same command "
                        f"to resume")
    assert list(tmp_path.iterdir()) == []  # no partial temporary, no lock, no record


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({mounted.stderr.strip() or 'not root'})")


# 6. disk full when writing the record, after all updates
def test_disk_full_at_the_record_keeps_the_checkpoint_and_rerunning_resumes(tmp_path):
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("filling a real disk needs a small tmpfs, which needs root to mount")
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "64k")
    try:
        fillers = []
        try:  # fill the file system page by page, then free exactly one page (for the lock)
            while True:
                filler = disk / f"filler{len(fillers)}"
                fillers.append(filler)
                filler.write_bytes(b"x" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC
        fillers.pop().unlink(missing_ok=True)
        fillers.pop().unlink()
        output = disk / "R.json"
        checkpoint = tmp_path / "R.ckpt.pt"
        full = fwbook("train", *SMOKE, "--output", str(output), "--checkpoint", str(checkpoint))
        assert full.returncode == 1, full.stderr
        lines = full.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in full.stderr
        assert lines[0] == (f"fwbook train: could not write {output}: the disk is full "
                            f"({os.strerror(errno.ENOSPC)}) after all 40 updates; the checkpoint "
                            f"{checkpoint} (update 20) is kept: free space and run the same "
                            f"command to resume")
        assert sorted(p.name for p in disk.iterdir()) == sorted(p.name for p in fillers)
        assert checkpoint.exists()
        for filler in fillers:
            filler.unlink()
        resumed = fwbook("train", *SMOKE, "--output", str(output), "--checkpoint", str(checkpoint))
        assert resumed.returncode == 0, resumed.stderr
        assert "resuming from" in resumed.stderr and output.exists() and not checkpoint.exists()
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# 8-11: bad input is one line naming the argument or file, exit 2, nothing created
@pytest.mark.parametrize("args, message", [
    (["--seed", "18446744073709551616"], "seed must be an integer from 0 to 4294967295"),
    (["--data-seed", "100000000000000000"], "data_seed must be an integer from 0 to 4294967295"),
    (["--batch", "200", "--train-size", "100"],
     "batch_size (--batch) 200 is larger than num_train (--train-size) 100"),
    (["--hidden", "1000000"], "--hidden 1000000: the fast_weights model has 1,000,140,003,837 "
                              "parameters"),
])
def test_bad_values_are_refused_before_any_work(tmp_path, args, message):
    output = tmp_path / "out" / "R.json"
    result = fwbook("train", *SMOKE, *args, "--output", str(output))
    assert result.returncode == 2
    assert message in one_error_line(result)
    assert list(tmp_path.iterdir()) == []


def test_an_output_name_too_long_for_its_checkpoint_is_refused(tmp_path):
    name = "r" * (255 - len(".json")) + ".json"  # legal alone, too long with .ckpt.pt
    result = fwbook("train", *SMOKE, "--output", str(tmp_path / name))
    assert result.returncode == 2
    line = one_error_line(result)
    assert "this file system allows 255" in line and "choose a shorter name" in line
    assert list(tmp_path.iterdir()) == []


def test_a_bad_checkpoint_is_refused_before_the_output_folder_is_created(tmp_path):
    checkpoint = tmp_path / "bad.ckpt.pt"
    checkpoint.write_bytes(b"PK\x03\x04 not really a zip")
    result = fwbook("train", *SMOKE, "--output", str(tmp_path / "new" / "R.json"),
                    "--checkpoint", str(checkpoint))
    assert result.returncode == 2
    assert f"checkpoint {checkpoint} is corrupt or unreadable" in one_error_line(result)
    assert [p.name for p in tmp_path.iterdir()] == ["bad.ckpt.pt"]


# 3, 8: the sweep
def test_sweep_refuses_a_directory_that_is_missing_empty_or_a_file(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table1:start -->\nour table\n<!-- table1:end -->\n")
    before = snapshot(tmp_path)
    missing = fwbook("sweep", "table1", "--no-train", "--readme", str(readme), "--directory",
                     str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert f"--directory {tmp_path / 'nowhere'} does not exist" in one_error_line(missing, "sweep")
    (tmp_path / "empty").mkdir()
    empty = fwbook("sweep", "table1", "--no-train", "--readme", str(readme), "--directory",
                   str(tmp_path / "empty"))
    assert empty.returncode == 2
    assert "holds no table1 records" in one_error_line(empty, "sweep")
    (tmp_path / "empty").rmdir()
    afile = fwbook("sweep", "table1", "--status", "--directory", str(readme))
    assert afile.returncode == 2
    assert f"--directory {readme} is a file" in one_error_line(afile, "sweep")
    no_markers = tmp_path / "notes.md"
    no_markers.write_text("no table here\n")
    before = snapshot(tmp_path)
    markers = fwbook("sweep", "table1", "--no-train", "--readme", str(no_markers))
    assert markers.returncode == 2
    assert f"--readme {no_markers} has no table block" in one_error_line(markers, "sweep")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("content, message", [
    (b'{"schema": 1, "config": {"mod', "is not valid JSON"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff", "is not a fwbook run record (binary, not JSON text)"),
])
def test_sweep_status_over_a_truncated_or_binary_record(tmp_path, content, message):
    record = tmp_path / "fast_weights_R20_seed0.json"
    record.write_bytes(content)
    before = snapshot(tmp_path)
    result = fwbook("sweep", "table1", "--profile", "smoke", "--seeds", "0", "--status",
                    "--directory", str(tmp_path))
    assert result.returncode == 2
    line = one_error_line(result, "sweep")
    assert str(record) in line and message in line and "move it away" in line
    assert snapshot(tmp_path) == before


# --step auto: decided from measured costs, recorded
def test_auto_step_decision_is_recorded(tmp_path):
    output = tmp_path / "R.json"
    costs = tmp_path / "costs.json"
    result = fwbook("train", "--steps", "600", "--eval-every", "600", "--train-size", "1000",
                    "--quiet", "--output", str(output), env={"FWBOOK_STEP_COSTS": str(costs)})
    assert result.returncode == 0, result.stderr
    record = json.loads(output.read_text())
    step = record["training_step"]
    if shutil.which("g++") or shutil.which("c++") or shutil.which("clang++"):
        # nothing measured yet: the prior (a cold compile = 15,000 eager updates) is not repaid
        assert step["path"] == "eager"
        assert step["reason"].startswith("auto: compiling (assumed ")
        assert "would not be repaid over 600 updates" in step["reason"]
        decision = step["decision"]
        assert decision["source"] == "prior (nothing measured yet)"
        assert decision["eager_step_s"] > 0
        assert decision["compile_s"] == pytest.approx(15_000 * decision["eager_step_s"], rel=1e-3)
        assert decision["predicted_compiled_s"] > decision["predicted_eager_s"]
    assert step["step_s"] > 0
    assert not costs.exists()  # only a compiled run adds to the cache
    from fwbook.core.records import config_hash

    assert record["config_hash"] == config_hash(record["config"])
    assert "training_step" not in record["config"]
