"""Errors of compile: what a trace refuses, and why."""

from __future__ import annotations


class CompileError(RuntimeError):
    """The function does something a trace cannot replay faithfully (raised while tracing)."""


_CONTROL_FLOW = (
    "compile traces the function once and replays the ops it recorded, so a Python decision "
    "taken on a traced value ({what}) would be frozen into every later call. Inside a "
    "compiled function choose with where(cond, a, b), maximum or minimum, keep the decision "
    "outside it, or call the function eagerly (without @compile)"
)


def _refuse(what: str) -> CompileError:
    return CompileError(_CONTROL_FLOW.format(what=what))
