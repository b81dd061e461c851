"""The one error of compile."""

from __future__ import annotations


class CompileError(RuntimeError):
    """The function does something a trace cannot replay faithfully (raised at its first call,
    naming the line and what to write instead), or the self-check found the compiled step
    differing from the eager one (raised at that call, or at its first backward)."""


# Tracebacks name it where a user imports it from, not the file it is defined in.
CompileError.__module__ = "backproplab"
