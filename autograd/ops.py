"""Every primitive op: its forward and local derivative side by side, stated in its docstring.

``g`` is the incoming gradient, ``out`` the op's output, ``xp`` the math namespace that fits the
arguments (floats, arrays, or graph nodes when the backward pass is being recorded), so each rule
is written once and serves the fast first-order pass and the higher-order one alike.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from .modes import tracing

OPS: dict[str, type[Op]] = {}
"""Every op class, by name: the table the tests walk so that no op goes unchecked."""


class Op:
    """One differentiable operation: its forward and its local derivative, written once as math.

    ``forward(xp, *inputs, *params)`` returns the output; ``backward(xp, g, out, *inputs,
    *params)`` returns one gradient (or None) per input. ``xp`` is the math namespace for what
    the arguments are (floats, arrays, or nodes in a recorded pass), so one rule serves all
    three. ``params`` are the arguments not differentiated (a number operand, an axis). An op
    that sets ``takes_needs_grad`` also gets ``needs_grad=`` (a bool per input).

    An op sets ``makes_new_arrays`` when its rule, given arrays, returns for each input an array
    it has just made: not ``g``, an input or ``out``, nor a view of one, nor one array for two
    inputs (``g * b`` is new; Add's ``g, g`` and Sum's broadcast view of ``g`` are not). The
    pass may then give that array to the input as its ``.grad`` as it is; any other op's
    gradients are copied first, so a ``.grad`` is never shared with another node.
    """

    name: ClassVar[str] = "Op"
    takes_needs_grad: ClassVar[bool] = False
    makes_new_arrays: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__
        OPS[cls.name] = cls

    @staticmethod
    def forward(xp: Any, *args: Any) -> Any:
        """Return the op's output computed from its inputs' data (and params)."""
        raise NotImplementedError

    @staticmethod
    def backward(xp: Any, g: Any, out: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Return one gradient per input, given the output's gradient ``g``."""
        raise NotImplementedError


def kept_param(param: Any) -> Any:
    """``param`` as an op keeps it: an array, or a list or tuple holding one, is copied into a
    read-only array, so that a write into the caller's array after the forward (``idx[:] = 0``)
    cannot change the gradient. Anything else (numbers, slices, shapes) is kept as it is.

    Inside a compile trace the op keeps the very array it was given: the trace knows an
    argument's array, or a mask it derived, by identity, and each replay reads it anew (and
    copies an argument's), where a copy would be a constant."""
    if tracing.get() is not None:
        return param
    if isinstance(param, np.ndarray):
        # a plain ndarray of its own, never a view of the caller's (nor a subclass of theirs)
        copy = param.copy() if param.__class__ is np.ndarray else np.array(param, subok=False)
        copy.setflags(write=False)
        return copy
    if param.__class__ is tuple:
        return tuple([kept_param(p) for p in param])
    if param.__class__ is list:
        return [kept_param(p) for p in param]
    return param


Any_ = Any  # rules take floats, arrays or nodes; one alias keeps the signatures short

# --- elementwise, shared by Value and Tensor -------------------------------------------------


class Add(Op):
    """out = a + b;  da = g,  db = g"""

    @staticmethod
    def forward(xp: Any_, a: Any_, b: Any_) -> Any_:
        return a + b

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, a: Any_, b: Any_) -> tuple[Any_, ...]:
        return g, g


class Sub(Op):
    """out = a - b;  da = g,  db = -g   (a primitive, not a + (-b): one node instead of two)"""

    takes_needs_grad = True  # pred - target: no -g for a target that needs no gradient

    @staticmethod
    def forward(xp: Any_, a: Any_, b: Any_) -> Any_:
        return a - b

    @staticmethod
    def backward(
        xp: Any_, g: Any_, out: Any_, a: Any_, b: Any_, *, needs_grad: tuple[bool, ...]
    ) -> tuple[Any_, ...]:
        return g, (-g if needs_grad[1] else None)


class Mul(Op):
    """out = a * b;  da = g * b,  db = g * a"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, a: Any_, b: Any_) -> Any_:
        return a * b

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, a: Any_, b: Any_) -> tuple[Any_, ...]:
        return g * b, g * a


class Div(Op):
    """out = a / b;  da = g / b,  db = -g * out / b   (a primitive: one node, not a * b**-1)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, a: Any_, b: Any_) -> Any_:
        return xp.div(a, b)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, a: Any_, b: Any_) -> tuple[Any_, ...]:
        gb = g / b
        return gb, -gb * out


