"""Pictures and the command line: plots of training runs and the ``backproplab`` CLI.

``viz.draw_graph`` and ``viz.render`` (from ``viz.graph``) draw computation graphs with Graphviz;
``viz.play`` (from ``viz.player``) builds a page that plays a backward pass step by step.
They are imported on first use, so that the rest of ``viz`` (the plots, ``backproplab demo``)
does not load the ``graphviz`` package it does not need.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["draw_graph", "play", "render"]

_HOMES = {"draw_graph": "graph", "render": "graph", "play": "player"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # the lazy names too, so that dir() and a notebook's tab completion offer them
    modules = ["cli", "graph", "player", "plots"]
    return sorted({*globals(), *_HOMES, *modules})
