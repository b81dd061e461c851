"""Emitting: symbolic values and the symbolic math namespace that writes one assignment per call."""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import maths
from .errors import CompileError

if TYPE_CHECKING:
    from .program import _Program


class _Sym:
    """A value in the generated code: its name there, and its value in the trace (for shapes)."""

    __slots__ = ("em", "name", "val")
    __array_ufunc__ = None  # an ndarray on the left defers to our reflected operators

    def __init__(self, em: _Emitter, name: str, val: Any) -> None:
        self.em = em
        self.name = name
        self.val = val

    def __add__(self, o: Any) -> _Sym:
        return self.em.binary("+", operator.add, self, o)

    def __radd__(self, o: Any) -> _Sym:
        return self.em.binary("+", operator.add, o, self)

    def __sub__(self, o: Any) -> _Sym:
        return self.em.binary("-", operator.sub, self, o)

    def __rsub__(self, o: Any) -> _Sym:
        return self.em.binary("-", operator.sub, o, self)

    def __mul__(self, o: Any) -> _Sym:
        return self.em.binary("*", operator.mul, self, o)

    def __rmul__(self, o: Any) -> _Sym:
        return self.em.binary("*", operator.mul, o, self)

    def __truediv__(self, o: Any) -> _Sym:
        return self.em.binary("/", operator.truediv, self, o)

    def __rtruediv__(self, o: Any) -> _Sym:
        return self.em.binary("/", operator.truediv, o, self)

    def __matmul__(self, o: Any) -> _Sym:
        return self.em.matmul(self, o)

    def __rmatmul__(self, o: Any) -> _Sym:
        return self.em.matmul(o, self)

    def __pow__(self, o: Any) -> _Sym:
        return self.em.binary("**", operator.pow, self, o)

    def __rpow__(self, o: Any) -> _Sym:
        return self.em.binary("**", operator.pow, o, self)

    def __neg__(self) -> _Sym:
        return self.em.emit(f"-{self.name}", -self.val, (self,), fresh=True)

    def __invert__(self) -> _Sym:
        return self.em.emit(f"~{self.name}", ~self.val, (self,))

    def __getitem__(self, index: Any) -> _Sym:
        em = self.em  # an index may hold symbols (an index array computed on every call)
        val = self.val[em.value(index)]
        return em.emit(f"{self.name}[{em.fmt(index)}]", val, (self, *em.used(index)))

    @property
    def T(self) -> _Sym:
        return self.em.emit(f"{self.name}.T", self.val.T, (self,))

    @property
    def shape(self) -> Any:
        return self.val.shape

    @property
    def ndim(self) -> Any:
        return self.val.ndim

    @property
    def dtype(self) -> Any:
        return self.val.dtype

    @property
    def size(self) -> Any:
        return self.val.size

    def __bool__(self) -> bool:
        raise CompileError("an op's rule branches on a value, which compile cannot replay")

    def __hash__(self) -> int:
        return id(self)


class _SymMath:
    """The symbolic twin of a math namespace: each call computes and emits one assignment."""

    def __init__(self, em: _Emitter, real: Any) -> None:
        self._em = em
        self._real = real

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._real, name)
        if not callable(fn):
            return fn
        em = self._em
        inline = _INLINE.get((self._real, name))
        if inline is not None:
            return lambda *args: inline(em, *args)
        ref = em.function(name, fn)

        def call(*args: Any, **kwargs: Any) -> Any:
            val = fn(*[em.value(a) for a in args], **{k: em.value(v) for k, v in kwargs.items()})
            parts = [em.fmt(a) for a in args]
            parts += [f"{k}={em.fmt(v)}" for k, v in kwargs.items() if k.isidentifier()]
            return em.emit(f"{ref}({', '.join(parts)})", val, em.used(args, kwargs))

        return call


_LITERAL_TYPES = (bool, int, type(None))


# -- the math namespaces' one-call functions, written out where they are used -------------------
# Each form makes exactly the NumPy call the namespace function makes, so the result is
# the same to the bit (tests/autograd/test_compile.py checks each against the function itself);
# what it saves is a Python call per op, which on a small network is most of a step's time.


def _method(method: str, *names: str) -> Callable[..., _Sym]:
    def form(em: _Emitter, x: _Sym, *args: Any) -> _Sym:
        if names:
            kwargs = dict(zip(names, args, strict=True))
            val = getattr(x.val, method)(**kwargs)
            text = ", ".join(f"{k}={em.fmt(v)}" for k, v in kwargs.items())
        else:
            val = getattr(x.val, method)(*args)
            text = ", ".join(em.fmt(a) for a in args)
        return em.emit(f"{x.name}.{method}({text})", val, (x,))

    return form