class Neg(Op):
    """out = -x;  dx = -g"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_) -> Any_:
        return -x

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_) -> tuple[Any_, ...]:
        return (-g,)


class Pow(Op):
    """out = x ** p for a constant p;  dx = g * p * x ** (p - 1)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_, p: float) -> Any_:
        return xp.pow(x, p)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, p: float) -> tuple[Any_, ...]:
        if p == 0:  # x ** -1 at x = 0 would turn the exact zero into NaN
            return (g * 0.0,)
        if p == 2:  # the most common power; x * 2 is exact and records one node fewer
            return (g * (x * 2.0),)
        return (g * (p * xp.pow(x, p - 1)),)


class PowV(Op):
    """out = a ** b, both differentiable;  da = g * b * a ** (b - 1),  db = g * out * log(a)

    As in PyTorch, da is 0 where b = 0 (a ** 0 is flat in a, even at a = 0), and db is 0 where
    a = 0 and b >= 0 (0 ** b is flat in b there), so the gradient at 0 ** 0 is finite.
    """

    name = "Pow(a, b)"
    makes_new_arrays = True
    takes_needs_grad = True  # log(a) is undefined for a <= 0: compute db only when b needs it

    @staticmethod
    def forward(xp: Any_, a: Any_, b: Any_) -> Any_:
        return xp.pow(a, b)

    @staticmethod
    def backward(
        xp: Any_, g: Any_, out: Any_, a: Any_, b: Any_, *, needs_grad: tuple[bool, ...]
    ) -> tuple[Any_, ...]:
        da = g * xp.times_pow(b, a, b - 1) if needs_grad[0] else None
        db = g * xp.pow_log(out, a, b) if needs_grad[1] else None
        return da, db


# --- a number operand is a param, not a leaf: x + 2 is one node, not two ------------------------


class AddNumber(Op):
    """out = x + c for a number c;  dx = g   (x - c is x + (-c), exactly, in floating point)"""

    @staticmethod
    def forward(xp: Any_, x: Any_, c: float) -> Any_:
        return x + c

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, c: float) -> tuple[Any_, ...]:
        return (g,)


class MulNumber(Op):
    """out = x * c for a number c;  dx = g * c"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_, c: float) -> Any_:
        return x * c

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, c: float) -> tuple[Any_, ...]:
        return (g * c,)


class DivNumber(Op):
    """out = x / c for a number c;  dx = g / c"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_, c: float) -> Any_:
        return xp.div(x, c)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, c: float) -> tuple[Any_, ...]:
        return (g / c,)


class NumberSub(Op):
    """out = c - x for a number c;  dx = -g"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_, c: float) -> Any_:
        return c - x

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, c: float) -> tuple[Any_, ...]:
        return (-g,)


class NumberDiv(Op):
    """out = c / x for a number c;  dx = -g * out / x"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_, c: float) -> Any_:
        return xp.div(c, x)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, c: float) -> tuple[Any_, ...]:
        return (-g * out / x,)


class NumberPow(Op):
    """out = c ** x for a number c;  dx = g * out * log(c)   (0 for c = 0, as in PyTorch)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_, c: float) -> Any_:
        return xp.pow(c, x)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, c: float) -> tuple[Any_, ...]:
        log_c = math.log(c) if c > 0 else (0.0 if c == 0 else math.nan)  # a constant
        return (g * out * log_c,)


class Exp(Op):
    """out = exp(x);  dx = g * out"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_) -> Any_:
        return xp.exp(x)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_) -> tuple[Any_, ...]:
        return (g * out,)


class Log(Op):
    """out = log(x);  dx = g / x"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_) -> Any_:
        return xp.log(x)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_) -> tuple[Any_, ...]:
        return (g / x,)


class Tanh(Op):
    """out = tanh(x);  dx = g * (1 - out ** 2)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_) -> Any_:
        return xp.tanh(x)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_) -> tuple[Any_, ...]:
        return (g * (1.0 - out * out),)


class Sin(Op):
    """out = sin(x);  dx = g * cos(x)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_) -> Any_:
        return xp.sin(x)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_) -> tuple[Any_, ...]:
        return (g * xp.cos(x),)


class Cos(Op):
    """out = cos(x);  dx = -g * sin(x)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_) -> Any_:
        return xp.cos(x)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_) -> tuple[Any_, ...]:
        return (-g * xp.sin(x),)


