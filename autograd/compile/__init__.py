"""compile: a training step traced once and replayed as one op of the graph, its code printable.

One file per stage: ``trace`` (the function run on stand-ins), ``entry`` (one trace: its
program, what it reads, how a call runs it), ``op`` (the compiled call as an op of the graph),
``guard`` (which trace a call replays), ``owners`` and ``state`` (the objects a function
reads: what a call compares, what the trace must leave unchanged), ``api`` (the public
``compile`` and ``Compiled``).
A Tensor trace is written out as straight-line NumPy code: ``emit`` (symbolic values that write
code), ``forward`` and ``backward`` (the generated passes), ``source`` (lines into functions),
``program`` (what one trace's code reads). A Value trace runs as batches of one op at one depth:
``scalar`` (the program and its description), ``scalar_graph`` (the traced graph read into
integer arrays: depths, uses, the engine's order) and ``scalar_build`` (the passes that build it).
"""

from .api import MAX_OPS, MAX_TRACES, Compiled, compile
from .errors import CompileError

__all__ = ["MAX_OPS", "MAX_TRACES", "CompileError", "Compiled", "compile"]
