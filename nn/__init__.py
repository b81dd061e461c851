"""Neural networks on the autograd engine: modules, losses, optimizers, training.

``nn.Linear`` and ``nn.MLP`` are the Tensor modules with the configurable MLP's API,
``nn.Sequential`` with ``nn.Tanh()``, ``nn.ReLU()`` and ``nn.Sigmoid()`` PyTorch's way of writing
the same; the scalar modules on Values (micrograd's ``MLP(nin, nouts)``) are in ``nn.scalar``.
"""

from . import datasets, scalar
from .functional import ACTIVATIONS, activate
from .layers import MLP, Linear
from .losses import (
    LOSSES,
    binary_cross_entropy,
    cross_entropy,
    get_loss,
    hinge,
    mse,
    sum_squared_error,
)
from .module import Module, StateError
from .optim import SGD, Adam, Optimizer
from .sequential import ReLU, Sequential, Sigmoid, Tanh
from .trainer import MLPTrainer

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "MLP",
    "SGD",
    "Adam",
    "Linear",
    "MLPTrainer",
    "Module",
    "Optimizer",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "StateError",
    "Tanh",
    "activate",
    "binary_cross_entropy",
    "cross_entropy",
    "datasets",
    "get_loss",
    "hinge",
    "mse",
    "scalar",
    "sum_squared_error",
]
