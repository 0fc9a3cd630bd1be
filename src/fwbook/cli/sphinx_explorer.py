"""Sphinx extension: ship the browser explorers' script and weights with the HTML book.

Listed in ``_config.yml`` (``sphinx.extra_extensions``). When an HTML build finishes, it
writes ``fwbook_explorer.js`` and ``fwbook_explorer_weights.js`` into ``<html>/_static/``
(:func:`fwbook.chapters.explorer.write_assets`): the weights are exported from the committed trained
model at every build, so they cannot drift from it. Pages load them only where a chapter
shows an explorer (see :mod:`fwbook.chapters.explorer`).
"""

from __future__ import annotations

from pathlib import Path


def _write_assets(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from fwbook.chapters.explorer import write_assets

    write_assets(Path(app.outdir) / "_static")


def setup(app) -> dict:
    app.connect("build-finished", _write_assets)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
