"""Argument types for the command line: each turns a string into a checked value or raises
``argparse.ArgumentTypeError`` with a message that says what was expected."""

from __future__ import annotations

import argparse
import math
from typing import Callable, TypeVar

Number = TypeVar("Number", int, float)


def _checked(text: str, convert: Callable[[str], Number], expected: str,
             valid: Callable[[Number], bool], requirement: str) -> Number:
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not valid(value):
        raise argparse.ArgumentTypeError(f"{requirement}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _checked(text, int, "a positive integer", lambda v: v >= 1,
                    "must be a positive integer")


def non_negative_int(text: str) -> int:
    return _checked(text, int, "a non-negative integer", lambda v: v >= 0, "must be >= 0")


def positive_float(text: str) -> float:
    return _checked(text, float, "a number", lambda v: v > 0 and math.isfinite(v),
                    "must be a positive number")


def unit_float(text: str) -> float:
    return _checked(text, float, "a number", lambda v: 0.0 <= v <= 1.0, "must lie in [0, 1]")


def non_negative_float(text: str) -> float:
    return _checked(text, float, "a number", lambda v: v >= 0 and math.isfinite(v),
                    "must be a number >= 0")


def on_off(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("on", "true", "yes", "1"):
        return True
    if lowered in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")
