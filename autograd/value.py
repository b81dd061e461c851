"""Value: a scalar (a Python float) that records the operations that made it."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Union

from .engine import FloatMath, Node, Op, record, tracing
from .hints import attribute_error, records
from .ops import (
    Abs,
    Add,
    AddNumber,
    Cos,
    Div,
    DivNumber,
    Dot,
    Exp,
    Log,
    Maximum,
    Minimum,
    Mul,
    MulNumber,
    Neg,
    NumberDiv,
    NumberPow,
    NumberSub,
    Pow,
    PowV,
    ReLU,
    Sigmoid,
    Sin,
    Sqrt,
    Sub,
    SumValues,
    Tanh,
    kept_param,
)

__all__ = ["Value", "dot", "sum_values"]

Number = Union[int, float]  # noqa: UP007 - runtime aliases
Operand = Union["Value", int, float]


class Value(Node):
    """A scalar in a computation graph: ``.data`` is its float, ``.grad`` d(root)/d(self).

    >>> a = Value(2.0, label="a")
    >>> b = a * a + a
    >>> b.backward()
    >>> a.grad
    5.0
    """

    __slots__ = ()

    xp = FloatMath
    empty_grad = 0.0
    # ndarray * Value: NumPy hands the operation to Value.__rmul__, which refuses an array,
    # rather than making an object array of Values.
    __array_ufunc__ = None

    def __init__(self, data: Number, label: str = "", requires_grad: bool = True) -> None:
        """Make a leaf. ``requires_grad=False`` marks a constant: it gets no gradient.

        Raises TypeError when ``data`` is not a real number (a Tensor included), OverflowError
        naming it when it is too large for a float.
        """
        self._leaf(_to_float(data), label, requires_grad)
        self.grad = 0.0
        if (trace := tracing.get()) is not None:  # compile is tracing: a leaf made inside
            trace.leaf(self, None)

    @classmethod
    def constant(cls, data: Number, label: str = "") -> Value:
        """Make a Value that never needs a gradient (costs no backward work)."""
        return cls(data, label, requires_grad=False)

    @staticmethod
    def apply(op: type[Op], *inputs: Operand, params: Sequence[Any] = ()) -> Value:
        """Record ``op`` on Value inputs: how a user's own op (a subclass of Op) is called."""
        kept = tuple([kept_param(p) for p in params])  # an array or list param is copied
        return _apply(op, tuple(_lift(x, op) for x in inputs), kept)

    # -- the graph's view --------------------------------------------------------------------

    def _seed(self, grad: Any, create_graph: bool) -> Any:
        if not create_graph and (trace := tracing.get()) is not None:
            raise trace.backward_inside()  # its gradients would be the trace's, never replayed
        seed = 1.0 if grad is None else _to_float(grad.data if isinstance(grad, Value) else grad)
        return Value(seed, requires_grad=False) if create_graph else seed

    def fit_gradient(self, g: Any, op: type[Op], i: int) -> Any:
        """Return ``g`` as this Value's gradient; raise TypeError for an array or anything else."""
        if g.__class__ is float or isinstance(g, (Value, int, float)):
            return g
        shape = getattr(g, "shape", None)
        raise TypeError(
            f"the backward of {op.name} returned a {type(g).__name__}"
            f"{f' of shape {shape}' if shape is not None else ''} for input {i}, a Value "
            "(shape ()): a Value's gradient must be a number"
        )

    @staticmethod
    def zeros_like(x: Value, create_graph: bool) -> Any:
        """A zero gradient for x (a float, or a constant Value when the pass is recorded)."""
        return Value(0.0, requires_grad=False) if create_graph else 0.0

    def zero_grad(self) -> None:
        """Reset the gradient to 0.0 (a recorded gradient's graph is dropped with it)."""
        if (trace := tracing.get()) is not None:  # a replay would never reset it
            raise trace.side_effect("zero_grad()")
        self.grad = 0.0

    def detach(self) -> Value:
        """Return a new leaf with the same data and no history."""
        leaf = Value(self._data, self.label)
        if (trace := tracing.get()) is not None:  # compile reads it from self on every call
            trace.leaf(leaf, self)
        return leaf

    # These read .data, not ._data: inside a compile trace a number read is refused there.
    def item(self) -> float:
        """Return the data as a float."""
        return self.data  # type: ignore[no-any-return]

    def __float__(self) -> float:
        return self.data  # type: ignore[no-any-return]

    def __bool__(self) -> bool:
        """The truth of the number, as PyTorch's one-element tensors: False only for 0."""
        return bool(self.data)

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        grad = self.grad.data if isinstance(self.grad, Value) else self.grad
        return f"Value(data={self.data:.6g}, grad={grad:.6g}{label})"

    if not TYPE_CHECKING:  # mypy would take every attribute to exist

        def __getattr__(self, name: str) -> Any:
            # Only a name the class lacks gets here: ours when it is PyTorch's, or a near miss
            raise attribute_error(self, name)

    # -- arithmetic ----------------------------------------------------------------------------
    # A number operand is a param of the op (x + 2 is one node), never a leaf of its own.

    @records(Add, AddNumber)
    def __add__(self, other: Operand) -> Value:
        """Return self + other (other a Value or a number)."""
        if isinstance(other, Value):
            return _binary(Add, self, other)
        return _unary(AddNumber, self, _to_float(other, "+"))

    __radd__ = __add__  # c + x is x + c, exactly

    @records(Sub, AddNumber)
    def __sub__(self, other: Operand) -> Value:
        """Return self - other."""
        if isinstance(other, Value):
            return _binary(Sub, self, other)
        return _unary(AddNumber, self, -_to_float(other, "-"))

    @records(NumberSub)
    def __rsub__(self, other: Operand) -> Value:
        """Return other - self, for a number other."""
        return _unary(NumberSub, self, _to_float(other, "-"))

    @records(Mul, MulNumber)
    def __mul__(self, other: Operand) -> Value:
        """Return self * other (other a Value or a number)."""
        if isinstance(other, Value):
            return _binary(Mul, self, other)
        return _unary(MulNumber, self, _to_float(other, "*"))

    __rmul__ = __mul__  # c * x is x * c, exactly

    @records(Div, DivNumber)
    def __truediv__(self, other: Operand) -> Value:
        """Return self / other."""
        if isinstance(other, Value):
            return _binary(Div, self, other)
        return _unary(DivNumber, self, _to_float(other, "/"))

    @records(NumberDiv)
    def __rtruediv__(self, other: Operand) -> Value:
        """Return other / self, for a number other."""
        return _unary(NumberDiv, self, _to_float(other, "/"))

    @records(Pow, PowV)
    def __pow__(self, other: Operand) -> Value:
        """Return self ** other."""
        if isinstance(other, Value):
            return _binary(PowV, self, other)
        return _unary(Pow, self, _to_float(other, "**"))

    @records(NumberPow)
    def __rpow__(self, other: Operand) -> Value:
        """Return other ** self, for a number other."""
        return _unary(NumberPow, self, _to_float(other, "**"))

    @records(Neg)
    def __neg__(self) -> Value:
        """Return -self."""
        return _unary(Neg, self)

    def __pos__(self) -> Value:
        return self

    # Comparisons look at the data and give plain bools; == stays identity so Values can be
    # dict keys and set members, as the engine's bookkeeping needs.
    def __lt__(self, other: Operand) -> bool:
        return self.data < _data(other)  # type: ignore[no-any-return]

    def __le__(self, other: Operand) -> bool:
        return self.data <= _data(other)  # type: ignore[no-any-return]

    def __gt__(self, other: Operand) -> bool:
        return self.data > _data(other)  # type: ignore[no-any-return]

    def __ge__(self, other: Operand) -> bool:
        return self.data >= _data(other)  # type: ignore[no-any-return]

    __hash__ = Node.__hash__

    # -- functions -------------------------------------------------------------------------------

    @records(Exp)
    def exp(self) -> Value:
        """Return e ** self."""
        return _unary(Exp, self)

    @records(Log)
    def log(self) -> Value:
        """Return the natural log. Raises ValueError for data <= 0."""
        return _unary(Log, self)

    @records(Tanh)
    def tanh(self) -> Value:
        """Return tanh(self)."""
        return _unary(Tanh, self)

    @records(Sin)
    def sin(self) -> Value:
        """Return sin(self); its derivative is cos(self)."""
        return _unary(Sin, self)

    @records(Cos)
    def cos(self) -> Value:
        """Return cos(self); its derivative is -sin(self)."""
        return _unary(Cos, self)

    @records(Sigmoid)
    def sigmoid(self) -> Value:
        """Return 1 / (1 + exp(-self)), stable for any magnitude."""
        return _unary(Sigmoid, self)

    @records(ReLU)
    def relu(self) -> Value:
        """Return max(self, 0); its gradient at 0 is 0, and NaN stays NaN."""
        return _unary(ReLU, self)

    @records(Abs)
    def abs(self) -> Value:
        """Return |self|; its gradient at 0 is 0."""
        return _unary(Abs, self)

    @records(Sqrt)
    def sqrt(self) -> Value:
        """Return the square root. Raises ValueError for data < 0."""
        return _unary(Sqrt, self)

    @records(Maximum)
    def maximum(self, other: Operand) -> Value:
        """Return the larger of self and other (ties share the gradient; NaN wins)."""
        return _apply(Maximum, (self, _lift(other, Maximum)))

    @records(Minimum)
    def minimum(self, other: Operand) -> Value:
        """Return the smaller of self and other (ties share the gradient; NaN wins)."""
        return _apply(Minimum, (self, _lift(other, Minimum)))