_REDUCE = {
    "sum": ("add_reduce", np.add.reduce),
    "max": ("maximum_reduce", np.maximum.reduce),
    "min": ("minimum_reduce", np.minimum.reduce),
}


def _reduce(em: _Emitter, method: str, x: _Sym, axis: Any, keepdims: bool) -> _Sym:
    """x.sum(axis=..., keepdims=...) as the ufunc reduction it calls, without NumPy's Python
    layer in between (ndarray.sum is _methods._sum, which calls np.add.reduce)."""
    val = getattr(x.val, method)(axis=axis, keepdims=keepdims)
    if method != "sum" and axis is None:  # max and min of everything: keep NumPy's own path
        return em.emit(f"{x.name}.{method}(axis=None, keepdims={keepdims!r})", val, (x,))
    name, fn = _REDUCE[method]
    ref = em.program.helper(name, fn)
    return em.emit(
        f"{ref}({x.name}, {em.fmt(axis)}, None, None, {keepdims!r})", val, (x,), fresh=True
    )


def _call(em: _Emitter, name: str, fn: Any, *args: Any) -> _Sym:
    ref = em.program.helper(name, fn)
    val = fn(*[em.value(a) for a in args])
    fresh = isinstance(fn, np.ufunc) or fn is np.dot
    text = f"{ref}({', '.join(em.fmt(a) for a in args)})"
    return em.emit(text, val, em.used(args), fresh=fresh)


def _array_dot(em: _Emitter, a: Any, b: Any) -> _Sym:
    # ArrayMath.dot's rule, taken at the trace's shapes (a new shape traces again)
    if em.value(a).size * em.value(b).shape[-1] <= maths._SMALL_PRODUCT:
        return _call(em, "dot", np.dot, a, b)
    return em.binary("@", operator.matmul, a, b)


# Dtypes whose 2-D products np.dot and @ both hand to BLAS's gemm: the same bits.
_BLAS_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


def _array_mT(em: _Emitter, x: _Sym) -> _Sym:
    if x.val.ndim == 2:  # the same view: for a matrix, swapping the last two axes is .T
        return em.emit(f"{x.name}.T", x.val.T, (x,))
    return em.emit(f"{x.name}.swapaxes(-1, -2)", x.val.swapaxes(-1, -2), (x,))


def _array_sigmoid(em: _Emitter, x: _Sym) -> _Sym:
    one, clip = maths._SIGMOID_CONSTANTS.get(x.val.dtype, (1.0, 709.7))
    e = _call(em, "exp", np.exp, _call(em, "minimum", np.minimum, -x, clip))
    return em.binary("/", operator.truediv, one, em.binary("+", operator.add, one, e))


def _array_sum_squares(em: _Emitter, x: _Sym) -> _Sym:
    flat = em.emit(f"{x.name}.reshape(-1)", x.val.reshape(-1), (x,))
    return _call(em, "dot", np.dot, flat, flat)


def _array_row_sum(em: _Emitter, x: _Sym) -> _Sym:
    maths.ArrayMath.row_sum(x.val)  # makes (or finds) the kept ones of this length and dtype
    ones = maths._ONES[(x.val.shape[0], x.val.dtype)]
    return _array_dot(em, _Sym(em, em.fmt(ones), ones), x)


_INLINE: dict[tuple[Any, str], Callable[..., _Sym]] = {
    (maths.ArrayMath, "sum"): lambda em, x, axis, keepdims: _reduce(em, "sum", x, axis, keepdims),
    (maths.ArrayMath, "amax"): lambda em, x, axis, keepdims: _reduce(em, "max", x, axis, keepdims),
    (maths.ArrayMath, "amin"): lambda em, x, axis, keepdims: _reduce(em, "min", x, axis, keepdims),
    (maths.ArrayMath, "reshape"): _method("reshape"),
    (maths.ArrayMath, "transpose"): _method("transpose"),
    (maths.ArrayMath, "mT"): _array_mT,
    (maths.ArrayMath, "dot"): _array_dot,
    (maths.ArrayMath, "sigmoid"): _array_sigmoid,
    (maths.ArrayMath, "sum_squares"): _array_sum_squares,
    (maths.ArrayMath, "row_sum"): _array_row_sum,
    (maths.ArrayMath, "positive"): lambda em, x: em.binary(">", operator.gt, x, 0),
    (maths.ArrayMath, "relu"): lambda em, x: _call(em, "maximum", np.maximum, x, 0),
}


class _Line:
    __slots__ = ("expr", "fresh", "target", "uses")

    def __init__(self, target: str, expr: str, uses: tuple[str, ...], fresh: bool = False) -> None:
        self.target = target
        self.expr = expr
        self.uses = uses
        # the expression always makes a new array (an operator, a ufunc, a reduction), never
        # a view or one of its inputs, whatever the inputs' memory layout on a later call
        self.fresh = fresh


