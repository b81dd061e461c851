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
from .cmp import NodeComparison, compare
from .compile import Compiled, CompileError, compile
from .engine import (
    OPS,
    AnomalyError,
    ArrayMath,
    FloatMath,
    Node,
    NodeMath,
    Op,
    detect_anomaly,
    enable_grad,
    gradients,
    is_grad_enabled,
    no_grad,
)
from .functional import grad, value_and_grad
from .parse import ParseError, parse
from .tensor import (
    Tensor,
    concatenate,
    dense,
    maximum,
    minimum,
    squared_error,
    stack,
    unbroadcast,
    where,
)
from .value import Value, dot, sum_values

__all__ = [
    "OPS",
    "AnomalyError",
    "ArrayMath",
    "Comparison",
    "CompileError",
    "Compiled",
    "FloatMath",
    "GradcheckError",
    "GradientReport",
    "GradientRow",
    "Node",
    "NodeComparison",
    "NodeMath",
    "Op",
    "ParseError",
    "Tensor",
    "Value",
    "compare",
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
    "unbroadcast",
    "value_and_grad",
    "where",
]