@records(SumValues)
def sum_values(values: Iterable[Operand]) -> Value:
    """Return the sum of many Values as one node (Python's sum() would make a chain of n adds)."""
    xs = tuple(_lift(v, SumValues) for v in values)
    if not xs:
        raise ValueError("sum_values() needs at least one value")
    return _apply(SumValues, xs)


@records(Dot)
def dot(ws: Sequence[Operand], xs: Sequence[Operand]) -> Value:
    """Return w_1 x_1 + ... + w_n x_n as one node: a neuron's weighted sum at the cost of one op.

    Raises ValueError when the two sequences differ in length.
    """
    if len(ws) != len(xs):
        raise ValueError(f"dot() needs sequences of equal length, got {len(ws)} and {len(xs)}")
    if not ws:
        raise ValueError("dot() needs at least one pair")
    return _apply(Dot, tuple(_lift(v, Dot) for v in (*ws, *xs)))


# --- building nodes -------------------------------------------------------------------------------


# Run the op forward on the inputs' data and record the result (engine.record). The one- and
# two-input forms are most of every graph: they pass the data without building a list.


def _unary(op: type[Op], x: Value, *params: Any) -> Value:
    return record(Value, op.forward(FloatMath, x._data, *params), op, (x,), params)  # type: ignore[no-any-return]


