"""Near misses on the command line: the hint a refused command or expression most likely needs."""

from __future__ import annotations

import difflib
import re

__all__ = ["expression_hint", "usage_hint"]

_CHOICE = re.compile(r"invalid choice: '(?P<got>[^']*)' \(choose from (?P<choices>.*)\)")
_BINDING = re.compile(r"(?<![\w=<>!])(?P<name>[A-Za-z_]\w*)\s*=(?!=)\s*(?P<value>[^\s,;)]+)")


def usage_hint(message: str) -> str:
    """What to add to argparse's error ``message``: "; did you mean 'check'?" for a near miss
    among the choices, the ``--var`` form for ``x=3`` given as an argument of its own, or ""."""
    choice = _CHOICE.search(message)
    if choice:
        # argparse lists the choices as 'a', 'b' (Python 3.12 drops the quotes)
        choices = [c.strip().strip("'") for c in choice["choices"].split(",")]
        near = difflib.get_close_matches(choice["got"], choices, n=1, cutoff=0.6)
        return f"; did you mean {near[0]!r}?" if near else ""
    if message.startswith("unrecognized arguments:"):
        return _bindings_hint(message.split(":", 1)[1])
    return ""


def expression_hint(text: str) -> str:
    """What to add to "cannot read the expression": how to write a value given inside the
    quoted expression (``"x**2 x=3"``), or ""."""
    return _bindings_hint(text)


def _bindings_hint(text: str) -> str:
    found = [(m["name"], m["value"]) for m in _BINDING.finditer(text)]
    if not found:
        return ""
    options = " ".join(f"--var {name}={value}" for name, value in found)
    return (
        f"; give each name's value with an option after the expression: {options} "
        "(--param for a parameter)"
    )
