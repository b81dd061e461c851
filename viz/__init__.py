"""Pictures and the command line: plots of training runs and the ``backproplab`` CLI.

``viz.draw_graph`` and ``viz.render`` (from ``viz.graph``) draw computation graphs with Graphviz.
They are imported on first use, so that the rest of ``viz`` (the plots, ``backproplab demo``)
does not load the ``graphviz`` package it does not need.
"""

from __future__ import annotations

from typing import Any

__all__ = ["draw_graph", "render"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import graph

        return getattr(graph, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
