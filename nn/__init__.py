"""Neural networks on the autograd engine: modules, losses, optimizers, training."""

from .module import Module, StateError

__all__ = ["Module", "StateError"]