def _binary(op: type[Op], a: Value, b: Value) -> Value:
    return record(Value, op.forward(FloatMath, a._data, b._data), op, (a, b))  # type: ignore[no-any-return]


def _apply(op: type[Op], parents: tuple[Value, ...], params: tuple[Any, ...] = ()) -> Value:
    data = op.forward(FloatMath, *[p._data for p in parents], *params)
    return record(Value, data, op, parents, params)  # type: ignore[no-any-return]


def _lift(x: Any, op: type[Op]) -> Value:
    """x as a Value: a constant leaf for a number (in n-ary ops, whose inputs are all nodes)."""
    if isinstance(x, Value):
        return x
    return Value(_to_float(x, op.name), requires_grad=False)


def _data(x: Any) -> float:
    return x.data if isinstance(x, Value) else _to_float(x)


def _to_float(x: Any, where: str = "Value") -> float:
    if x.__class__ is float:
        return x  # type: ignore[no-any-return]
    if isinstance(x, Node):
        raise TypeError(
            f"cannot mix a Value and a {type(x).__name__} in one op ({where}): "
            "use Tensor for both, or .item() to take the scalar out"
        )
    if isinstance(x, numbers.Real) or getattr(x, "shape", None) == ():  # a 0-d array too
        try:
            return float(x)  # type: ignore[arg-type]
        except OverflowError:
            digits = str(x)
            shown = digits if len(digits) <= 20 else f"{digits[:8]}...{digits[-4:]}"
            raise OverflowError(
                f"{where}: {shown} ({len(digits.lstrip('-'))} digits) is too large for a float"
            ) from None
    raise TypeError(f"{where} needs a real number, got {type(x).__name__}: {x!r:.60}")
