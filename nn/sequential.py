"""``nn.Sequential`` and the activation modules ``nn.Tanh``, ``nn.ReLU``, ``nn.Sigmoid``, as in
PyTorch: a network written as the list of what the input goes through."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from backproplab.autograd import Tensor, Value, no_grad

from .functional import activate
from .module import Module

__all__ = ["ReLU", "Sequential", "Sigmoid", "Tanh"]


class _Activation(Module):
    """An activation as a module of its own, with no parameters."""

    applied_activation = "none"  # what the trainer reads to know a sigmoid output

    def forward(self, x: Any) -> Any:
        """Apply the activation to a Value or a Tensor (anything else becomes a constant Tensor)."""
        if not isinstance(x, (Value, Tensor)):
            x = Tensor(x)
        return activate(x, self.applied_activation)


class Tanh(_Activation):
    """``tanh(x)``, elementwise: ``nn.Tanh()(x)`` is ``x.tanh()``."""

    applied_activation = "tanh"


class ReLU(_Activation):
    """``max(x, 0)``, elementwise: ``nn.ReLU()(x)`` is ``x.relu()``."""

    applied_activation = "relu"


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``, elementwise: ``nn.Sigmoid()(x)`` is ``x.sigmoid()``."""

    applied_activation = "sigmoid"


class Sequential(Module):
    """Modules applied one after the other: ``Sequential(a, b, c)(x)`` is ``c(b(a(x)))``.

    ``nn.Linear`` keeps its write-up's default activation (sigmoid), so a layer meant to be bare is
    written ``nn.Linear(2, 16, "none")``::

        model = nn.Sequential(nn.Linear(2, 16, "none"), nn.Tanh(), nn.Linear(16, 1, "none"))

    The modules are ``self.layers`` (parameters ``layers.0.weight``, ``layers.0.bias``, ...), so
    ``MLPTrainer`` reads the input width from the first. ``model[i]`` and ``len(model)`` work.

    Raises:
        TypeError: an argument is not an ``nn.Module``, or none is given.
        ValueError: a Linear that applies an activation of its own is followed by an activation
            module (``nn.Linear(2, 16)`` then ``nn.Tanh()`` would apply sigmoid, then tanh).
    """

    def __init__(self, *modules: Module) -> None:
        if not modules:
            raise TypeError("Sequential takes at least one module, got none")
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential's argument {i} is not an nn.Module: {m!r:.80}")
        for i, (m, after) in enumerate(itertools.pairwise(modules)):
            own = getattr(m, "applied_activation", "none")
            if not isinstance(m, _Activation) and own != "none" and isinstance(after, _Activation):
                raise ValueError(
                    f"Sequential's module {i}, {m!r}, applies {own} itself and is followed by "
                    f"{type(after).__name__}(): nn.Linear's activation defaults to sigmoid (its "
                    f"write-up's), so write it with activation 'none' to apply "
                    f"{after.applied_activation} alone"
                )
        self.layers = list(modules)

    def forward(self, x: Any) -> Any:
        """Run ``x`` through every module in turn and return the last one's output."""
        for m in self.layers:
            x = m(x)
        return x

    def predict(self, x: Any) -> np.ndarray:
        """Return ``forward(x)`` as a NumPy array, recording no graph (in the current mode)."""
        with no_grad():
            return np.array(self.forward(x).data)

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)