class Sigmoid(Op):
    """out = 1 / (1 + exp(-x));  dx = g * out * (1 - out)   (a primitive: stable at |x| = 1000)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_) -> Any_:
        return xp.sigmoid(x)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_) -> tuple[Any_, ...]:
        return (g * (out * (1.0 - out)),)


class ReLU(Op):
    """out = max(x, 0);  dx = g * [out > 0]   (gradient 0 at 0)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_) -> Any_:
        return xp.relu(x)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_) -> tuple[Any_, ...]:
        # out > 0 exactly where x > 0, so Dense reuses this rule with out alone
        return (g * xp.positive(out),)


class Abs(Op):
    """out = |x|;  dx = g * sign(x)   (gradient 0 at 0)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_) -> Any_:
        return xp.abs(x)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_) -> tuple[Any_, ...]:
        return (g * xp.sign(x),)


class Sqrt(Op):
    """out = sqrt(x);  dx = g * 0.5 / out"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_) -> Any_:
        return xp.sqrt(x)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_) -> tuple[Any_, ...]:
        return (g * 0.5 / out,)


class Maximum(Op):
    """out = max(a, b);  da = g * ([a > b] + [a = b] / 2),  db = g * ([b > a] + [a = b] / 2)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, a: Any_, b: Any_) -> Any_:
        return xp.maximum(a, b)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, a: Any_, b: Any_) -> tuple[Any_, ...]:
        wa = xp.winner(a, b)
        return g * wa, g * (1.0 - wa)


class Minimum(Op):
    """out = min(a, b);  da = g * ([a < b] + [a = b] / 2),  db = g * ([b < a] + [a = b] / 2)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, a: Any_, b: Any_) -> Any_:
        return xp.minimum(a, b)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, a: Any_, b: Any_) -> tuple[Any_, ...]:
        wa = xp.winner(b, a)  # 1 where a is the smaller
        return g * wa, g * (1.0 - wa)


# --- n-ary scalar ops: one node for a whole neuron instead of 2n ---------------------------------


class SumValues(Op):
    """out = x_1 + ... + x_n;  dx_i = g"""

    name = "Sum(values)"

    @staticmethod
    def forward(xp: Any_, *xs: Any_) -> Any_:
        return xp.fsum(xs)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, *xs: Any_) -> tuple[Any_, ...]:
        return (g,) * len(xs)


class Dot(Op):
    """out = w_1 x_1 + ... + w_n x_n;  dw_i = g x_i,  dx_i = g w_i   (inputs w_1..w_n, x_1..x_n)"""

    @staticmethod
    def forward(xp: Any_, *wx: Any_) -> Any_:
        n = len(wx) // 2
        return xp.fsum([w * x for w, x in zip(wx[:n], wx[n:], strict=True)])

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, *wx: Any_) -> tuple[Any_, ...]:
        n = len(wx) // 2
        return tuple([g * x for x in wx[n:]] + [g * w for w in wx[:n]])


# --- tensor ops ----------------------------------------------------------------------------------


class Sum(Op):
    """out = sum of x over axis;  dx = g broadcast back to x's shape"""

    @staticmethod
    def forward(xp: Any_, x: Any_, axis: Any_, keepdims: bool) -> Any_:
        return xp.sum(x, axis, keepdims)

    @staticmethod
    def backward(
        xp: Any_, g: Any_, out: Any_, x: Any_, axis: Any_, keepdims: bool
    ) -> tuple[Any_, ...]:
        return (xp.expand(g, x.shape, axis, keepdims),)


