"""The one smoke-profile book build that tests/test_book.py and tests/test_book_browser.py share.

A session-scoped fixture (import it into a test module to use it): the book is built once per
test session, into a temporary ``_build``, with the real :func:`fwbook.cli.book.build`.
"""

from __future__ import annotations

import pytest

from fwbook.cli import book
from fwbook.cli import book_request

ROOT = book_request.ROOT
TOC_ENTRIES = book_request.toc_entries(ROOT)


def source_tree_snapshot() -> dict:
    """Every file under notebooks/ with its size and modification time."""
    return {path.name: (path.stat().st_size, path.stat().st_mtime_ns)
            for path in (ROOT / "notebooks").iterdir()}


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    output = tmp_path_factory.mktemp("book") / "_build"
    before = source_tree_snapshot()
    record = book.build(profile="smoke", seed=0, device="cpu", output_dir=output, quiet=True)
    record.source_tree_unchanged = source_tree_snapshot() == before
    print(f"\nbook build (smoke): chapters {record.chapter_seconds}, "
          f"render {record.render_seconds:.1f} s")
    return record
