"""Argument types and the two errors shared by the ``backproplab`` subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["OutputError", "UsageError", "float_where", "int_from"]


class UsageError(Exception):
    """Bad command-line arguments: main prints the message on one line and returns 2."""


class OutputError(Exception):
    """The pictures could not be written: main prints the message on one line and returns 1."""


def int_from(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer >= low (and < high when given), else a clear error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value >= high):
            bound = f">= {low}" if high is None else f"in [{low}, {high})"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse


def float_where(ok: Callable[[float], bool], requirement: str) -> Callable[[str], float]:
    """An argparse type: a number for which ``ok`` holds, else "must be <requirement>, got ..."."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value

    parse.__name__ = "number"
    return parse