class Max(Op):
    """out = max of x over axis;  dx = g where x equals the max, split evenly among ties"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_, axis: Any_, keepdims: bool) -> Any_:
        return xp.amax(x, axis, keepdims)

    @staticmethod
    def backward(
        xp: Any_, g: Any_, out: Any_, x: Any_, axis: Any_, keepdims: bool
    ) -> tuple[Any_, ...]:
        return (xp.expand(g, x.shape, axis, keepdims) * xp.argmax_share(x, out, axis, keepdims),)


class Min(Max):
    """out = min of x over axis;  dx = g where x equals the min, split evenly among ties

    Max's rule: it sends g to the elements that equal out, whichever extreme out is.
    """

    @staticmethod
    def forward(xp: Any_, x: Any_, axis: Any_, keepdims: bool) -> Any_:
        return xp.amin(x, axis, keepdims)


class MatMul(Op):
    """out = a @ b;  da = g @ bᵀ,  db = aᵀ @ g   (1-D operands promoted as in NumPy)"""

    makes_new_arrays = True
    takes_needs_grad = True  # never multiply out the gradient of an input such as the data batch

    @staticmethod
    def forward(xp: Any_, a: Any_, b: Any_) -> Any_:
        return a @ b

    @staticmethod
    def backward(
        xp: Any_, g: Any_, out: Any_, a: Any_, b: Any_, *, needs_grad: tuple[bool, ...]
    ) -> tuple[Any_, ...]:
        if a.ndim == 2 and b.ndim == 2:  # matrices, a network's layers: no promotion
            da = g @ xp.mT(b) if needs_grad[0] else None
            db = xp.mT(a) @ g if needs_grad[1] else None
            return da, db
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if needs_grad[0] else None), (g * a if needs_grad[1] else None)
        a2 = xp.reshape(a, (1, a.shape[0])) if a.ndim == 1 else a
        b2 = xp.reshape(b, (b.shape[0], 1)) if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = xp.reshape(g2, (*g2.shape[:-1], 1, g2.shape[-1]))
        if b.ndim == 1:
            g2 = xp.reshape(g2, (*g2.shape, 1))
        da = db = None
        if needs_grad[0]:
            da = g2 @ xp.mT(b2)
            if a.ndim == 1:
                da = xp.reshape(da, (*da.shape[:-2], da.shape[-1]))
        if needs_grad[1]:
            db = xp.mT(a2) @ g2
            if b.ndim == 1:
                db = xp.reshape(db, db.shape[:-1])
        return da, db


ACTIVATIONS: dict[str, type[Op] | None] = {
    "none": None,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "relu": ReLU,
}
"""The activations Dense can apply: their rules read the output only, so Dense keeps no z."""


class Dense(Op):
    """out = act(x @ W + b), a whole layer as one node (x is (batch, in), W (in, out), b (out,));
    δ = act'·g (the activation's own rule, from out),  dx = δ Wᵀ,  dW = xᵀ δ,  db = Σ_rows δ

    ``b`` is optional: the inputs are (x, W) or (x, W, b); the saved argument is the activation
    op (None for none). One node instead of three (MatMul, Add, activation): a small network's
    step is mostly per-node overhead, and this is the layer PyTorch's addmm fuses too.
    """

    makes_new_arrays = True
    takes_needs_grad = True  # the data batch x never needs its gradient multiplied out

    @staticmethod
    def forward(xp: Any_, x: Any_, w: Any_, *rest: Any_) -> Any_:
        act = rest[-1]  # rest is (b, act) or (act,)
        z = xp.dot(x, w) if len(rest) == 1 else xp.dot(x, w) + rest[0]
        return z if act is None else act.forward(xp, z)

    @staticmethod
    def backward(
        xp: Any_, g: Any_, out: Any_, x: Any_, w: Any_, *rest: Any_, needs_grad: tuple[bool, ...]
    ) -> tuple[Any_, ...]:
        act = rest[-1]
        d = g if act is None else act.backward(xp, g, out, None)[0]
        dx = xp.dot(d, w.T) if needs_grad[0] else None
        dw = xp.dot(x.T, d) if needs_grad[1] else None
        if len(rest) == 1:
            return dx, dw
        return dx, dw, (xp.row_sum(d) if needs_grad[2] else None)


class SquaredError(Op):
    """out = Σ (p - t)² / n  (n the element count for the mean, 1 for the sum);
    dp = 2 (p - t) g / n,  dt = -dp   (one node for the loss, not four: Sub, Mul, Sum, scale)"""

    makes_new_arrays = True
    takes_needs_grad = True  # the target is data: no gradient for it

    @staticmethod
    def forward(xp: Any_, p: Any_, t: Any_, n: float) -> Any_:
        return xp.sum_squares(p - t) / n  # divided, as a mean is, not multiplied by 1 / n

    @staticmethod
    def backward(
        xp: Any_, g: Any_, out: Any_, p: Any_, t: Any_, n: float, *, needs_grad: tuple[bool, ...]
    ) -> tuple[Any_, ...]:
        dp = (p - t) * (g * (2.0 / n))
        return (dp if needs_grad[0] else None), (-dp if needs_grad[1] else None)


class Reshape(Op):
    """out = x reshaped;  dx = g reshaped back to x's shape"""

    @staticmethod
    def forward(xp: Any_, x: Any_, shape: tuple[int, ...]) -> Any_:
        return xp.reshape(x, shape)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, shape: tuple[int, ...]) -> tuple[Any_, ...]:
        return (xp.reshape(g, x.shape),)


