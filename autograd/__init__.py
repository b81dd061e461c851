"""A small autograd engine: scalar Values and NumPy Tensors over one iterative backward pass."""

from .engine import (
    OPS,
    AnomalyError,
    Node,
    Op,
    detect_anomaly,
    enable_grad,
    gradients,
    is_grad_enabled,
    no_grad,
)
from .tensor import Tensor, concatenate, maximum, minimum, stack, where
from .value import Value, dot, sum_values

__all__ = [
    "OPS",
    "AnomalyError",
    "Node",
    "Op",
    "Tensor",
    "Value",
    "concatenate",
    "detect_anomaly",
    "dot",
    "enable_grad",
    "gradients",
    "is_grad_enabled",
    "maximum",
    "minimum",
    "no_grad",
    "stack",
    "sum_values",
    "where",
]
