"""A small Sphinx extension for the book's page header and payload (``_config.yml`` loads it).

It makes these settings do what they say, where jupyter-book 1.x and sphinx-book-theme
would not:

- ``html.use_download_button`` of ``_config.yml`` (jupyter-book does not pass it on; the theme
  then always shows the button): :mod:`fwbook.cli.book_config` copies it into
  ``fwbook_use_download_button``, applied here to the theme's options.
- The Colab button opens ``notebooks/NN_name.ipynb`` from the ``notebooks`` branch (the
  executed chapters the workflow publishes), not from the source branch, where only the
  ``py:percent`` source exists; the edit and source buttons of a chapter point at that
  ``.py`` source, not at an ``.ipynb`` that is not committed.
- Nothing scrolls sideways in the content column (``book_static/fwbook.css``): long code
  lines wrap, wide tables of numbers are set smaller.
- No ipywidgets state is shipped: the book loads no widget JavaScript and shows static figures,
  so the state (tens of KB per page) could never be seen.
- Each script is on a page once. Sphinx 7.4 lists an inline script that an extension adds
  after the builder started twice (once with ``filename=None``, once with ``""``, which its
  de-duplication takes for two scripts); sphinx-thebe's ``const THEBE_JS_URL = ...`` is such a
  script, and its second copy threw ``SyntaxError: Identifier 'THEBE_JS_URL' has already been
  declared`` on every page of the book.
"""

from __future__ import annotations

import re
from typing import Any

WIDGET_SCRIPT = re.compile(r"^ipywidgets_(state|\d+)$")


def _walk(buttons: list) -> Any:
    for button in buttons or []:
        if isinstance(button, dict):
            yield button
            yield from _walk(button.get("buttons", []))


def rewrite_buttons(buttons: list, pagename: str, branch: str, notebooks_branch: str,
                    source_exists: bool) -> None:
    """Point Colab at ``notebooks_branch`` and a chapter's edit/source buttons at its ``.py``.

    Args:
        buttons: sphinx-book-theme's ``header_buttons`` context entry (changed in place).
        pagename: e.g. ``"notebooks/02_fast_weights_equation"``.
        branch: the source branch the other buttons use.
        notebooks_branch: where the executed ``.ipynb`` files are published ("" = leave Colab).
        source_exists: whether ``<pagename>.py`` exists in the source tree.
    """
    for button in _walk(buttons):
        url = button.get("url")
        if not isinstance(url, str):
            continue
        if notebooks_branch and button.get("text") == "Colab":
            button["url"] = url.replace(f"/blob/{branch}/", f"/blob/{notebooks_branch}/", 1)
        elif source_exists and button.get("label") in ("source-file-button",
                                                       "source-edit-button"):
            button["url"] = re.sub(rf"{re.escape(pagename)}\.ipynb(?=$|\?)", f"{pagename}.py",
                                   url)


def _apply_download_setting(app) -> None:
    setting = app.config.fwbook_use_download_button
    if setting is not None:
        app.config.html_theme_options["use_download_button"] = bool(setting)


def _drop_widget_state(app, pagename: str, *args) -> None:
    metadata = getattr(app.env, "nb_metadata", {}).get(pagename, {})
    scripts = metadata.get("js_files", {})
    for key in [key for key in scripts if WIDGET_SCRIPT.match(key)]:
        del scripts[key]


def unique_scripts(scripts: list) -> list:
    """``scripts`` (a page's ``script_files``) with each script once, first place kept; an
    inline script (no file) is the same script whatever empty file name it carries."""
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", None) or {}
        key = (getattr(script, "filename", script) or "", getattr(script, "priority", None),
               tuple(sorted((name, str(value)) for name, value in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    return unique


def _drop_repeated_scripts(app, pagename: str, templatename: str, context: dict,
                           doctree) -> None:
    if context.get("script_files"):
        context["script_files"] = unique_scripts(context["script_files"])  # a new list


def _fix_buttons(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    from pathlib import Path

    # the sources: the repository (the build renders a copy of them in its _build folder,
    # without the chapters' .py files)
    repository = Path(__file__).resolve().parents[3]
    source_exists = any((Path(folder) / f"{pagename}.py").is_file()
                        for folder in (app.srcdir, repository))
    rewrite_buttons(context.get("header_buttons", []), pagename,
                    app.config.fwbook_repository_branch, app.config.fwbook_notebooks_branch,
                    source_exists)


def _add_stylesheet(app) -> None:
    from pathlib import Path

    app.config.html_static_path.append(str(Path(__file__).parent / "book_static"))
    app.add_css_file("fwbook.css")


def setup(app) -> dict:
    app.add_config_value("fwbook_use_download_button", None, "html")
    app.add_config_value("fwbook_notebooks_branch", "", "html")
    app.add_config_value("fwbook_repository_url", "", "html")
    app.add_config_value("fwbook_repository_branch", "", "html")
    app.connect("builder-inited", _apply_download_setting)
    app.connect("builder-inited", _add_stylesheet)
    app.connect("html-page-context", _drop_widget_state, priority=400)  # before myst-nb (500)
    app.connect("html-page-context", _fix_buttons, priority=600)  # after the theme (501)
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)  # after all others
    return {"parallel_read_safe": True, "parallel_write_safe": True}
