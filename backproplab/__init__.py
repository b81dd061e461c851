"""backproplab: a small autograd engine to learn, teach and check backpropagation.

The everyday API is here: ``from backproplab import Value, Tensor, grad, no_grad``. The networks
are ``import backproplab.nn as nn``; pictures and the command line are ``backproplab.viz``.
The three packages live at the top of the repository (``autograd/``, ``nn/``, ``viz/``) and
install under this one name, so nothing clashes with other packages called ``autograd`` or ``nn``.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .autograd import *  # noqa: F403 - the front door re-exports the engine's public API
from .autograd import __all__ as _engine_api
from .autograd.hints import module_attribute_error
from .autograd.seeding import manual_seed

try:
    __version__ = version("backproplab")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", "manual_seed", *_engine_api]


def __getattr__(name: str) -> Any:
    # backproplab.nn and backproplab.viz on first use, as `import backproplab.nn` would: the
    # front door stays light (viz draws with graphviz and matplotlib only when asked)
    if name in ("nn", "viz"):
        return import_module(f".{name}", __name__)
    # torch.cat and the like: ours, or the near miss
    raise module_attribute_error(__name__, __dir__(), name)


def __dir__() -> list[str]:
    # the public names and the three packages, the lazy two included (not typing's Any ...)
    dunders = [name for name in globals() if name.startswith("__")]
    return sorted({*__all__, "autograd", "nn", "viz", *dunders})
