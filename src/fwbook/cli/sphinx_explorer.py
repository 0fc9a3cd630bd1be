"""Sphinx extension: ship the browser explorers' script and weights with the HTML book.

Listed in ``_config.yml`` (``sphinx.extra_extensions``). When an HTML build finishes, it
writes into ``<html>/_static/`` (:func:`fwbook.chapters.explorer.write_assets`):

* ``fwbook_explorer.js``: ``src/fwbook/chapters/explorer_maths.js`` and ``explorer_page.js``,
  joined into one script (one request per page, in the order they must run);
* ``fwbook_explorer_weights.js``: the weights, exported from the committed trained model at
  every build, so they cannot drift from it.

Pages load them only where a chapter shows an explorer (see :mod:`fwbook.chapters.explorer`).

This imports torch, once per render, after every page is written (about 3 s of CPU). The
weights are read from ``results/attention/paper_fast_weights_K4_seed0.pt``, torch's own
zip-and-pickle format, into the model its record describes (the same load the chapters and
tests use). Reading that file without torch would take a second, hand-written reader of a
format this project does not own, one that could drift from torch's; torch is installed
wherever the book is built (the chapters run it).
"""

from __future__ import annotations

from pathlib import Path


def _write_assets(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from fwbook.chapters.explorer import write_assets  # imports torch: see the module docstring

    write_assets(Path(app.outdir) / "_static")


def setup(app) -> dict:
    app.connect("build-finished", _write_assets)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
