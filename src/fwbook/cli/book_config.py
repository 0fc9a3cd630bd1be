"""Where the book's source lives, read from the build environment, never typed in.

``_config.yml`` names no repository: the same tree is built by GitHub Actions, by a reader on
a fork, and in CI with no remote at all. This module finds the repository and the branch

1. in GitHub Actions, from ``GITHUB_SERVER_URL``, ``GITHUB_REPOSITORY`` and ``GITHUB_REF_NAME``;
2. otherwise from ``git remote get-url origin`` (ssh and ``git@`` forms normalised to https)
   and the checked-out branch;
3. otherwise nowhere: the repository, issue, edit and launch buttons stay off.

:func:`config_overrides` turns what it found into the ``_config.yml`` keys that switch those
buttons on, and :func:`write_config` writes ``_config.yml`` merged with them into the build
folder: ``jupyter-book build --config <that file>`` renders with it. The executed notebooks
that Colab opens live on the ``notebooks`` branch (published by ``.github/workflows/book.yml``);
:mod:`fwbook.cli.book_theme` points the Colab button there.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

ROOT_HINT = Path(__file__).resolve().parents[3]  # the repository root
NOTEBOOKS_BRANCH = "notebooks"  # where the workflow publishes the executed chapters
BINDERHUB_URL = "https://mybinder.org"
COLAB_URL = "https://colab.research.google.com"


@dataclass(frozen=True)
class Repository:
    """A repository the book's buttons may point at.

    Attributes:
        url: ``https://host/owner/name`` (no ``.git``, no credentials).
        branch: the branch the pages were built from (edit and Binder links use it).
        source: where the answer came from: ``"actions"`` or ``"git remote"``.
    """

    url: str
    branch: str
    source: str


_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>(?!//)[^\s]+)$")


def normalise_remote(remote: str) -> Optional[str]:
    """A git remote as an ``https://host/owner/name`` URL, or ``None`` if it is not one.

    ``git@github.com:o/r.git``, ``ssh://git@github.com/o/r``, ``https://user:token@github.com/o/r.git``
    all give ``https://github.com/o/r``. Local paths and ``file://`` remotes give ``None``:
    no reader could follow a button to them.
    """
    remote = remote.strip()
    if not remote:
        return None
    match = re.match(r"^(?P<scheme>[a-z+]+)://(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?/(?P<path>.+)$",
                     remote)
    if match:
        if match.group("scheme") not in ("https", "http", "ssh", "git", "git+ssh"):
            return None
        host, path = match.group("host"), match.group("path")
    else:
        match = _SCP_LIKE.match(remote)
        if not match or "/" in match.group("host"):
            return None
        host, path = match.group("host"), match.group("path")
    path = path.strip("/").removesuffix(".git")
    parts = path.split("/")
    if len(parts) < 2 or not all(parts) or "." not in host:
        return None
    return f"https://{host}/{path}"


def _git(root: Path, *arguments: str) -> Optional[str]:
    try:
        result = subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True,
                                timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def find_repository(root: Path | str, environ: Optional[Mapping[str, str]] = None
                    ) -> Optional[Repository]:
    """The repository and branch of the tree at ``root`` (see the module docstring)."""
    environ = os.environ if environ is None else environ
    repository = environ.get("GITHUB_REPOSITORY", "").strip()
    if environ.get("GITHUB_ACTIONS") == "true" and repository:
        server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        branch = environ.get("GITHUB_REF_NAME", "").strip() or "main"
        return Repository(url=f"{server}/{repository}", branch=branch, source="actions")
    url = normalise_remote(_git(Path(root), "remote", "get-url", "origin") or "")
    if url is None:
        return None
    branch = _git(Path(root), "symbolic-ref", "--short", "-q", "HEAD")
    if not branch:  # a detached HEAD: fall back to the remote's default branch
        head = _git(Path(root), "symbolic-ref", "--short", "refs/remotes/origin/HEAD") or ""
        branch = head.removeprefix("origin/") or "main"
    return Repository(url=url, branch=branch, source="git remote")


def config_overrides(repository: Optional[Repository]) -> dict:
    """The ``_config.yml`` keys to merge in: buttons on when the repository is known.

    Returns ``{}`` for ``None``: ``_config.yml`` as committed keeps every button off.
    """
    if repository is None:
        return {}
    launch = {"binderhub_url": BINDERHUB_URL, "notebook_interface": "jupyterlab"}
    if "github.com" in repository.url:  # Colab opens notebooks from GitHub only
        launch["colab_url"] = COLAB_URL
    return {
        "repository": {"url": repository.url, "branch": repository.branch, "path_to_book": ""},
        "html": {"use_repository_button": True, "use_issues_button": True,
                 "use_edit_page_button": True},
        "launch_buttons": launch,
        "sphinx": {"config": {"fwbook_notebooks_branch": NOTEBOOKS_BRANCH,
                              "fwbook_repository_url": repository.url,
                              "fwbook_repository_branch": repository.branch}},
    }


def merge(base: dict, overrides: Mapping) -> dict:
    """``base`` updated recursively with ``overrides`` (a new dict; neither is changed)."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def write_config(root: Path | str, build_dir: Path | str,
                 environ: Optional[Mapping[str, str]] = None) -> Path:
    """Write ``<build_dir>/_config.generated.yml``: ``_config.yml`` plus the overrides.

    Returns the file's path, for ``jupyter-book build --config``.
    """
    import yaml

    root = Path(root)
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    config = merge(config, config_overrides(find_repository(root, environ)))
    download = (config.get("html") or {}).get("use_download_button")
    extra = {"sphinx": {"config": {"fwbook_use_download_button": download}}}
    citation = root / "CITATION.cff"
    if citation.is_file():  # the landing page's "How to cite" block, generated from the CFF
        from fwbook.cli.citation import bibtex_from_cff

        fence = "````bibtex\n" + bibtex_from_cff(citation) + "````"
        extra["parse"] = {"myst_substitutions": {"citation_bibtex": fence}}
    config = merge(config, extra)
    target = Path(build_dir) / "_config.generated.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("# written by fwbook.cli.book_config from _config.yml and the build "
                      "environment; do not edit\n" + yaml.safe_dump(config, sort_keys=False),
                      encoding="utf-8")
    return target


def record_link_base(root: Path | str = ROOT_HINT,
                     environ: Optional[Mapping[str, str]] = None) -> str:
    """Prefix that turns a record path (``results/...json``) into a link from a chapter page.

    ``<url>/blob/<branch>/`` when the repository is known (the JSON on the forge), else
    ``../``: relative to ``notebooks/NN_name``, where MyST resolves it to the committed file
    and Sphinx serves a copy with the book (``_downloads/``).
    """
    repository = find_repository(root, environ)
    return f"{repository.url}/blob/{repository.branch}/" if repository else "../"
