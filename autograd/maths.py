"""The three math namespaces (``xp``) an op's rule can run on: floats, NumPy arrays, graph nodes.

An op calls ``xp.exp(x)`` rather than ``math.exp`` or ``np.exp``, so the same rule computes on plain
floats (Value), arrays (Tensor) and, when the backward pass is recorded for higher derivatives, on
nodes. Masks such as ``positive`` always return plain data: they are constants, not functions of x.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["ArrayMath", "FloatMath", "NodeMath"]


def _keep_shape(shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    """The shape a reduction over ``axis`` has with keepdims=True."""
    if axis is None:
        return (1,) * len(shape)
    axes = {a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class FloatMath:
    """Math on Python floats, with the errors a learner needs instead of silent NaN."""

    @staticmethod
    def div(a: float, b: float) -> float:
        try:
            return a / b
        except ZeroDivisionError:
            raise ZeroDivisionError(f"division by zero: {a!r} / {b!r}") from None

    @staticmethod
    def pow(x: float, p: float) -> float:
        try:
            out = x**p
        except ZeroDivisionError:
            raise ZeroDivisionError(f"0.0 raised to a negative power: {x!r} ** {p!r}") from None
        except OverflowError:
            if x < 0.0 and p == int(p) and int(p) % 2 == 1:  # (-10.0) ** 1001
                return -math.inf
            if x < 0.0 and p != int(p):
                raise ValueError(
                    f"negative number raised to a fractional power: {x!r} ** {p!r}"
                ) from None
            return math.inf
        if isinstance(out, complex):
            raise ValueError(f"negative number raised to a fractional power: {x!r} ** {p!r}")
        return out  # type: ignore[no-any-return]

    @staticmethod
    def exp(x: float) -> float:
        try:
            return math.exp(x)
        except OverflowError:
            return math.inf

    @staticmethod
    def log(x: float) -> float:
        if x <= 0.0:
            raise ValueError(f"log of a non-positive number: log({x!r})")
        return math.log(x)

    @staticmethod
    def sqrt(x: float) -> float:
        if x < 0.0:
            raise ValueError(f"square root of a negative number: sqrt({x!r})")
        return math.sqrt(x)

    tanh = staticmethod(math.tanh)
    sin = staticmethod(math.sin)
    cos = staticmethod(math.cos)
    abs = staticmethod(abs)

    @staticmethod
    def times_pow(c: float, a: float, p: float) -> float:
        return 0.0 if c == 0.0 else c * FloatMath.pow(a, p)

    @staticmethod
    def pow_log(out: float, a: float, b: float) -> float:
        return 0.0 if a == 0.0 and b >= 0.0 else out * FloatMath.log(a)

    @staticmethod
    def sigmoid(x: float) -> float:
        # exp of a negative number only, so |x| = 1000 neither overflows nor loses the small side
        if x >= 0.0:
            return 1.0 / (1.0 + math.exp(-x))
        e = math.exp(x)
        return e / (1.0 + e)

    @staticmethod
    def relu(x: float) -> float:
        return 0.0 if x <= 0.0 else x  # NaN stays NaN, as in NumPy

    @staticmethod
    def positive(x: float) -> float:
        return 1.0 if x > 0.0 else 0.0

    @staticmethod
    def sign(x: float) -> float:
        return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)

    # NaN wins, as in np.maximum and np.minimum
    @staticmethod
    def maximum(a: float, b: float) -> float:
        return a if a >= b or math.isnan(a) else b

    @staticmethod
    def minimum(a: float, b: float) -> float:
        return a if a <= b or math.isnan(a) else b

    @staticmethod
    def winner(a: float, b: float) -> float:
        return 1.0 if a > b else (0.5 if a == b else 0.0)

    fsum = staticmethod(sum)


# By dtype: 1, and the largest argument exp takes without overflowing (a little inside the
# limit), as 0-d arrays of that dtype: NumPy combines an array with a 0-d array of its own dtype
# without first placing a Python float in its type hierarchy, and the sigmoid takes three such
# constants on every call.
_SIGMOID_CONSTANTS = {
    np.dtype(dtype): (np.array(1.0, dtype), np.array(clip, dtype))
    for dtype, clip in ((np.float64, 709.7), (np.float32, 88.7))
}
for _consts in _SIGMOID_CONSTANTS.values():
    for _c in _consts:
        _c.flags.writeable = False


_ONES: dict[tuple[int, np.dtype], np.ndarray] = {}
# Multiply-adds up to which ArrayMath.dot calls np.dot rather than @ (measured on this project's
# benchmarks: a 100×16 by 16×16 product is 25,600; 128×1000 by 1000×100 is 12.8 million).
_SMALL_PRODUCT = 1 << 16


class ArrayMath:
    """Math on NumPy arrays; numerically stable where the naive formula overflows.

    Array methods (``x.sum(...)``) rather than NumPy's functions (``np.sum(x, ...)``) where both
    exist: the functions add a Python-level wrapper, about a microsecond a call, on every op.
    """

    div = staticmethod(np.divide)
    pow = staticmethod(np.power)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sqrt = staticmethod(np.sqrt)
    tanh = staticmethod(np.tanh)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    abs = staticmethod(np.abs)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    where = staticmethod(np.where)

    @staticmethod
    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # The product of 2-D operands (or a vector and a matrix). On a small layer np.dot gives
        # @'s result bit for bit without matmul's generalised-ufunc set-up; on large products
        # it is no faster and sometimes slower, so there: @ (bench/README.md has the figures).
        return np.dot(a, b) if a.size * b.shape[-1] <= _SMALL_PRODUCT else a @ b

    @staticmethod
    def reshape(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return x.reshape(shape)

    @staticmethod
    def transpose(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return x.transpose(axes)

    @staticmethod
    def broadcast_to(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if x.shape == shape:
            return x
        x = np.ascontiguousarray(x)
        if x.ndim != len(shape):
            return np.broadcast_to(x, shape)
        # A read-only view with stride 0 along the broadcast axes, as np.broadcast_to makes,
        # built directly: np.broadcast_to's own checks cost more than the rest of a small op.
        strides = tuple(
            0 if n == 1 and s != 1 else st
            for n, s, st in zip(x.shape, shape, x.strides, strict=True)
        )
        view: np.ndarray = np.ndarray(shape, x.dtype, x, 0, strides)
        view.flags.writeable = False
        return view

    @staticmethod
    def times_pow(c: np.ndarray, a: np.ndarray, p: np.ndarray) -> np.ndarray:
        zero = c == 0
        return np.where(zero, 0.0, c * np.power(np.where(zero, 1.0, a), p))

    @staticmethod
    def pow_log(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        flat = (a == 0) & (b >= 0)
        return np.where(flat, 0.0, out * np.log(np.where(flat, 1.0, a)))

    @staticmethod
    def sigmoid(x: np.ndarray) -> np.ndarray:
        # exp(-x) would overflow below x = -709.7 (-88.7 in float32). Clipping there costs a
        # quarter of the time of silencing the warning (np.errstate) and half that of the
        # two-branch form; below the clip the result stays at sigmoid(-709.7) = 6e-309 (3e-39)
        # rather than underflowing further, an error smaller than the least normal float.
        # Elsewhere it is accurate to a few ulps on both sides.
        one, clip = _SIGMOID_CONSTANTS.get(x.dtype, (1.0, 709.7))
        return one / (one + np.exp(np.minimum(-x, clip)))

    @staticmethod
    def relu(x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    @staticmethod
    def positive(x: np.ndarray) -> np.ndarray:
        return x > 0

    @staticmethod
    def sign(x: np.ndarray) -> np.ndarray:
        return np.sign(x)

    @staticmethod
    def winner(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a > b) + 0.5 * (a == b)

    @staticmethod
    def sum(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def amax(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        return x.max(axis=axis, keepdims=keepdims)

    @staticmethod
    def amin(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        return x.min(axis=axis, keepdims=keepdims)

    @staticmethod
    def expand(g: np.ndarray, shape: tuple[int, ...], axis: Any, keepdims: bool) -> np.ndarray:
        if not keepdims:
            g = g.reshape(_keep_shape(shape, axis))
        return ArrayMath.broadcast_to(g, shape)

    @staticmethod
    def argmax_share(x: np.ndarray, out: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        hit = x == ArrayMath.expand(out, x.shape, axis, keepdims)
        return hit / np.sum(hit, axis=axis, keepdims=True)

    @staticmethod
    def mT(x: np.ndarray) -> np.ndarray:
        return x.swapaxes(-1, -2)

    @staticmethod
    def sum_squares(x: np.ndarray) -> np.ndarray:
        # one BLAS dot instead of a multiply and a sum
        flat = x.reshape(-1)
        return np.dot(flat, flat)

    @staticmethod
    def row_sum(x: np.ndarray) -> np.ndarray:
        # 1ᵀx: one BLAS call, a third of the time of x.sum(axis=0) on a layer-sized array. The
        # ones are kept, read-only, per length and dtype: a training loop asks for the same few.
        key = (x.shape[0], x.dtype)
        ones = _ONES.get(key)
        if ones is None:
            if len(_ONES) >= 64:
                _ONES.clear()
            ones = _ONES[key] = np.ones(x.shape[0], x.dtype)
            ones.flags.writeable = False
        return ArrayMath.dot(ones, x)

    @staticmethod
    def scatter(g: np.ndarray, shape: tuple[int, ...], index: Any) -> np.ndarray:
        out = np.zeros(shape, dtype=g.dtype)
        np.add.at(out, index, g)  # unlike out[index] += g, repeated indices accumulate
        return out

    @staticmethod
    def concatenate(xs: Any, axis: int) -> np.ndarray:
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def logsumexp(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        top = np.max(x, axis=axis, keepdims=True, initial=-np.inf)  # -inf over an empty axis
        top = np.where(np.isfinite(top), top, 0.0)  # all -inf along the axis: leave log(0) = -inf
        with np.errstate(divide="ignore"):  # log(0) = -inf is the answer there, not a mistake
            out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
        return out if keepdims else np.squeeze(out, axis=axis)

    @staticmethod
    def log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
        # subtract the max first: (x - top) - log(sum) keeps float32 exact where x is large
        shifted = x - np.max(x, axis=axis, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))

    @staticmethod
    def softmax(x: np.ndarray, axis: int) -> np.ndarray:
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


class NodeMath:
    """Math on graph nodes, for a recorded backward pass: each call adds nodes to the graph."""

    @staticmethod
    def div(a: Any, b: Any) -> Any:
        return a / b

    @staticmethod
    def pow(x: Any, p: Any) -> Any:
        return x**p

    @staticmethod
    def exp(x: Any) -> Any:
        return x.exp()

    @staticmethod
    def log(x: Any) -> Any:
        return x.log()

    @staticmethod
    def sin(x: Any) -> Any:
        return x.sin()

    @staticmethod
    def cos(x: Any) -> Any:
        return x.cos()

    # c * a ** p and out * log(a) with the zeros of the float and array forms: a is shifted to 1
    # where the result is 0 anyway, so the recorded graph never evaluates 0 ** -1 or log(0).
    @staticmethod
    def times_pow(c: Any, a: Any, p: Any) -> Any:
        zero = c.data == 0
        return c * (a + zero * 1.0) ** p

    @staticmethod
    def pow_log(out: Any, a: Any, b: Any) -> Any:
        flat = (a.data == 0) & (b.data >= 0)
        return out * (a + flat * 1.0).log()

    @staticmethod
    def positive(x: Any) -> Any:
        return ArrayMath.positive(x.data) if hasattr(x, "shape") else FloatMath.positive(x.data)

    @staticmethod
    def sign(x: Any) -> Any:
        return ArrayMath.sign(x.data) if hasattr(x, "shape") else FloatMath.sign(x.data)

    @staticmethod
    def winner(a: Any, b: Any) -> Any:
        if hasattr(a, "shape"):
            return ArrayMath.winner(a.data, b.data)
        return FloatMath.winner(a.data, b.data)

    @staticmethod
    def sum(x: Any, axis: Any, keepdims: bool) -> Any:
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def expand(g: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
        if not keepdims:
            g = g.reshape(_keep_shape(shape, axis))
        return g.broadcast_to(shape)

    @staticmethod
    def argmax_share(x: Any, out: Any, axis: Any, keepdims: bool) -> Any:
        return ArrayMath.argmax_share(x.data, out.data, axis, keepdims)

    @staticmethod
    def reshape(x: Any, shape: tuple[int, ...]) -> Any:
        return x.reshape(shape)

    @staticmethod
    def transpose(x: Any, axes: tuple[int, ...]) -> Any:
        return x.transpose(axes)

    @staticmethod
    def dot(a: Any, b: Any) -> Any:
        return a @ b

    @staticmethod
    def row_sum(x: Any) -> Any:
        return x.sum(axis=0)

    @staticmethod
    def sum_squares(x: Any) -> Any:
        return (x * x).sum()

    @staticmethod
    def mT(x: Any) -> Any:
        axes = list(range(x.ndim))
        axes[-1], axes[-2] = axes[-2], axes[-1]
        return x.transpose(tuple(axes))

    @staticmethod
    def scatter(g: Any, shape: tuple[int, ...], index: Any) -> Any:
        return g._scatter(shape, index)
