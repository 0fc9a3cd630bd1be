"""Executing a chapter: widgets send nothing back, a kernel that dies or stops answering fails
the chapter quickly with one line naming the chapter and the cell, and an unchanged chapter
is not executed again.

Each test runs a tiny chapter in a temporary book (a real kernel, a few seconds each); the
watchdog limits are shortened so that the stalls are found in seconds, as they are in minutes
with the defaults.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

from fwbook.cli import book
from fwbook.cli import book_chapter
from fwbook.cli import book_execute
from fwbook.cli import book_key
from fwbook.cli import book_request

QUICK_DOG = book_execute.Watchdog(start_s=30, reply_s=5, silence_s=8, ping_s=2)
HEADER = ('# %% [markdown]\n# # 1. Tiny\n\n'
          '# %% tags=["parameters"]\nprofile = "quick"\nseed = 0\ndevice = "auto"\n\n')


def _book(root: Path, cells: str, name: str = "01_tiny") -> Path:
    """A book with one chapter ``notebooks/<name>.py`` made of ``cells`` (py:percent)."""
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    (root / "book").mkdir(exist_ok=True)
    (root / "book" / "intro.md").write_text("# Tiny\n", encoding="utf-8")
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: book/intro\nchapters:\n"
                                   f"  - file: notebooks/{name}\n", encoding="utf-8")
    (root / "notebooks" / f"{name}.py").write_text(HEADER + cells, encoding="utf-8")
    return root / "notebooks" / f"{name}.py"


def _fails_quickly(root: Path, limit_s: float, **kwargs) -> str:
    started = time.perf_counter()
    with pytest.raises(book_request.BookBuildError) as failure:
        book_chapter.execute_chapter("01_tiny", "smoke", 0, "cpu", root=root, watchdog=QUICK_DOG,
                             **kwargs)
    seconds = time.perf_counter() - started
    message = str(failure.value)
    assert seconds < limit_s, f"took {seconds:.0f} s: {message}"
    assert "\n" not in message, message
    assert message.startswith("chapter 01_tiny (profile=smoke, seed=0, device=cpu): cell "), \
        message
    return message


def test_output_widget_outputs_are_not_echoed_to_the_kernel(tmp_path):
    """nbclient's Output-widget stand-in echoed every captured output to the kernel over the
    shell channel while the cell ran (the chapter 2 hang). The kernel must receive nothing;
    the captured output is still kept in the notebook's widget state."""
    _book(tmp_path, '# %%\nimport ipywidgets\nout = ipywidgets.Output()\ndisplay(out)\n'
                    'with out:\n    print("captured by the widget")\n\n'
                    '# %%\nimport time\ntime.sleep(1)\n'
                    'assert out.outputs == (), f"the client echoed {out.outputs!r}"\n'
                    'print("the kernel received no echo")\n')
    target = book_chapter.execute_chapter("01_tiny", "smoke", 0, "cpu", root=tmp_path)
    notebook = nbformat.read(target, as_version=4)
    printed = "".join(output.get("text", "") for cell in notebook.cells
                      for output in cell.get("outputs", []))
    assert "the kernel received no echo" in printed
    assert "captured by the widget" not in printed  # it went into the widget, not the cell
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    captured = [model["state"].get("outputs") for model in state.values()
                if model["model_name"] == "OutputModel"]
    assert captured and "captured by the widget" in json.dumps(captured)
    assert notebook.metadata["fwbook"]["kernel"] == {"transport": "ipc", "missed_wakeups": 0}


def test_a_long_silent_cell_is_not_given_up(tmp_path):
    """A cell that prints nothing for longer than the silence limit (training does) is fine
    as long as the kernel answers the watchdog's pings on the control channel."""
    _book(tmp_path, '# %%\nimport time\ntime.sleep(QUIET)\nprint("done")\n'.replace(
        "QUIET", str(QUICK_DOG.silence_s + 3)))
    target = book_chapter.execute_chapter("01_tiny", "smoke", 0, "cpu", root=tmp_path,
                                  watchdog=QUICK_DOG)
    notebook = nbformat.read(target, as_version=4)
    assert notebook.cells[-1].outputs[0]["text"] == "done\n"


def test_a_dead_kernel_fails_the_chapter_at_once(tmp_path):
    _book(tmp_path, '# %%\nx = 1\n\n# %%\nimport os\nos._exit(3)\n')
    message = _fails_quickly(tmp_path, 60)
    assert "cell 4 at notebooks/01_tiny.py:13 (import os): the kernel died" in message
    assert (tmp_path / "_build" / "notebooks" / "01_tiny.failed.ipynb").is_file()
    assert "kernel log: " in message and (tmp_path / "_build" / "logs" / "01_tiny.log").is_file()


