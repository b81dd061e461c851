"""A small autograd engine: scalar Values and NumPy Tensors over one iterative backward pass."""

from .check import (
    Comparison,
    GradcheckError,
    GradientReport,
    GradientRow,
    compare_gradients,
    gradcheck,
    numerical_gradient,
)
from .compile import Compiled, CompileError, compile
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
from .functional import grad, value_and_grad
from .parse import ParseError, parse
from .tensor import Tensor, concatenate, dense, maximum, minimum, squared_error, stack, where
from .value import Value, dot, sum_values

__all__ = [
    "OPS",
    "AnomalyError",
    "Comparison",
    "CompileError",
    "Compiled",
    "GradcheckError",
    "GradientReport",
    "GradientRow",
    "Node",
    "Op",
    "ParseError",
    "Tensor",
    "Value",
    "compare_gradients",
    "compile",
    "concatenate",
    "dense",
    "detect_anomaly",
    "dot",
    "enable_grad",
    "grad",
    "gradcheck",
    "gradients",
    "is_grad_enabled",
    "maximum",
    "minimum",
    "no_grad",
    "numerical_gradient",
    "parse",
    "squared_error",
    "stack",
    "sum_values",
    "value_and_grad",
    "where",
]
