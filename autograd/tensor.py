"""Tensor: a NumPy array that records the operations that made it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from . import engine
from .engine import Node, Op, check_forward
from .maths import ArrayMath, NodeMath
from .ops import (
    ACTIVATIONS,
    Abs,
    Add,
    BroadcastTo,
    Concatenate,
    Dense,
    Div,
    Exp,
    Index,
    Log,
    LogSoftmax,
    LogSumExp,
    MatMul,
    Max,
    Maximum,
    Min,
    Minimum,
    Mul,
    Neg,
    Pow,
    PowV,
    ReLU,
    Reshape,
    Scatter,
    Sigmoid,
    Softmax,
    Sqrt,
    SquaredError,
    Sub,
    Sum,
    Tanh,
    Transpose,
    Where,
)

__all__ = [
    "Tensor",
    "concatenate",
    "dense",
    "maximum",
    "minimum",
    "squared_error",
    "stack",
    "where",
]

ArrayLike = Any  # whatever np.asarray accepts: numbers, nested lists, arrays
Operand = Union["Tensor", ArrayLike]
Axis = Union[int, tuple[int, ...], None]  # noqa: UP007 - a runtime alias; `|` needs 3.10 objects

_new = object.__new__
# sys.getrefcount(g) inside Tensor._accumulate when only the backward loop holds g: the loop's
# local, the parameter, and getrefcount's own argument.
_UNSHARED = 3
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# A NumPy scalar, not a 0-d array: immutable, so it can be shared, and a rule's first product
# with it (``g * (2 / n)``) costs a tenth of a 0-d array's.
_ONE = {dtype: dtype.type(1.0) for dtype in _FLOATS}


class Tensor(Node):
    """An array in a computation graph: ``.data`` is its ndarray, ``.grad`` d(root)/d(self).

    float64 by default; float32 data stays float32. NumPy broadcasting applies in every
    elementwise op, and a broadcast input's gradient comes back in that input's shape.

    >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    array([[2., 4.],
           [6., 8.]])
    """

    __slots__ = ("_spare", "name")

    math = ArrayMath
    node_math = NodeMath
    broadcasts = True
    # Let Tensor's reflected operators win over NumPy's: ndarray + Tensor gives a Tensor.
    __array_ufunc__ = None

    data: np.ndarray
    grad: Any  # None until a backward pass reaches it; then an ndarray (a Tensor if recorded)
    name: str
    _spare: np.ndarray | None  # the gradient array zero_grad() retired, freed by the next pass

    def __init__(
        self,
        data: ArrayLike,
        requires_grad: bool = False,
        name: str = "",
        dtype: Any = None,
    ) -> None:
        """Make a leaf from anything ``np.asarray`` takes.

        Raises TypeError for a Value, or for data that is not real numbers.
        """
        self.data = _to_array(data, dtype)
        self.grad = None
        self._spare = None
        self.name = name
        self._init_leaf(requires_grad)

    @staticmethod
    def apply(op: type[Op], *inputs: Operand, saved: Sequence[Any] = ()) -> Tensor:
        """Record ``op`` on Tensor inputs: how a user's own op (a subclass of Op) is called."""
        first = next((x for x in inputs if isinstance(x, Tensor)), None)
        return _apply(op, tuple(_lift(x, first, op) for x in inputs), tuple(saved))

    # -- the graph's view ------------------------------------------------------------------------

    def _seed(self, grad: Any, create_graph: bool = False, shared: bool = False) -> Any:
        if grad is None:
            if shared and not create_graph and self.data.shape == ():
                return _ONE[self.data.dtype]  # a training step's scalar loss: no allocation
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() on a Tensor of shape {self.shape} needs grad= of that shape: "
                    "only a single-element root has an implied gradient of 1"
                )
            seed = np.ones(self.data.shape, self.data.dtype)
        else:
            seed = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if seed.shape != self.shape:
                raise ValueError(
                    f"backward() got grad of shape {seed.shape} for a Tensor of shape {self.shape}"
                )
        return Tensor(seed) if create_graph else seed

    @staticmethod
    def zeros_like(x: Tensor, create_graph: bool) -> Any:
        """A zero gradient for x (an array, or a constant Tensor when the pass is recorded)."""
        zeros = np.zeros_like(x.data)
        return Tensor(zeros) if create_graph else zeros

    def zero_grad(self) -> None:
        """Reset the gradient to None before the next backward pass.

        The old array is released when the next pass delivers the new gradient, not now. Freeing
        a parameter-sized array at the end of every step makes the C allocator hand the memory
        back and fault it in again next step (about 360 page faults a step on seed 002's network,
        1.7x slower); releasing it later is the order hand-written NumPy frees in.
        """
        if self.op is None and self.grad.__class__ is np.ndarray:
            self._spare = self.grad
        self.grad = None

    def _accumulate(self, g: Any) -> None:
        """Take a gradient as a leaf: an array of its own, added into in place afterwards.

        Like PyTorch's AccumulateGrad, the first gradient is kept as it is when nothing else
        refers to it, and copied when it is a view or shared (``a + b`` hands both the same
        array), so that later passes may add into ``.grad`` without touching anyone else's.
        """
        cur = self.grad
        if cur is None:
            owned = (
                g.__class__ is np.ndarray
                and g.base is None
                and g.flags.writeable
                and sys.getrefcount(g) <= _UNSHARED
            )
            self.grad = g if owned else np.array(g, dtype=self.data.dtype)
            self._spare = None
        elif (
            cur.__class__ is np.ndarray
            and cur.flags.writeable
            and cur.shape == g.shape
            and cur.dtype == g.dtype
        ):
            cur += g  # no allocation: the parameters' gradients are the big arrays of a step
        else:
            self.grad = cur + g

    def detach(self) -> Tensor:
        """Return a new leaf sharing this data, with no history and no gradient."""
        return Tensor(self.data, name=self.name)

    # -- array facts ------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        """The data's shape."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """The number of elements."""
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        """float64 or float32."""
        return self.data.dtype

    def item(self) -> float:
        """Return the single element as a float. Raises ValueError when there are several."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a single-element Tensor, got shape {self.shape}")
        return self.data.item()  # type: ignore[no-any-return]

    def numpy(self) -> np.ndarray:
        """Return the data (not a copy)."""
        return self.data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, threshold=20, prefix="Tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        extra += f", name={self.name!r}" if self.name else ""
        return f"Tensor({body}{extra})"

    # -- arithmetic --------------------------------------------------------------------------------

    def __add__(self, other: Operand) -> Tensor:
        return _apply(Add, (self, _lift(other, self, Add)))

    def __radd__(self, other: Operand) -> Tensor:
        return _apply(Add, (_lift(other, self, Add), self))

    def __sub__(self, other: Operand) -> Tensor:
        return _apply(Sub, (self, _lift(other, self, Sub)))

    def __rsub__(self, other: Operand) -> Tensor:
        return _apply(Sub, (_lift(other, self, Sub), self))

    def __mul__(self, other: Operand) -> Tensor:
        return _apply(Mul, (self, _lift(other, self, Mul)))

    def __rmul__(self, other: Operand) -> Tensor:
        return _apply(Mul, (_lift(other, self, Mul), self))

    def __truediv__(self, other: Operand) -> Tensor:
        return _apply(Div, (self, _lift(other, self, Div)))

    def __rtruediv__(self, other: Operand) -> Tensor:
        return _apply(Div, (_lift(other, self, Div), self))

    def __matmul__(self, other: Operand) -> Tensor:
        return _apply(MatMul, (self, _lift(other, self, MatMul)))

    def __rmatmul__(self, other: Operand) -> Tensor:
        return _apply(MatMul, (_lift(other, self, MatMul), self))

    def __pow__(self, other: Operand) -> Tensor:
        if isinstance(other, Tensor):
            return _apply(PowV, (self, other))
        if isinstance(other, (int, float, np.number)):
            return _apply(Pow, (self,), (float(other),))
        return _apply(PowV, (self, _lift(other, self, PowV)))

    def __rpow__(self, other: Operand) -> Tensor:
        return _apply(PowV, (_lift(other, self, PowV), self))

    def __neg__(self) -> Tensor:
        return _apply(Neg, (self,))

    def __pos__(self) -> Tensor:
        return self

    # Comparisons give plain boolean arrays: they have no gradient.
    def __lt__(self, other: Operand) -> np.ndarray:  # type: ignore[override]
        return self.data < _data(other)

    def __le__(self, other: Operand) -> np.ndarray:  # type: ignore[override]
        return self.data <= _data(other)

    def __gt__(self, other: Operand) -> np.ndarray:  # type: ignore[override]
        return self.data > _data(other)

    def __ge__(self, other: Operand) -> np.ndarray:  # type: ignore[override]
        return self.data >= _data(other)

    def __eq__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return self.data == _data(other)

    def __ne__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return self.data != _data(other)

    __hash__ = Node.__hash__  # identity, so Tensors can be set members despite the == above

    # -- elementwise functions --------------------------------------------------------------------

    def exp(self) -> Tensor:
        """Return e ** self."""
        return _apply(Exp, (self,))

    def log(self) -> Tensor:
        """Return the natural log (NumPy's -inf at 0 and NaN below; see detect_anomaly)."""
        return _apply(Log, (self,))

    def tanh(self) -> Tensor:
        """Return tanh(self)."""
        return _apply(Tanh, (self,))

    def sigmoid(self) -> Tensor:
        """Return 1 / (1 + exp(-self)), stable for any magnitude."""
        return _apply(Sigmoid, (self,))

    def relu(self) -> Tensor:
        """Return max(self, 0); its gradient at 0 is 0."""
        return _apply(ReLU, (self,))

    def abs(self) -> Tensor:
        """Return |self|; its gradient at 0 is 0."""
        return _apply(Abs, (self,))

    def sqrt(self) -> Tensor:
        """Return the square root."""
        return _apply(Sqrt, (self,))

    def maximum(self, other: Operand) -> Tensor:
        """Elementwise larger of self and other (ties share the gradient)."""
        return _apply(Maximum, (self, _lift(other, self, Maximum)))

    def minimum(self, other: Operand) -> Tensor:
        """Elementwise smaller of self and other (ties share the gradient)."""
        return _apply(Minimum, (self, _lift(other, self, Minimum)))

    # -- reductions --------------------------------------------------------------------------------

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Sum over axis (an int, a tuple, or None for all)."""
        return _apply(Sum, (self,), (_axis(axis, self, Sum), keepdims))

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Mean over axis (an int, a tuple, or None for all)."""
        axis = _axis(axis, self, Sum)
        n = self.data.size if axis is None else int(np.prod([self.shape[a] for a in axis]))
        return self.sum(axis, keepdims) * (1.0 / n)

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Max over axis; ties share the gradient evenly."""
        return _apply(Max, (self,), (_axis(axis, self, Max), keepdims))

    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Min over axis; ties share the gradient evenly."""
        return _apply(Min, (self,), (_axis(axis, self, Min), keepdims))

    def logsumexp(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """log(sum(exp(self))) over axis, stable at any magnitude."""
        return _apply(LogSumExp, (self,), (_axis(axis, self, LogSumExp), keepdims))

    def softmax(self, axis: int = -1) -> Tensor:
        """exp(self) / sum(exp(self)) over axis, stable at any magnitude."""
        return _apply(Softmax, (self,), (_one_axis(axis, self, Softmax),))

    def log_softmax(self, axis: int = -1) -> Tensor:
        """self - logsumexp(self) over axis, stable at any magnitude."""
        return _apply(LogSoftmax, (self,), (_one_axis(axis, self, LogSoftmax),))

    # -- shape -------------------------------------------------------------------------------------

    def reshape(self, *shape: Any) -> Tensor:
        """Return the same data in a new shape: ``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
        target = (
            tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        )
        return _apply(Reshape, (self,), (tuple(target),))

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes (reversed when none are given)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        perm = (
            tuple(range(self.ndim))[::-1]
            if not axes
            else tuple(a % max(self.ndim, 1) for a in axes)
        )
        if sorted(perm) != list(range(self.ndim)):
            raise ValueError(
                f"Transpose: axes {axes} do not permute the axes of shape {self.shape}"
            )
        return _apply(Transpose, (self,), (perm,))

    @property
    def T(self) -> Tensor:
        """The transpose (axes reversed)."""
        return self.transpose()

    def broadcast_to(self, shape: tuple[int, ...]) -> Tensor:
        """Return self broadcast to shape (a view; its gradient is summed back)."""
        return _apply(BroadcastTo, (self,), (tuple(shape),))

    def __getitem__(self, index: Any) -> Tensor:
        return _apply(Index, (self,), (_index(index),))

    def _scatter(self, shape: tuple[int, ...], index: Any) -> Tensor:
        return _apply(Scatter, (self,), (shape, index))


# --- free functions ------------------------------------------------------------------------------


def concatenate(tensors: Sequence[Operand], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    xs = _lift_all(tensors, Concatenate)
    return _apply(Concatenate, xs, (_one_axis(axis, xs[0], Concatenate),))


def stack(tensors: Sequence[Operand], axis: int = 0) -> Tensor:
    """Join tensors along a new axis."""
    xs = _lift_all(tensors, Concatenate)
    ndim = xs[0].ndim + 1
    if not -ndim <= axis < ndim:
        raise ValueError(f"stack: axis {axis} is out of range for {ndim - 1}-d tensors")
    axis %= ndim
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors need one shape, got {sorted(shapes)}")
    grown = [x.reshape((*x.shape[:axis], 1, *x.shape[axis:])) for x in xs]
    return concatenate(grown, axis)


def where(cond: ArrayLike, a: Operand, b: Operand) -> Tensor:
    """Elementwise ``a`` where ``cond`` holds, else ``b``; cond is data (a boolean array)."""
    mask = np.asarray(cond.data if isinstance(cond, Tensor) else cond, dtype=bool)
    xs = _lift_all((a, b), Where)
    return _apply(Where, xs, (mask,))


def maximum(a: Operand, b: Operand) -> Tensor:
    """Elementwise larger of a and b (ties share the gradient)."""
    return _apply(Maximum, _lift_all((a, b), Maximum))


def minimum(a: Operand, b: Operand) -> Tensor:
    """Elementwise smaller of a and b (ties share the gradient)."""
    return _apply(Minimum, _lift_all((a, b), Minimum))


def dense(
    x: Operand, weight: Tensor, bias: Tensor | None = None, activation: str = "none"
) -> Tensor:
    """Return act(x @ weight + bias) as one graph node: a whole dense layer.

    ``x`` has shape (batch, in), ``weight`` (in, out) and ``bias`` (out,) or None; ``activation``
    is "none", "tanh", "sigmoid" or "relu". The gradients are those of the three ops it stands
    for (see ``ops.Dense``), at a third of the per-node cost. Raises ValueError naming the shapes
    when they do not fit, and the choices for an unknown activation.
    """
    try:
        act = ACTIVATIONS[activation]
    except (KeyError, TypeError):
        choices = ", ".join(repr(a) for a in ACTIVATIONS)
        raise ValueError(
            f"dense: unknown activation {activation!r}: choose one of {choices}"
        ) from None
    w = weight if weight.__class__ is Tensor else _lift(weight, None, Dense)
    if x.__class__ is not Tensor:
        x = _lift(x, w, Dense)
    xs, ws = x.data.shape, w.data.shape
    if len(xs) != 2 or len(ws) != 2 or xs[1] != ws[0]:
        raise ValueError(
            f"dense: x of shape {xs} does not fit weight of shape {ws}: "
            "x must be (batch, in) and weight (in, out)"
        )
    if bias is None:
        return _apply(Dense, (x, w), (act,))
    b = bias if bias.__class__ is Tensor else _lift(bias, w, Dense)
    if b.data.shape != ws[1:]:
        raise ValueError(f"dense: bias of shape {b.data.shape} does not fit weight of shape {ws}")
    return _apply(Dense, (x, w, b), (act,))


def squared_error(pred: Operand, target: Operand, reduction: str = "mean") -> Tensor:
    """Return the mean (or, with reduction="sum", the sum) of (pred - target)², as one node.

    ``pred`` and ``target`` must have one shape: nothing is broadcast, so a (batch,) target
    against (batch, 1) predictions is an error here rather than a silent (batch, batch) loss.
    Raises ValueError naming both shapes, or the reduction.
    """
    if reduction != "mean" and reduction != "sum":
        raise ValueError(f"squared_error: reduction must be 'mean' or 'sum', got {reduction!r}")
    if pred.__class__ is Tensor and target.__class__ is Tensor:
        p, t = pred, target
    else:
        p, t = _lift_all((pred, target), SquaredError)
    if p.data.shape != t.data.shape:
        raise ValueError(
            f"squared_error: pred of shape {p.data.shape} and target of shape {t.data.shape} differ"
        )
    count = float(max(p.data.size, 1)) if reduction == "mean" else 1.0
    return _apply(SquaredError, (p, t), (count,))


# --- building nodes ------------------------------------------------------------------------------


def _apply(op: type[Op], parents: tuple[Tensor, ...], saved: tuple[Any, ...] = ()) -> Tensor:
    """Run ``op`` forward on the parents' data and record the result (see ``engine.record``).

    This is the cost of every forward op, so the common arities call ``forward`` without
    building an argument list.
    """
    n = len(parents)
    try:
        if n == 2:
            data = op.forward(ArrayMath, parents[0].data, parents[1].data, *saved)
        elif n == 1:
            data = op.forward(ArrayMath, parents[0].data, *saved)
        elif n == 3:
            a, b, c = parents
            data = op.forward(ArrayMath, a.data, b.data, c.data, *saved)
        else:
            data = op.forward(ArrayMath, *[p.data for p in parents], *saved)
    except (ValueError, IndexError) as e:
        shapes = " and ".join(str(p.shape) for p in parents)
        plural = "s" if n > 1 else ""
        raise type(e)(f"{op.name} cannot take shape{plural} {shapes}: {e}") from None
    if data.__class__ is not np.ndarray:
        data = np.asarray(data)
    out = _new(Tensor)
    out.data = data
    out.grad = None
    out._spare = None
    out.name = ""
    out._g = None
    # engine.record written out, as Value's _binary and _unary do: a call less on every op
    # (about 1.5% of a small network's step)
    needed = False
    if engine._grad_enabled:
        for p in parents:
            if p.requires_grad:
                needed = True
                break
    if needed:
        out.p0 = parents[0]
        out.p1 = parents[1] if n > 1 else None
        out.pn = parents[2:] if n > 2 else ()
        out.op = op
        out.saved = saved
        out.requires_grad = True
    else:
        out.p0 = out.p1 = None
        out.pn = ()
        out.op = None
        out.saved = ()
        out.requires_grad = False
    if engine._anomaly:
        check_forward(op, data)
    return out


def _to_array(data: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(data, Node) and not isinstance(data, Tensor):
        raise TypeError(f"cannot make a Tensor from a {type(data).__name__}: use .data or .item()")
    if isinstance(data, Tensor):
        data = data.data
    try:
        arr = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise TypeError(f"Tensor needs real numbers, got {type(data).__name__}: {e}") from None
    if arr.dtype in _FLOATS:
        return arr
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"Tensor needs real numbers, got an array of dtype {arr.dtype}")
    return arr.astype(np.float64)


def _lift(x: Any, like: Tensor | None, op: type[Op]) -> Tensor:
    if x.__class__ is Tensor or isinstance(x, Tensor):
        return x  # type: ignore[no-any-return]
    if isinstance(x, Node):
        raise TypeError(
            f"cannot mix a Tensor and a {type(x).__name__} in one op ({op.name}): "
            "make both Tensors, or use .item() to take the scalar out"
        )
    # Constants take the other operand's dtype, so float32 work stays float32.
    return Tensor(x, dtype=like.data.dtype if like is not None else None)


def _lift_all(xs: Sequence[Any], op: type[Op]) -> tuple[Tensor, ...]:
    if not xs:
        raise ValueError(f"{op.name} needs at least one tensor")
    first = next((x for x in xs if isinstance(x, Tensor)), None)
    return tuple(_lift(x, first, op) for x in xs)


def _data(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, Node):
        raise TypeError(f"cannot compare a Tensor with a {type(x).__name__}")
    return x


def _axis(axis: Axis, x: Tensor, op: type[Op]) -> tuple[int, ...] | None:
    if axis is None:
        return None
    axes = axis if isinstance(axis, tuple) else (axis,)
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -max(x.ndim, 1) <= a < max(x.ndim, 1):
            raise ValueError(f"{op.name}: axis {axis} is out of range for shape {x.shape}")
    return tuple(sorted(int(a) % max(x.ndim, 1) for a in axes))


def _one_axis(axis: int, x: Tensor, op: type[Op]) -> int:
    ndim = max(x.ndim, 1)
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"{op.name}: axis {axis} is out of range for shape {x.shape}")
    return int(axis) % ndim


def _index(index: Any) -> Any:
    """Turn lists and Tensors in an index into integer or boolean arrays NumPy can take."""
    parts = index if isinstance(index, tuple) else (index,)
    fixed = []
    for part in parts:
        if isinstance(part, Tensor):
            part = part.data
        if isinstance(part, (list, np.ndarray)):
            arr = np.asarray(part)
            if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
                arr = arr.astype(np.intp)  # a Tensor's data is float; whole numbers are fine
            if arr.dtype.kind not in "biu":
                raise IndexError(f"an index array must hold integers or booleans, got {arr.dtype}")
            part = arr
        fixed.append(part)
    return tuple(fixed) if isinstance(index, tuple) else fixed[0]