class Transpose(Op):
    """out = x with axes permuted;  dx = g with the inverse permutation"""

    @staticmethod
    def forward(xp: Any_, x: Any_, axes: tuple[int, ...]) -> Any_:
        return xp.transpose(x, axes)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, axes: tuple[int, ...]) -> tuple[Any_, ...]:
        inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return (xp.transpose(g, inverse),)


class BroadcastTo(Op):
    """out = x broadcast to shape;  dx = g summed back to x's shape (done by the engine)"""

    @staticmethod
    def forward(xp: Any_, x: Any_, shape: tuple[int, ...]) -> Any_:
        return xp.broadcast_to(x, shape)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, shape: tuple[int, ...]) -> tuple[Any_, ...]:
        return (g,)


class Index(Op):
    """out = x[index];  dx = zeros of x's shape, g added at index (repeats accumulate)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_, index: Any_) -> Any_:
        return x[index]

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, index: Any_) -> tuple[Any_, ...]:
        return (xp.scatter(g, x.shape, index),)


class Scatter(Op):
    """out = zeros(shape) with x added at index;  dx = g[index]   (Index's derivative, as an op)"""

    @staticmethod
    def forward(xp: Any_, x: Any_, shape: tuple[int, ...], index: Any_) -> Any_:
        return xp.scatter(x, shape, index)

    @staticmethod
    def backward(
        xp: Any_, g: Any_, out: Any_, x: Any_, shape: tuple[int, ...], index: Any_
    ) -> tuple[Any_, ...]:
        return (g[index],)


class Concatenate(Op):
    """out = the inputs joined along axis;  dx_i = the slice of g that x_i filled"""

    @staticmethod
    def forward(xp: Any_, *args: Any_) -> Any_:
        return xp.concatenate(args[:-1], args[-1])

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, *args: Any_) -> tuple[Any_, ...]:
        *xs, axis = args
        grads = []
        start = 0
        for x in xs:
            stop = start + x.shape[axis]
            index = (slice(None),) * (axis % g.ndim) + (slice(start, stop),)
            grads.append(g[index])
            start = stop
        return tuple(grads)


class Where(Op):
    """out = a where cond else b;  da = g * [cond],  db = g * [not cond]"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, a: Any_, b: Any_, cond: Any_) -> Any_:
        return xp.where(cond, a, b)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, a: Any_, b: Any_, cond: Any_) -> tuple[Any_, ...]:
        return g * cond, g * ~cond


class Softmax(Op):
    """out = exp(x) / sum(exp(x)) over axis;  dx = out * (g - sum(g * out, axis))"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_, axis: int) -> Any_:
        return xp.softmax(x, axis)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, axis: int) -> tuple[Any_, ...]:
        return (out * (g - xp.sum(g * out, axis, True)),)


class LogSoftmax(Op):
    """out = x - logsumexp(x) over axis;  dx = g - exp(out) * sum(g, axis)"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_, axis: int) -> Any_:
        return xp.log_softmax(x, axis)

    @staticmethod
    def backward(xp: Any_, g: Any_, out: Any_, x: Any_, axis: int) -> tuple[Any_, ...]:
        return (g - xp.exp(out) * xp.sum(g, axis, True),)


class LogSumExp(Op):
    """out = log(sum(exp(x))) over axis;  dx = g * exp(x - out), g and out broadcast back"""

    makes_new_arrays = True

    @staticmethod
    def forward(xp: Any_, x: Any_, axis: Any_, keepdims: bool) -> Any_:
        return xp.logsumexp(x, axis, keepdims)

    @staticmethod
    def backward(
        xp: Any_, g: Any_, out: Any_, x: Any_, axis: Any_, keepdims: bool
    ) -> tuple[Any_, ...]:
        shape = x.shape
        return (
            xp.expand(g, shape, axis, keepdims) * xp.exp(x - xp.expand(out, shape, axis, keepdims)),
        )
