"""Seed statistics: the one convention every table, figure and record summary uses.

The spread over seeds is the *sample* standard deviation (ddof = 1): the seeds are a sample of
the runs the configuration could have given. With fewer than two values it is undefined and
reported as ``None`` (shown as "n/a" by the chapters), never as 0.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

DDOF = 1


def summarize(values: Iterable[Optional[float]]) -> dict:
    """``n``, ``mean``, ``std`` (ddof = 1), ``min``, ``max`` of the values that are not None.

    ``mean``, ``min`` and ``max`` are None for no values, ``std`` for fewer than two.
    """
    kept = [float(value) for value in values if value is not None]
    n = len(kept)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    average = math.fsum(kept) / n
    std = (math.sqrt(math.fsum((v - average) ** 2 for v in kept) / (n - DDOF))
           if n > DDOF else None)
    return {"n": n, "mean": average, "std": std, "min": min(kept), "max": max(kept)}


def format_mean_std(summary: dict, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    """``"3.41 ± 0.52%"``-style text of a :func:`summarize` result (``"n/a"`` without values)."""
    if summary["mean"] is None:
        return "n/a"
    text = f"{summary['mean'] * scale:.{digits}f}"
    if summary["std"] is not None:
        text += f" ± {summary['std'] * scale:.{digits}f}"
    return text + unit


def aggregate(records: Iterable[dict], by: Sequence[str] = ("model", "hidden"),
              value: str = "test_error") -> list[dict]:
    """:func:`summarize` of ``value`` for every group of records sharing the fields ``by``.

    Records without ``value`` (diverged or unfinished runs) are left out. Returns one dict per
    group, sorted by its key: the ``by`` fields, ``n``, ``mean``, ``std``, ``min``, ``max`` and
    ``paths`` (the records behind the cell).
    """
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record.get(value) is not None:
            groups.setdefault(tuple(record.get(key) for key in by), []).append(record)
    return [{**dict(zip(by, key)), **summarize(member[value] for member in members),
             "paths": [member.get("path", "") for member in members]}
            for key, members in sorted(groups.items(), key=lambda item: tuple(map(str, item[0])))]
