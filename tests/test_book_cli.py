"""``fwbook book`` with bad input: one line, exit status 2, nothing written; and through the
real entry points (the installed ``fwbook`` script, ``python -m fwbook``) without torch.

Every case runs the real command in a subprocess; none of them may start a kernel (each
returns in about a second), write the build folder, or touch the sources.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fwbook.cli import book

ROOT = book.ROOT


def _snapshot(folder: Path) -> dict:
    if not folder.exists():
        return {}
    return {path.relative_to(folder).as_posix(): path.stat().st_mtime_ns
            for path in folder.rglob("*")}


def _run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fwbook", "book", *arguments],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


BAD_INPUT = [
    (["--seed", "-1"], "argument --seed: must be an integer from 0 to 4294967295, got -1"),
    (["--seed", "many"], "argument --seed: expected an integer, got 'many'"),
    (["--profile", "fast"], "argument --profile: invalid choice: 'fast'"),
    (["--device", "tpu"], "argument --device: expected auto, cpu, cuda or cuda:N, got 'tpu'"),
    (["--chapters", "42"], "chapter '42' is not one of the chapters in _toc.yml: "
                           "01_physiological_motivation, "),
    (["--chapters", "01", "nonsense"], "chapter 'nonsense' is not one of the chapters"),
    (["--output-dir", "{tmp}/site"], "--output-dir must be a folder named _build"),
    (["--output-dir", "notebooks/_build"], "--output-dir notebooks/_build lies inside the "
                                           "sources"),
    (["--output-dir", "{file}/_build"], "cannot be written"),
    (["--chapters", "03", "--output-dir", "{tmp}/_build"],
     "chapters never executed into {tmp}/_build/notebooks and not selected: "
     "01_physiological_motivation, 02_fast_weights_equation, 04_bag_of_tricks"),
]


@pytest.mark.parametrize("arguments, message", BAD_INPUT,
                         ids=[" ".join(arguments) for arguments, _ in BAD_INPUT])
def test_bad_input_is_rejected_before_anything_runs(tmp_path, arguments, message):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder", encoding="utf-8")
    arguments = [argument.format(tmp=tmp_path, file=blocker) for argument in arguments]
    message = message.format(tmp=tmp_path)
    watched = [ROOT / "notebooks", ROOT / "_build", ROOT / "book"]
    before = [_snapshot(folder) for folder in watched]
    started = time.perf_counter()
    result = _run(*arguments)
    seconds = time.perf_counter() - started
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fwbook book: error: "), lines[0]
    assert message in lines[0], lines[0]
    assert result.stdout == ""
    assert [_snapshot(folder) for folder in watched] == before, "the sources were touched"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a_file"], "files were written"
    assert seconds < 60, f"rejecting bad input took {seconds:.0f} s (a kernel started?)"


def test_cuda_without_a_gpu_is_rejected(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: --device cuda is valid here")
    result = _run("--device", "cuda", "--output-dir", str(tmp_path / "_build"))
    assert result.returncode == 2
    assert result.stderr.strip() == ("fwbook book: error: --device cuda: no CUDA GPU is "
                                     "available on this machine; use --device auto or cpu")
    assert not (tmp_path / "_build").exists()


def test_help_names_the_default_profile():
    result = _run("--help")
    assert result.returncode == 0
    assert "paper: the published book" in result.stdout and "(default)" in result.stdout
    assert "--force" in result.stdout


def _console_script() -> str:
    """The ``fwbook`` script that ``pip install`` put beside this Python (pyproject.toml)."""
    script = shutil.which("fwbook", path=os.path.dirname(sys.executable))
    assert script, f"no fwbook console script beside {sys.executable}: pip install -e ."
    return script


ENTRY_POINTS = {"fwbook script": lambda: [_console_script()],
                "python -m fwbook": lambda: ["-m", "fwbook"]}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_book_help_through_the_entry_point_imports_no_torch(entry_point):
    result = subprocess.run([sys.executable, "-X", "importtime", *ENTRY_POINTS[entry_point](),
                             "book", "--help"], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: fwbook book [-h]")
    imported = set(re.findall(r"^import time:.*\|\s*([\w.]+)\s*$", result.stderr, re.M))
    assert {"fwbook.cli.main", "fwbook.cli.book"} <= imported, "importtime output not read"
    heavy = sorted(name for name in imported if name.split(".")[0] in ("torch", "matplotlib"))
    assert not heavy, f"fwbook book --help imported {', '.join(heavy[:5])}"


@pytest.mark.parametrize("arguments, message", [
    (["--profile", "nope"], "argument --profile: invalid choice: 'nope'"),  # argparse
    (["--chapters", "42"], "chapter '42' is not one of the chapters in _toc.yml"),  # the build
])
def test_the_installed_script_refuses_bad_input_and_writes_nothing(tmp_path, arguments, message):
    watched = [ROOT / "notebooks", ROOT / "_build", ROOT / "book"]
    before = [_snapshot(folder) for folder in watched]
    result = subprocess.run([_console_script(), "book", *arguments, "--output-dir",
                             str(tmp_path / "_build")], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fwbook book: error: {message}"), lines
    assert list(tmp_path.iterdir()) == [], "files were written"
    assert [_snapshot(folder) for folder in watched] == before, "the sources were touched"
