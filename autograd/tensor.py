"""Tensor: a NumPy array that records the operations that made it."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .engine import ArrayMath, Node, Op, record, tracing
from .hints import attribute_error, records, torch_keywords
from .ops import (
    ACTIVATIONS,
    Abs,
    Add,
    AddNumber,
    BroadcastTo,
    Concatenate,
    Cos,
    Dense,
    Div,
    DivNumber,
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
    MulNumber,
    Neg,
    NumberDiv,
    NumberPow,
    NumberSub,
    Pow,
    PowV,
    ReLU,
    Reshape,
    Scatter,
    Sigmoid,
    Sin,
    Softmax,
    Sqrt,
    SquaredError,
    Sub,
    Sum,
    Tanh,
    Transpose,
    Where,
)
from .ops import (
    kept_param as _kept,
)

__all__ = [
    "Tensor",
    "computed_from",
    "concatenate",
    "dense",
    "maximum",
    "minimum",
    "ones_like",
    "squared_error",
    "stack",
    "unbroadcast",
    "where",
    "zeros_like",
]

ArrayLike = Any  # whatever np.asarray accepts: numbers, nested lists, arrays
Operand = Union["Tensor", ArrayLike]
Axis = Union[int, tuple[int, ...], None]  # noqa: UP007 - a runtime alias; `|` needs 3.10 objects

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_data_of = operator.attrgetter("_data")  # a node's data, without a Python frame per node
_NUMBERS = (int, float, np.integer, np.floating)


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

    __slots__ = ("_delivered",)

    # The gradient array the last backward pass gave this node, kept past zero_grad() until
    # the next pass gives a new one (see zero_grad).
    _delivered: np.ndarray | None

    xp = ArrayMath
    empty_grad = None
    # Let Tensor's reflected operators win over NumPy's: ndarray + Tensor gives a Tensor.
    __array_ufunc__ = None

    def __init__(
        self,
        data: ArrayLike,
        requires_grad: bool = False,
        label: str = "",
        dtype: Any = None,
        *,
        name: str | None = None,
    ) -> None:
        """Make a leaf from a copy of anything ``np.asarray`` takes (later writes to an array
        passed in do not reach the graph). ``name`` is the old spelling of ``label``.

        Raises TypeError for a Value, or for data that is not real numbers or booleans;
        ValueError for requires_grad on boolean data.
        """
        array = _to_array(data, dtype)
        if requires_grad and array.dtype == bool:
            raise ValueError("a boolean Tensor cannot require grad: make it float first")
        self._leaf(array, label if name is None else name, requires_grad)
        self.grad = None
        if (trace := tracing.get()) is not None:  # compile is tracing: a leaf made inside
            trace.leaf(self, data)

    @property
    def name(self) -> str:
        """The old spelling of ``label``."""
        return self.label

    @name.setter
    def name(self, value: str) -> None:
        self.label = value

    @staticmethod
    def apply(op: type[Op], *inputs: Operand, params: Sequence[Any] = ()) -> Tensor:
        """Record ``op`` on Tensor inputs: how a user's own op (a subclass of Op) is called."""
        first = next((x for x in inputs if isinstance(x, Tensor)), None)
        kept = tuple([_kept(p) for p in params])  # an array param is copied (ops.kept_param)
        return _apply(op, tuple(_lift(x, first, op) for x in inputs), kept)

    # -- the graph's view ------------------------------------------------------------------------

    def _seed(self, grad: Any, create_graph: bool) -> Any:
        if not create_graph and (trace := tracing.get()) is not None:
            raise trace.backward_inside()  # its gradients would be the trace's, never replayed
        if grad is None:
            if self._data.size != 1:
                raise RuntimeError(
                    f"backward() on a Tensor of shape {self.shape} needs grad= of that shape: "
                    "only a single-element root has an implied gradient of 1"
                )
            seed = np.ones(self._data.shape, self._data.dtype)
            # Read-only, so that it may be shared (compile keeps one per program): a node
            # handed it as .grad takes a copy (see _accumulate).
            seed.flags.writeable = False
        else:
            # A copy: the pass may hand its seed to the root as .grad, and a later write into
            # that must not reach the caller's array.
            seed = np.array(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if seed.shape != self.shape:
                raise ValueError(
                    f"backward() got grad of shape {seed.shape} for a Tensor of shape {self.shape}"
                )
        return Tensor(seed) if create_graph else seed

    def fit_gradient(self, g: Any, op: type[Op], i: int) -> Any:
        """Return ``g``, the gradient input ``i`` of ``op`` sends to this Tensor, as this
        Tensor's: in its shape (summing out what broadcasting added) and dtype, and an array no
        other node holds, which the pass may give it as ``.grad``: g itself when ``op`` makes
        new arrays (``Op.makes_new_arrays``) or when summing or a new dtype made one, else a copy.

        Raises ValueError naming ``op``, input ``i`` and both shapes when g's shape is neither
        this Tensor's nor one it broadcasts to.
        """
        data = self._data
        if g.__class__ is np.ndarray and g.shape == data.shape and g.dtype == data.dtype:
            return g if op.makes_new_arrays else g.copy()  # the usual case, first
        shape = data.shape
        g_shape = getattr(g, "shape", ())
        if g_shape != shape:
            if not _broadcasts_to(shape, g_shape):
                raise ValueError(
                    f"the backward of {op.name} returned a gradient of shape {g_shape} for "
                    f"input {i}, of shape {shape}: it must have that shape, or one the input "
                    "broadcasts to"
                )
            g = unbroadcast(g, shape)  # a new array (or a Tensor, in a recorded pass)
        elif not op.makes_new_arrays and not isinstance(g, Tensor):
            return np.array(g, dtype=data.dtype)
        if isinstance(g, Tensor) or (g.__class__ is np.ndarray and g.dtype == data.dtype):
            return g
        return np.asarray(g, dtype=data.dtype)

    def _accumulate(self, g: Any) -> None:
        # The pass hands over arrays that are this node's own (fit_gradient copies any a rule
        # shares) except its read-only seed: keeping g needs no copy, and a user may add into
        # .grad in place without touching another node's.
        if self.grad is None:
            self.grad = g if g.__class__ is not np.ndarray or g.flags.writeable else g.copy()
        else:
            self.grad = self.grad + g
        # not a recorded gradient: its graph refers back to this node
        self._delivered = self.grad if self.grad.__class__ is np.ndarray else None

    @staticmethod
    def zeros_like(x: Tensor, create_graph: bool = False) -> Any:
        """A zero gradient for x (an array, or a constant Tensor when the pass is recorded).
        For a Tensor of zeros, use the function ``zeros_like``."""
        zeros = np.zeros_like(x._data)
        return Tensor(zeros) if create_graph else zeros

    def zero_grad(self) -> None:
        """Reset the gradient to None before the next backward pass.

        An array the backward pass delivered is let go of when the next pass delivers a new one, not
        now (it is never written into). Freed at the end of every training step, a parameter-sized
        array is handed back to the system and faulted in again by the next step (about 350 page
        faults a step on the random ReLU regression, bench/README.md); freed a step later, its
        memory is reused, as in a NumPy loop, where ``d_w1`` lives until the next step replaces it.
        (A compiled step keeps its arrays in the same way itself.)
        """
        if (trace := tracing.get()) is not None:  # a replay would never reset it
            raise trace.side_effect("zero_grad()")
        self.grad = None

    def detach(self) -> Tensor:
        """Return a new leaf sharing this data, with no history and no gradient."""
        leaf = Tensor.__new__(Tensor)
        leaf._leaf(self._data, self.label, False)
        leaf.grad = None
        if (trace := tracing.get()) is not None:  # compile reads it from self on every call
            trace.leaf(leaf, self)
        return leaf

    # -- array facts ------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        """The data's shape."""
        return self._data.shape

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return self._data.ndim

    @property
    def size(self) -> int:
        """The number of elements."""
        return self._data.size

    @property
    def dtype(self) -> np.dtype:
        """float64 or float32."""
        return self._data.dtype

    # These read .data, not ._data: inside a compile trace a number read is refused there.
    def item(self) -> float:
        """Return the single element as a float. Raises ValueError when there are several."""
        if self._data.size != 1:
            raise ValueError(f"item() needs a single-element Tensor, got shape {self.shape}")
        return self.data.item()  # type: ignore[no-any-return]

    def numpy(self) -> np.ndarray:
        """Return the data (not a copy)."""
        return self.data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        """The truth of a one-element Tensor, as PyTorch. Raises RuntimeError for more."""
        if self._data.size != 1:
            raise RuntimeError(
                f"the truth value of a Tensor of shape {self.shape} is ambiguous: "
                "use .any() or .all() on its data"
            )
        return bool(self.data.item())

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, threshold=20, prefix="Tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        extra += f", label={self.label!r}" if self.label else ""
        return f"Tensor({body}{extra})"

    if not TYPE_CHECKING:  # mypy would take every attribute to exist

        def __getattr__(self, name: str) -> Any:
            # Only a name the class lacks gets here: ours when it is PyTorch's, or a near miss
            raise attribute_error(self, name)

    # -- arithmetic --------------------------------------------------------------------------------

    # A number operand is a param of the op (x * 0.5 is one node), never a leaf of its own.
    # The usual operand, a Tensor, is told apart first, by its class alone.

    @records(Add, AddNumber)
    def __add__(self, other: Operand) -> Tensor:
        """Return self + other (broadcast)."""
        if other.__class__ is not Tensor:
            if isinstance(other, _NUMBERS):
                return _apply(AddNumber, (self,), (float(other),))
            other = _lift(other, self, Add)
        return _apply(Add, (self, other))

    @records(Add, AddNumber)
    def __radd__(self, other: Operand) -> Tensor:
        """Return other + self."""
        if isinstance(other, _NUMBERS):
            return _apply(AddNumber, (self,), (float(other),))  # c + x is x + c, exactly
        return _apply(Add, (_lift(other, self, Add), self))

    @records(Sub, AddNumber)
    def __sub__(self, other: Operand) -> Tensor:
        """Return self - other."""
        if other.__class__ is not Tensor:
            if isinstance(other, _NUMBERS):
                return _apply(AddNumber, (self,), (-float(other),))  # x - c is x + (-c), exactly
            other = _lift(other, self, Sub)
        return _apply(Sub, (self, other))

    @records(Sub, NumberSub)
    def __rsub__(self, other: Operand) -> Tensor:
        """Return other - self."""
        if isinstance(other, _NUMBERS):
            return _apply(NumberSub, (self,), (float(other),))
        return _apply(Sub, (_lift(other, self, Sub), self))

    @records(Mul, MulNumber)
    def __mul__(self, other: Operand) -> Tensor:
        """Return self * other, elementwise."""
        if other.__class__ is not Tensor:
            if isinstance(other, _NUMBERS):
                return _apply(MulNumber, (self,), (float(other),))
            other = _lift(other, self, Mul)
        return _apply(Mul, (self, other))

    @records(Mul, MulNumber)
    def __rmul__(self, other: Operand) -> Tensor:
        """Return other * self."""
        if isinstance(other, _NUMBERS):
            return _apply(MulNumber, (self,), (float(other),))  # c * x is x * c, exactly
        return _apply(Mul, (_lift(other, self, Mul), self))

    @records(Div, DivNumber)
    def __truediv__(self, other: Operand) -> Tensor:
        """Return self / other."""
        if other.__class__ is not Tensor:
            if isinstance(other, _NUMBERS):
                return _apply(DivNumber, (self,), (float(other),))
            other = _lift(other, self, Div)
        return _apply(Div, (self, other))

    @records(Div, NumberDiv)
    def __rtruediv__(self, other: Operand) -> Tensor:
        """Return other / self."""
        if isinstance(other, _NUMBERS):
            return _apply(NumberDiv, (self,), (float(other),))
        return _apply(Div, (_lift(other, self, Div), self))

    @records(MatMul)
    def __matmul__(self, other: Operand) -> Tensor:
        """Return self @ other (matrix product, NumPy's rules)."""
        if other.__class__ is not Tensor:
            other = _lift(other, self, MatMul)
        return _apply(MatMul, (self, other))

    @records(MatMul)
    def __rmatmul__(self, other: Operand) -> Tensor:
        """Return other @ self."""
        return _apply(MatMul, (_lift(other, self, MatMul), self))

    @records(Pow, PowV)
    def __pow__(self, other: Operand) -> Tensor:
        """Return self ** other."""
        if isinstance(other, _NUMBERS):
            return _apply(Pow, (self,), (float(other),))
        return _apply(PowV, (self, _lift(other, self, PowV)))

    @records(NumberPow, PowV)
    def __rpow__(self, other: Operand) -> Tensor:
        """Return other ** self."""
        if isinstance(other, _NUMBERS):
            return _apply(NumberPow, (self,), (float(other),))
        return _apply(PowV, (_lift(other, self, PowV), self))

    @records(Neg)
    def __neg__(self) -> Tensor:
        """Return -self."""
        return _apply(Neg, (self,))

    def __pos__(self) -> Tensor:
        return self

    # Comparisons give plain boolean arrays: they have no gradient.
    def __lt__(self, other: Operand) -> np.ndarray:  # type: ignore[override]
        return _compare(operator.lt, self, other)

    def __le__(self, other: Operand) -> np.ndarray:  # type: ignore[override]
        return _compare(operator.le, self, other)

    def __gt__(self, other: Operand) -> np.ndarray:  # type: ignore[override]
        return _compare(operator.gt, self, other)

    def __ge__(self, other: Operand) -> np.ndarray:  # type: ignore[override]
        return _compare(operator.ge, self, other)

    def __eq__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return _compare(operator.eq, self, other)

    def __ne__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return _compare(operator.ne, self, other)

    __hash__ = Node.__hash__  # identity, so Tensors can be set members despite the == above

    # -- elementwise functions --------------------------------------------------------------------

    @records(Exp)
    def exp(self) -> Tensor:
        """Return e ** self."""
        return _apply(Exp, (self,))

    @records(Log)
    def log(self) -> Tensor:
        """Return the natural log (NumPy's -inf at 0 and NaN below; see detect_anomaly)."""
        return _apply(Log, (self,))

    @records(Tanh)
    def tanh(self) -> Tensor:
        """Return tanh(self)."""
        return _apply(Tanh, (self,))

    @records(Sin)
    def sin(self) -> Tensor:
        """Return sin(self); its derivative is cos(self)."""
        return _apply(Sin, (self,))

    @records(Cos)
    def cos(self) -> Tensor:
        """Return cos(self); its derivative is -sin(self)."""
        return _apply(Cos, (self,))

    @records(Sigmoid)
    def sigmoid(self) -> Tensor:
        """Return 1 / (1 + exp(-self)), stable for any magnitude."""
        return _apply(Sigmoid, (self,))

    @records(ReLU)
    def relu(self) -> Tensor:
        """Return max(self, 0); its gradient at 0 is 0."""
        return _apply(ReLU, (self,))

    @records(Abs)
    def abs(self) -> Tensor:
        """Return |self|; its gradient at 0 is 0."""
        return _apply(Abs, (self,))

    @records(Sqrt)
    def sqrt(self) -> Tensor:
        """Return the square root."""
        return _apply(Sqrt, (self,))

    @records(Maximum)
    def maximum(self, other: Operand) -> Tensor:
        """Elementwise larger of self and other (ties share the gradient)."""
        return _apply(Maximum, (self, _lift(other, self, Maximum)))

    @records(Minimum)
    def minimum(self, other: Operand) -> Tensor:
        """Elementwise smaller of self and other (ties share the gradient)."""
        return _apply(Minimum, (self, _lift(other, self, Minimum)))

    # -- reductions --------------------------------------------------------------------------------

    @torch_keywords
    @records(Sum)
    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Sum over axis (an int, a tuple, or None for all)."""
        return _apply(Sum, (self,), (_axis(axis, self, Sum), keepdims))

    @torch_keywords
    @records(Sum, MulNumber)
    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Mean over axis (an int, a tuple, or None for all); NaN over an empty axis, as NumPy."""
        axis = _axis(axis, self, Sum)
        n = self._data.size if axis is None else int(np.prod([self.shape[a] for a in axis]))
        total = _apply(Sum, (self,), (axis, keepdims))
        return _apply(MulNumber, (total,), (1.0 / n if n else math.nan,))

    @torch_keywords
    @records(Max)
    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Max over axis; ties share the gradient evenly."""
        return _apply(Max, (self,), (_axis(axis, self, Max), keepdims))

    @torch_keywords
    @records(Min)
    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Min over axis; ties share the gradient evenly."""
        return _apply(Min, (self,), (_axis(axis, self, Min), keepdims))

    @torch_keywords
    @records(LogSumExp)
    def logsumexp(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """log(sum(exp(self))) over axis, stable at any magnitude."""
        return _apply(LogSumExp, (self,), (_axis(axis, self, LogSumExp), keepdims))

    @torch_keywords
    @records(Sum, MulNumber, Sub, Mul, DivNumber)
    def var(self, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        """The variance over axis: Σ (x - mean)² / (n - ddof), n the count of elements summed.

        ``ddof=0`` (the default) is NumPy's; ``ddof=1`` is Bessel's correction, PyTorch's
        default (``unbiased=True``) and the batch norm of the makemore lectures.
        Built from the ops below, so its gradient, 2 (x - mean) g / (n - ddof), is theirs.
        Raises ValueError when ddof is not an int in [0, n).
        """
        axes = _axis(axis, self, Sum)
        n = self.data.size if axes is None else int(np.prod([self.shape[a] for a in axes]))
        if isinstance(ddof, bool) or not isinstance(ddof, (int, np.integer)) or not 0 <= ddof < n:
            raise ValueError(
                f"var: ddof must be an int in [0, {n}) for {n} elements over axis {axis}, "
                f"got {ddof!r}"
            )
        d = self - self.mean(axes, keepdims=True)
        return (d * d).sum(axes, keepdims) / float(n - ddof)

    @torch_keywords
    @records(Sum, MulNumber, Sub, Mul, DivNumber, Sqrt)
    def std(self, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        """The standard deviation over axis: ``var(axis, keepdims, ddof).sqrt()`` (see var).

        Its gradient is infinite (NaN) where the variance is 0, as in NumPy and PyTorch.
        """
        return self.var(axis, keepdims, ddof).sqrt()

    @torch_keywords
    def argmax(self, axis: int | None = None, keepdims: bool = False) -> np.ndarray:
        """The index of the largest element over axis (of the flattened data for None), as an
        array of ints: an index has no gradient, so no node is recorded. Ties: the first."""
        if axis is not None:
            axis = _one_axis(axis, self, Max)
        return np.asarray(np.argmax(self.data, axis=axis, keepdims=keepdims))

    @torch_keywords
    @records(Softmax)
    def softmax(self, axis: int = -1) -> Tensor:
        """exp(self) / sum(exp(self)) over axis, stable at any magnitude."""
        return _apply(Softmax, (self,), (_one_axis(axis, self, Softmax),))

    @torch_keywords
    @records(LogSoftmax)
    def log_softmax(self, axis: int = -1) -> Tensor:
        """self - logsumexp(self) over axis, stable at any magnitude."""
        return _apply(LogSoftmax, (self,), (_one_axis(axis, self, LogSoftmax),))

    # -- shape -------------------------------------------------------------------------------------

    @records(Reshape)
    def reshape(self, *shape: Any) -> Tensor:
        """Return the same data in a new shape: ``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
        target = (
            tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        )
        return _apply(Reshape, (self,), (tuple(target),))

    @records(Transpose)
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
    @records(Transpose)
    def T(self) -> Tensor:
        """The transpose (axes reversed)."""
        return self.transpose()

    @records(BroadcastTo)
    def broadcast_to(self, shape: tuple[int, ...]) -> Tensor:
        """Return self broadcast to shape (a view; its gradient is summed back)."""
        return _apply(BroadcastTo, (self,), (tuple(shape),))

    @records(Index)
    def __getitem__(self, index: Any) -> Tensor:
        """Return self[index] (NumPy indexing; repeated indices add up in the gradient)."""
        return _apply(Index, (self,), (_index(index),))

    def _scatter(self, shape: tuple[int, ...], index: Any) -> Tensor:
        return _apply(Scatter, (self,), (shape, index))


# --- free functions ------------------------------------------------------------------------------


def zeros_like(x: Operand, requires_grad: bool = False) -> Tensor:
    """A Tensor of zeros with x's shape and dtype (x a Tensor or an array), as torch.zeros_like.

    Its ``.data`` is a writable array: ``dC = zeros_like(C); np.add.at(dC.data, Xb, demb)``.
    """
    return Tensor(np.zeros_like(_like(x, "zeros_like")), requires_grad=requires_grad)


def ones_like(x: Operand, requires_grad: bool = False) -> Tensor:
    """A Tensor of ones with x's shape and dtype (x a Tensor or an array), as torch.ones_like."""
    return Tensor(np.ones_like(_like(x, "ones_like")), requires_grad=requires_grad)


def _like(x: Any, who: str) -> np.ndarray:
    if isinstance(x, Node) and not isinstance(x, Tensor):
        raise TypeError(f"{who} takes a Tensor or an array, got a {type(x).__name__}")
    return _to_array(x.data if isinstance(x, Tensor) else x)


@torch_keywords
@records(Concatenate)
def concatenate(tensors: Sequence[Operand], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    xs = _lift_all(tensors, Concatenate)
    return _apply(Concatenate, xs, (_one_axis(axis, xs[0], Concatenate),))


@torch_keywords
@records(Reshape, Concatenate)
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


@records(Where)
def where(cond: ArrayLike, a: Operand, b: Operand) -> Tensor:
    """Elementwise ``a`` where ``cond`` holds, else ``b``; cond is data (a boolean array)."""
    # A Tensor cond (in a compile trace: an argument's mask) through computed_from, so that
    # each replay reads that call's mask rather than the trace's
    mask = np.asarray(computed_from(_bool, cond) if isinstance(cond, Tensor) else cond, dtype=bool)
    xs = _lift_all((a, b), Where)
    return _apply(Where, xs, (_kept(mask),))  # a copy: a later write into cond changes nothing


def _bool(data: np.ndarray) -> np.ndarray:
    return np.asarray(data, dtype=bool)


@records(Maximum)
def maximum(a: Operand, b: Operand) -> Tensor:
    """Elementwise larger of a and b (ties share the gradient)."""
    return _apply(Maximum, _lift_all((a, b), Maximum))


@records(Minimum)
def minimum(a: Operand, b: Operand) -> Tensor:
    """Elementwise smaller of a and b (ties share the gradient)."""
    return _apply(Minimum, _lift_all((a, b), Minimum))


@records(Dense)
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
    xs, ws = x._data.shape, w._data.shape
    if len(xs) != 2 or len(ws) != 2 or xs[1] != ws[0]:
        raise ValueError(
            f"dense: x of shape {xs} does not fit weight of shape {ws}: "
            "x must be (batch, in) and weight (in, out)"
        )
    if bias is None:
        return _apply(Dense, (x, w), (act,))
    b = bias if bias.__class__ is Tensor else _lift(bias, w, Dense)
    if b._data.shape != ws[1:]:
        raise ValueError(f"dense: bias of shape {b._data.shape} does not fit weight of shape {ws}")
    return _apply(Dense, (x, w, b), (act,))


@records(SquaredError)
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
    if p._data.shape != t._data.shape:
        raise ValueError(
            f"squared_error: pred of shape {p.shape} and target of shape {t.shape} differ"
        )
    count = float(max(p._data.size, 1)) if reduction == "mean" else 1.0
    return _apply(SquaredError, (p, t), (count,))


# --- building nodes ------------------------------------------------------------------------------


def _apply(op: type[Op], parents: tuple[Tensor, ...], params: tuple[Any, ...] = ()) -> Tensor:
    """Run ``op`` forward on the parents' data and record the result (see ``engine.record``).

    Raises ValueError or IndexError naming the op and the shapes when NumPy refuses them.
    """
    try:
        data = op.forward(ArrayMath, *map(_data_of, parents), *params)
    except (ValueError, IndexError) as e:
        shapes = " and ".join(str(p.shape) for p in parents)
        plural = "s" if len(parents) > 1 else ""
        raise type(e)(f"{op.name} cannot take shape{plural} {shapes}: {e}") from None
    if data.__class__ is not np.ndarray:
        data = np.asarray(data)  # a NumPy scalar from a full reduction
    return record(Tensor, data, op, parents, params)  # type: ignore[no-any-return]


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum a gradient of a broadcast result back to ``shape``, the input's (arrays and Tensors).

    Broadcasting copies an input along new leading axes and along its axes of length 1; each
    copy sends back its own gradient, and the input's is their sum.
    """
    axes = unbroadcast_axes(g.shape, shape)
    if len(axes) == g.ndim - len(shape):  # only new leading axes (a bias): no reshape needed
        return g.sum(axis=axes)
    g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape) if g.ndim != len(shape) else g


def unbroadcast_axes(g_shape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axes ``unbroadcast`` sums: the leading ones broadcasting added, and those where the
    input had length 1 and the gradient has more."""
    extra = len(g_shape) - len(shape)
    if 1 not in shape:
        return tuple(range(extra))
    stretched = tuple(extra + i for i, n in enumerate(shape) if n == 1 and g_shape[extra + i] != 1)
    return tuple(range(extra)) + stretched


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether an array of ``shape`` broadcasts to ``target`` (NumPy's rule, read backwards)."""
    if target[len(target) - len(shape) :] == shape:  # only new leading axes, as a bias has
        return True
    return len(shape) <= len(target) and all(
        n == t or n == 1
        for n, t in zip(reversed(shape), reversed(target))  # noqa: B905
    )


def _to_array(data: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(data, Node) and not isinstance(data, Tensor):
        raise TypeError(f"cannot make a Tensor from a {type(data).__name__}: use .data or .item()")
    if isinstance(data, Tensor):
        data = data._data  # a Tensor of a compile trace: Tensor.__init__ tells the trace
    try:
        arr = np.array(data, dtype=dtype)  # a copy: later writes to data must not reach the graph
    except (TypeError, ValueError) as e:
        raise TypeError(f"Tensor needs real numbers, got {type(data).__name__}: {e}") from None
    if arr.dtype in _FLOATS or arr.dtype == bool:  # booleans stay masks, as in PyTorch
        return arr
    if arr.dtype.kind not in "iuf":
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
    return Tensor(x, dtype=like._data.dtype if like is not None else None)


def _lift_all(xs: Sequence[Any], op: type[Op]) -> tuple[Tensor, ...]:
    if not xs:
        raise ValueError(f"{op.name} needs at least one tensor")
    first = next((x for x in xs if isinstance(x, Tensor)), None)
    return tuple(_lift(x, first, op) for x in xs)


def computed_from(fn: Callable[[np.ndarray], np.ndarray], x: Tensor) -> np.ndarray:
    """fn(x's data): an array computed from a Tensor's numbers outside the graph (labels made
    class indices), with no gradient. Inside a compile trace it is recorded, so that each replay
    computes it again from that call's x (``fn`` must be a function of its argument alone)."""
    trace = tracing.get()
    return fn(x._data) if trace is None else trace.computed(fn, x)  # type: ignore[no-any-return]


def _compare(fn: Any, a: Tensor, b: Any) -> np.ndarray:
    """fn(a, b) on the data: a boolean array, data with no gradient (a where's mask). Inside a
    compile trace, the trace records how it was made, so that each replay makes it again."""
    result = fn(a._data, _data(b))
    trace = tracing.get()
    return result if trace is None else trace.mask(fn, a, b, result)  # type: ignore[no-any-return]


def _data(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x._data
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
    """Turn lists and Tensors in an index into integer or boolean arrays NumPy can take, copied
    (read-only) so that the graph keeps the index the forward used."""
    parts = index if isinstance(index, tuple) else (index,)
    fixed = []
    trace = tracing.get()
    for part in parts:
        if isinstance(part, Tensor):
            if trace is not None:  # compile: an index computed again on every call
                fixed.append(trace.index(trace.computed(_index_array, part)))
                continue
            part = part._data  # a boolean Tensor is a mask, as a boolean array is
        elif trace is not None and isinstance(part, np.ndarray):
            trace.index(part)  # a mask computed from traced data: its count differs by call
        if isinstance(part, (list, np.ndarray)):
            # a copy (outside a trace): a later write into the caller's index changes nothing
            part = _kept(_index_array(part))
        fixed.append(part)
    return tuple(fixed) if isinstance(index, tuple) else fixed[0]


def _index_array(part: Any) -> np.ndarray:
    arr = np.asarray(part)
    if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
        arr = arr.astype(np.intp)  # a Tensor's data is float; whole numbers are fine
    if arr.dtype.kind not in "biu":
        raise IndexError(f"an index array must hold integers or booleans, got {arr.dtype}")
    return arr
