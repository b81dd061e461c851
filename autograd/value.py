"""Value: a scalar (a Python float) that records the operations that made it."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any, Union

from . import engine
from .engine import Node, Op, check_forward, record
from .maths import NodeMath, ScalarMath
from .ops import (
    Abs,
    Add,
    Div,
    Dot,
    Exp,
    Log,
    Mul,
    Neg,
    Pow,
    PowV,
    ReLU,
    Sigmoid,
    Sqrt,
    Sub,
    SumValues,
    Tanh,
)

__all__ = ["Value", "dot", "sum_values"]

Number = Union[int, float]  # noqa: UP007 - runtime aliases
Operand = Union["Value", int, float]

_new = object.__new__


class Value(Node):
    """A scalar in a computation graph: ``.data`` is its float, ``.grad`` d(root)/d(self).

    >>> a = Value(2.0, label="a")
    >>> b = a * a + a
    >>> b.backward()
    >>> a.grad
    5.0
    """

    __slots__ = ("label",)

    math = ScalarMath
    node_math = NodeMath
    data: float
    grad: Any  # a float, or a Value after backward(create_graph=True)
    label: str

    def __init__(self, data: Number, label: str = "", requires_grad: bool = True) -> None:
        """Make a leaf. ``requires_grad=False`` marks a constant: it gets no gradient.

        Raises TypeError when ``data`` is not a real number (a Tensor included).
        """
        self.data = _to_float(data)
        self.grad = 0.0
        self.label = label
        self._init_leaf(requires_grad)

    @classmethod
    def constant(cls, data: Number, label: str = "") -> Value:
        """Make a Value that never needs a gradient (costs no backward work)."""
        return cls(data, label, requires_grad=False)

    @staticmethod
    def apply(op: type[Op], *inputs: Operand, saved: Sequence[Any] = ()) -> Value:
        """Record ``op`` on Value inputs: how a user's own op (a subclass of Op) is called."""
        return _apply(op, tuple(_lift(x, op) for x in inputs), tuple(saved))

    # -- the graph's view --------------------------------------------------------------------

    def _seed(self, grad: Any, create_graph: bool = False, shared: bool = False) -> Any:
        seed = 1.0 if grad is None else _to_float(grad.data if isinstance(grad, Value) else grad)
        return Value(seed, requires_grad=False) if create_graph else seed

    @staticmethod
    def zeros_like(x: Value, create_graph: bool) -> Any:
        """A zero gradient for x (a float, or a constant Value when the pass is recorded)."""
        return Value(0.0, requires_grad=False) if create_graph else 0.0

    def zero_grad(self) -> None:
        """Reset the gradient to 0.0 (a recorded gradient's graph is dropped with it)."""
        self.grad = 0.0

    def detach(self) -> Value:
        """Return a new leaf with the same data and no history."""
        return Value(self.data, self.label)

    def item(self) -> float:
        """Return the data as a float."""
        return self.data

    def __float__(self) -> float:
        return self.data

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        grad = self.grad.data if isinstance(self.grad, Value) else self.grad
        return f"Value(data={self.data:.6g}, grad={grad:.6g}{label})"

    # -- arithmetic ----------------------------------------------------------------------------
    # Add, Sub, Mul skip the generic path: they are most of every scalar graph's nodes.

    def __add__(self, other: Operand) -> Value:
        o = other if other.__class__ is Value else _lift(other, Add)
        return _binary(self.data + o.data, self, o, Add)  # type: ignore[union-attr]

    def __radd__(self, other: Operand) -> Value:
        o = _lift(other, Add)
        return _binary(o.data + self.data, o, self, Add)

    def __sub__(self, other: Operand) -> Value:
        o = other if other.__class__ is Value else _lift(other, Sub)
        return _binary(self.data - o.data, self, o, Sub)  # type: ignore[union-attr]

    def __rsub__(self, other: Operand) -> Value:
        o = _lift(other, Sub)
        return _binary(o.data - self.data, o, self, Sub)

    def __mul__(self, other: Operand) -> Value:
        o = other if other.__class__ is Value else _lift(other, Mul)
        return _binary(self.data * o.data, self, o, Mul)  # type: ignore[union-attr]

    def __rmul__(self, other: Operand) -> Value:
        o = _lift(other, Mul)
        return _binary(o.data * self.data, o, self, Mul)

    def __truediv__(self, other: Operand) -> Value:
        return _apply(Div, (self, _lift(other, Div)))

    def __rtruediv__(self, other: Operand) -> Value:
        return _apply(Div, (_lift(other, Div), self))

    def __pow__(self, other: Operand) -> Value:
        if isinstance(other, Value):
            return _apply(PowV, (self, other))
        return _unary(Pow, self, (_to_float(other, "**"),))

    def __rpow__(self, other: Operand) -> Value:
        return _apply(PowV, (_lift(other, PowV), self))

    def __neg__(self) -> Value:
        return _unary(Neg, self)

    def __pos__(self) -> Value:
        return self

    # Comparisons look at the data and give plain bools; == stays identity so Values can be
    # dict keys and set members, as the engine's bookkeeping needs.
    def __lt__(self, other: Operand) -> bool:
        return self.data < _data(other)

    def __le__(self, other: Operand) -> bool:
        return self.data <= _data(other)

    def __gt__(self, other: Operand) -> bool:
        return self.data > _data(other)

    def __ge__(self, other: Operand) -> bool:
        return self.data >= _data(other)

    __hash__ = Node.__hash__

    # -- functions -------------------------------------------------------------------------------

    def exp(self) -> Value:
        """Return e ** self."""
        return _unary(Exp, self)

    def log(self) -> Value:
        """Return the natural log. Raises ValueError for data <= 0."""
        return _unary(Log, self)

    def tanh(self) -> Value:
        """Return tanh(self)."""
        return _unary(Tanh, self)

    def sigmoid(self) -> Value:
        """Return 1 / (1 + exp(-self)), stable for any magnitude."""
        return _unary(Sigmoid, self)

    def relu(self) -> Value:
        """Return max(self, 0); its gradient at 0 is 0."""
        return _unary(ReLU, self)

    def abs(self) -> Value:
        """Return |self|; its gradient at 0 is 0."""
        return _unary(Abs, self)

    def sqrt(self) -> Value:
        """Return the square root. Raises ValueError for data < 0."""
        return _unary(Sqrt, self)

    def maximum(self, other: Operand) -> Value:
        """Return the larger of self and other (ties share the gradient)."""
        from .ops import Maximum

        return _apply(Maximum, (self, _lift(other, Maximum)))

    def minimum(self, other: Operand) -> Value:
        """Return the smaller of self and other (ties share the gradient)."""
        from .ops import Minimum

        return _apply(Minimum, (self, _lift(other, Minimum)))


