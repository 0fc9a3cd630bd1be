"""BibTeX for the landing page's "How to cite this book", generated from ``CITATION.cff``.

``CITATION.cff`` is the one place the citation is written (``cffconvert --validate`` checks
it in the tests); :func:`bibtex_from_cff` turns its top level into a ``@software`` entry,
and :mod:`fwbook.cli.book_config` puts that into the book at build time.
"""

from __future__ import annotations

import re
from pathlib import Path


def _author(person: dict) -> str:
    if "name" in person:  # an entity ("The fwbook authors"): braces keep BibTeX from splitting it
        return "{" + person["name"] + "}"
    given = person.get("given-names", "")
    family = person.get("family-names", "")
    return f"{family}, {given}".strip(", ")


def _key(cff: dict) -> str:
    family = cff["authors"][0].get("family-names", "")  # an entity author has none
    year = str(cff.get("date-released", ""))[:4]
    words = [re.sub(r"[^a-z0-9]", "", word) for word in cff["title"].lower().split()[:2]]
    return re.sub(r"[^a-z0-9]", "", family.lower()) + year + "".join(words)


def bibtex_from_cff(path: Path | str) -> str:
    """A ``@software`` BibTeX entry for the CFF file at ``path`` (ends with a newline).

    Raises:
        ValueError: when the file lacks ``title`` or ``authors``.
    """
    import yaml

    cff = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    missing = [key for key in ("title", "authors") if not cff.get(key)]
    if missing:
        raise ValueError(f"{path}: no {', '.join(missing)}; a citation needs both")
    fields = [("title", "{" + cff["title"] + "}"),
              ("author", " and ".join(_author(person) for person in cff["authors"]))]
    for cff_key, bib_key in (("version", "version"), ("license", "note")):
        if cff.get(cff_key):
            value = cff[cff_key] if cff_key != "license" else f"Code: {cff[cff_key]} licence"
            fields.append((bib_key, str(value)))
    if cff.get("date-released"):
        fields.append(("year", str(cff["date-released"])[:4]))
    if cff.get("repository-code") or cff.get("url"):
        fields.append(("url", cff.get("repository-code") or cff.get("url")))
    body = ",\n".join(f"  {key:<7} = {{{value}}}" for key, value in fields)
    return f"@software{{{_key(cff)},\n{body}\n}}\n"
