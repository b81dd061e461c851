"""compile: a training step traced once and replayed as straight-line code a learner can print.

One file per stage: ``trace`` (the traced run), ``emit`` (symbolic values that write code),
``forward`` and ``backward`` (the generated passes), ``fold`` (a repeated scalar block as a
loop), ``source`` (lines into functions), ``program`` (what one trace's code reads), ``guard``
(which trace a call replays), ``api`` (the public ``compile`` and ``Compiled``).
"""

from .api import MAX_OPS, MAX_TRACES, Compiled, compile
from .errors import CompileError
from .fold import FOLD_OPS

__all__ = ["FOLD_OPS", "MAX_OPS", "MAX_TRACES", "CompileError", "Compiled", "compile"]