class _Emitter:
    """Writes one function body: assignments, named values, kept constants."""

    def __init__(self, program: _Program, prefix: str) -> None:
        self.program = program
        self.prefix = prefix
        self.lines: list[_Line | str] = []
        self.count = itertools.count()
        # Names whose value is the same on every call (the implied seed 1 of a backward, and
        # what is computed from it and literals alone): such a value is computed once, here,
        # and kept (k0...), rather than recomputed by every replay. The same computation, once.
        self.fixed: set[str] | None = None

    # -- values ----------------------------------------------------------------------------------

    def value(self, x: Any) -> Any:
        if isinstance(x, _Sym):
            return x.val
        if isinstance(x, (list, tuple)):
            return type(x)(self.value(v) for v in x)
        return x

    def used(self, args: Any, kwargs: Any = None) -> tuple[_Sym, ...]:
        out: list[_Sym] = []

        def walk(x: Any) -> None:
            if isinstance(x, _Sym):
                out.append(x)
            elif isinstance(x, (list, tuple)):
                for v in x:
                    walk(v)

        walk(args)
        if kwargs:
            walk(list(kwargs.values()))
        return tuple(out)

    def emit(
        self,
        expr: str,
        val: Any,
        uses: tuple[Any, ...],
        fresh: bool = False,
    ) -> _Sym:
        names = tuple(u.name for u in uses if isinstance(u, _Sym))
        fixed = self.fixed
        if fixed is not None and names and all(n in fixed for n in names):
            if isinstance(val, np.ndarray):
                val.flags.writeable = False  # shared by every replay from now on
            kept = self.program.constant(val)
            fixed.add(kept)
            return _Sym(self, kept, val)
        name = f"{self.prefix}{next(self.count)}"
        self.lines.append(_Line(name, expr, names, fresh))
        return _Sym(self, name, val)

    def bind(self, name: str, expr: str, val: Any) -> _Sym:
        """An input of the function (an argument, a leaf, a saved value), under a given name."""
        self.lines.append(_Line(name, expr, ()))
        return _Sym(self, name, val)

    def comment(self, text: str) -> None:
        self.lines.append(f"# {text}")

    def binary(self, sym: str, fn: Any, a: Any, b: Any) -> _Sym:
        val = fn(self.value(a), self.value(b))
        return self.emit(f"{self.fmt(a)} {sym} {self.fmt(b)}", val, self.used((a, b)), fresh=True)

    def matmul(self, a: Any, b: Any) -> _Sym:
        """a @ b, where the rules write it (MatMul's forward and backward).

        A product of two small matrices of one float dtype is written as ArrayMath.dot writes
        it, with np.dot: the same BLAS call, so the same bits as @, without the generalised
        ufunc's set-up, which costs more than the product itself at a small layer's size. Any
        other product (batched, a vector, mixed dtypes) stays @.
        """
        x, y = self.value(a), self.value(b)
        if (
            x.__class__ is np.ndarray
            and y.__class__ is np.ndarray
            and x.ndim == y.ndim == 2
            and x.dtype == y.dtype
            and x.dtype in _BLAS_FLOATS
        ):
            return _array_dot(self, a, b)
        return self.binary("@", operator.matmul, a, b)

    def function(self, name: str, fn: Any) -> str:
        return self.program.function(name, fn)

    # -- source text of a value ----------------------------------------------------------------

    def fmt(self, x: Any) -> str:
        """x as source: a name, a literal built here from numbers, or a kept constant (k0)."""
        if isinstance(x, _Sym):
            return x.name
        if x.__class__ is float:
            if math.isfinite(x):
                text = repr(x)  # the shortest text that reads back as exactly this float
                return f"({text})" if text.startswith("-") else text
            return self.program.constant(x)
        if isinstance(x, _LITERAL_TYPES):
            text = repr(x)
            return f"({text})" if text.startswith("-") else text
        if x.__class__ is tuple:
            inner = ", ".join(self.fmt(v) for v in x)
            return f"({inner},)" if len(x) == 1 else f"({inner})"
        if x.__class__ is list:
            return "[" + ", ".join(self.fmt(v) for v in x) + "]"
        if x.__class__ is slice and all(
            isinstance(v, _LITERAL_TYPES) for v in (x.start, x.stop, x.step)
        ):
            return f"slice({self.fmt(x.start)}, {self.fmt(x.stop)}, {self.fmt(x.step)})"
        if x is Ellipsis:
            return "..."
        if isinstance(x, np.ndarray):
            bound = self.program.array_name(x, self)
            if bound is not None:
                return bound
        return self.program.constant(x)