def test_a_kernel_that_stops_answering_is_given_up(tmp_path):
    """A stopped process answers nothing, not even a control-channel ping."""
    _book(tmp_path, '# %%\nimport os\nprint(os.getpid())\n\n'
                    '# %%\nimport signal\nos.kill(os.getpid(), signal.SIGSTOP)\n')
    message = _fails_quickly(tmp_path, 60)
    assert "cell 4 at notebooks/01_tiny.py:14 (import signal): the kernel stopped answering" in message
    failed = nbformat.read(tmp_path / "_build" / "notebooks" / "01_tiny.failed.ipynb", 4)
    pid = int(failed.cells[3].outputs[0]["text"])
    status = Path(f"/proc/{pid}/status")
    state = status.read_text().split("State:")[1].split()[0] if status.exists() else "gone"
    assert state in ("gone", "Z"), f"the stopped kernel was left behind (state {state})"


def test_a_lost_reply_is_noticed_within_seconds(tmp_path):
    """The kernel goes idle but its execute_reply never arrives: the hang's very symptom."""
    _book(tmp_path, '# %%\nkernel = get_ipython().kernel\nsend = kernel.session.send\n\n\n'
                    'def drop_replies(stream, message, *args, **kwargs):\n'
                    '    if message == "execute_reply":  # swallowed: never sent\n'
                    '        return kernel.session.msg("execute_reply", args[0] if args else {})\n'
                    '    return send(stream, message, *args, **kwargs)\n\n\n'
                    'kernel.session.send = drop_replies\n')
    message = _fails_quickly(tmp_path, 60)
    assert "cell 3 at notebooks/01_tiny.py:10 (kernel = get_ipython().kernel): the kernel " \
           "finished the cell but its reply never came (waited 5 s after it went idle)" in message


def test_a_cell_over_its_time_limit(tmp_path):
    _book(tmp_path, '# %%\nimport time\ntime.sleep(120)\n')
    message = _fails_quickly(tmp_path, 60, timeout=3)
    assert "cell 3 at notebooks/01_tiny.py:10 (import time): the cell ran past its time limit " \
        "of 3 s" in message


def test_a_chapter_is_executed_only_when_its_inputs_change(tmp_path):
    """Executed when new, up to date when nothing changed, executed again when the package
    changes or with force; the key names every input."""
    _book(tmp_path, '# %%\nprint(f"ran with {profile}")\n')
    package = tmp_path / "src" / "fwbook"
    package.mkdir(parents=True)
    (package / "models.py").write_text("A = 1\n", encoding="utf-8")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "run.json").write_text("{}", encoding="utf-8")
    (tmp_path / "requirements.txt").write_text("torch==2.13.0\n", encoding="utf-8")
    lines = []

    def build(**kwargs):
        lines.clear()
        request = book_request.check_request("smoke", kwargs.pop("seed", 0), "cpu", root=tmp_path)
        record, statuses = book.execute_chapters(request, say=lines.append,
                                                 watchdog=QUICK_DOG, **kwargs)
        return record, statuses[0]

    record, status = build()
    assert record.executed == ["01_tiny"] and status.outcome == "executed"
    assert lines[0].startswith("[book] 1/1 01_tiny: executing (new; profile=smoke")
    assert lines[1].startswith("[book] 1/1 01_tiny: executed (") and lines[1].endswith(" s)")
    target = tmp_path / "_build" / "notebooks" / "01_tiny.ipynb"
    stamp = target.stat().st_mtime_ns
    key = book_chapter.stored_record(target)["key"]
    assert set(key["parts"]) == {"chapter", "package", "records", "requirements",
                                 "parameters", "version"}

    record, status = build()
    assert record.executed == [] and record.up_to_date == ["01_tiny"]
    assert lines == ["[book] 1/1 01_tiny: up to date"] and status.outcome == "up to date"
    assert target.stat().st_mtime_ns == stamp

    (package / "models.py").write_text("A = 2\n", encoding="utf-8")
    record, status = build()
    assert record.executed == ["01_tiny"]
    assert lines[0].startswith("[book] 1/1 01_tiny: executing (package changed;")

    record, status = build(force=True)
    assert record.executed == ["01_tiny"] and lines[0].startswith(
        "[book] 1/1 01_tiny: executing (--force;")

    # every other input changes the key, and the log names it (no kernel needed to see that)
    shared = book_key.shared_inputs(tmp_path)
    now = book_key.chapter_key(tmp_path, "01_tiny", request_parameters := {
        "profile": "smoke", "seed": 0, "device": "cpu"}, shared)
    assert book_key.changed_parts(book_chapter.stored_record(target)["key"], now) == []
    changes = {"records": lambda: (tmp_path / "results" / "new.json").write_text("{}"),
               "requirements": lambda: (tmp_path / "requirements.txt").write_text("torch\n"),
               "chapter": lambda: (tmp_path / "notebooks" / "01_tiny.py").write_text(
                   HEADER + "# %%\nprint(2)\n")}
    for part, change in changes.items():
        before = book_key.chapter_key(tmp_path, "01_tiny", request_parameters)
        change()
        after = book_key.chapter_key(tmp_path, "01_tiny", request_parameters)
        assert book_key.changed_parts(before, after) == [part]
    for parameter, value in (("profile", "paper"), ("seed", 1), ("device", "auto")):
        other = dict(request_parameters, **{parameter: value})
        assert book_key.changed_parts(after, book_key.chapter_key(tmp_path, "01_tiny", other)) \
            == ["parameters"]