def sum_values(values: Iterable[Operand]) -> Value:
    """Return the sum of many Values as one node (Python's sum() would make a chain of n adds)."""
    xs = tuple(_lift(v, SumValues) for v in values)
    if not xs:
        raise ValueError("sum_values() needs at least one value")
    return _apply(SumValues, xs)


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


def _binary(data: float, a: Value, b: Value, op: type[Op]) -> Value:
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out.label = ""
    out._g = None
    if engine._grad_enabled and (a.requires_grad or b.requires_grad):
        out.p0 = a
        out.p1 = b
        out.op = op
        out.requires_grad = True
    else:
        out.p0 = out.p1 = None
        out.op = None
        out.requires_grad = False
    out.pn = ()
    out.saved = ()
    if engine._anomaly:
        check_forward(op, data)
    return out


def _unary(op: type[Op], x: Value, saved: tuple[Any, ...] = ()) -> Value:
    data = op.forward(ScalarMath, x.data, *saved) if saved else op.forward(ScalarMath, x.data)
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out.label = ""
    out._g = None
    out.saved = saved
    out.p1 = None
    out.pn = ()
    if x.requires_grad and engine._grad_enabled:
        out.p0 = x
        out.op = op
        out.requires_grad = True
    else:
        out.p0 = None
        out.op = None
        out.requires_grad = False
    if engine._anomaly:
        check_forward(op, data)
    return out


def _apply(op: type[Op], parents: tuple[Value, ...], saved: tuple[Any, ...] = ()) -> Value:
    data = op.forward(ScalarMath, *[p.data for p in parents], *saved)
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out.label = ""
    out._g = None
    record(out, op, parents, saved)
    return out


def _lift(x: Any, op: type[Op]) -> Value:
    if x.__class__ is Value:
        return x  # type: ignore[no-any-return]
    if isinstance(x, Value):
        return x
    if isinstance(x, Node):
        raise TypeError(
            f"cannot mix a Value and a {type(x).__name__} in one op ({op.name}): "
            "use Tensor for both, or .item() to take the scalar out"
        )
    # A constant, built without __init__'s checks (_to_float did them), and with Node._init_leaf's
    # fields written out: a call less on every op that has a number for an operand.
    c = _new(Value)
    c.data = _to_float(x, op.name)
    c.grad = 0.0
    c.label = ""
    c.p0 = c.p1 = None
    c.pn = ()
    c.op = None
    c.saved = ()
    c.requires_grad = False
    c._g = None
    return c


def _data(x: Any) -> float:
    return x.data if isinstance(x, Value) else _to_float(x)


def _to_float(x: Any, where: str = "Value") -> float:
    if x.__class__ is float:
        return x  # type: ignore[no-any-return]
    if isinstance(x, numbers.Real):
        return float(x)
    if isinstance(x, Node):
        raise TypeError(f"cannot mix a Value and a {type(x).__name__} in one op ({where})")
    if getattr(x, "shape", None) == ():  # a 0-d NumPy array
        return float(x)
    raise TypeError(f"{where} needs a real number, got {type(x).__name__}: {x!r:.60}")
