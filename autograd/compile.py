"""compile: a training step traced once and replayed as straight-line code a learner can print.

``@compile`` runs the decorated function once eagerly (the trace), walks the graph it recorded,
and writes Python source for its forward and backward passes: one assignment per result, NumPy
calls for Tensors and float arithmetic for Values. The source is made by running each op's own
``forward`` and ``backward`` rule on a symbolic math namespace (``_SymMath``) whose values are
names, so every derivative is still written once, in ops.py, and the generated code performs the
eager engine's arithmetic in the eager engine's order: the results are bit for bit the same.

What the generated code reads on every call, and what it may freeze:

- arguments (Tensors, Values, NumPy arrays) are read afresh on every call, and everything the
  function computes from them (``Y * 2``, a mask ``X > 0``) is recomputed;
- leaves the function reads from outside it (parameters) are read through the leaf on every
  call, so ``p.data -= ...`` and ``p.data = ...`` are both seen;
- constants made inside the function (a literal, ``Tensor(np.ones(3))``) are kept as they were.

A Python number, string or other non-array argument is part of the trace: a new value traces
again, as does a new shape or dtype of an array argument. The generated source is built only
from the op table, generated names (``x0`` arguments, ``p0`` leaves, ``t0`` values, ``g0``
gradients, ``k0`` kept constants), shapes, indices and exact float literals: never a label or
any other string of the user's.
"""

from __future__ import annotations

import builtins
import collections
import contextvars
import functools
import itertools
import math
import operator
import threading
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NamedTuple

import numpy as np

from . import engine, maths
from . import tensor as _tensor_mod
from . import value as _value_mod
from .engine import Node
from .modes import cycle_collector_paused
from .tensor import Tensor, unbroadcast_axes
from .value import Value

__all__ = ["CompileError", "Compiled", "compile"]

# Statements per generated function. A straight-line function of 100,000 statements takes
# seconds to build and makes each call's frame enormous; chunks keep both small.
CHUNK = 2_000

# Ops in one trace above which the step is replayed by running the function eagerly: building
# generated code costs time and memory per statement, and past this size the build's memory,
# not the replay's speed, is what a user notices (bench/README.md has the measured costs).
MAX_OPS = 200_000


class CompileError(RuntimeError):
    """The function does something a trace cannot replay faithfully (raised while tracing)."""


_CONTROL_FLOW = (
    "compile traces the function once and replays the ops it recorded, so a Python decision "
    "taken on a traced value ({what}) would be frozen into every later call. Inside a "
    "compiled function choose with where(cond, a, b), maximum or minimum, keep the decision "
    "outside it, or call the function eagerly (without @compile)"
)


def _refuse(what: str) -> CompileError:
    return CompileError(_CONTROL_FLOW.format(what=what))


# ---------------------------------------------------------------------------------------------
# The engine's view (one place to follow the engine's interface)


def _order(root: Node) -> list[Node]:
    """The eager backward pass's order (root first): the generated backward follows it exactly."""
    return engine.toposort(root)


# ---------------------------------------------------------------------------------------------
# Tracing: the eager run, with every op recorded (constants' too) and control flow refused


class _Mask(np.ndarray):
    """A comparison of a traced Tensor (``X > 0``): data, recomputed on every call."""

    src: tuple[str, Any, Any]
    trace: _Trace  # type: ignore[assignment]  # ndarray has a method of that name

    def __bool__(self) -> bool:
        raise _refuse("bool() of a comparison of Tensors")

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # masks combine (inside = (p >= lo) & (p <= hi)); anything else would be frozen
        sym = _MASK_UFUNCS.get(ufunc)
        if sym is None or method != "__call__" or kwargs:
            raise CompileError(
                f"compile cannot follow NumPy's {ufunc.__name__} on a comparison of traced "
                "Tensors: pass comparisons (combined with &, | and ~) to where(cond, a, b), or "
                "compute with Tensors instead"
            )
        plain = [x.view(np.ndarray) if isinstance(x, _Mask) else x for x in inputs]
        out = ufunc(*plain).view(_Mask)
        out.src = (sym, *inputs) if len(inputs) == 2 else (sym, inputs[0], None)
        out.trace = self.trace
        self.trace.masks.append(out)
        self.trace.keep.append(out)
        return out


class _Frozen(np.ndarray):
    """``.data`` of a traced Tensor while tracing: metadata yes, NumPy arithmetic no."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        raise CompileError(
            f"compile cannot follow NumPy's {ufunc.__name__} on .data of a Tensor the function "
            "computes or takes: it would run once, at the trace, and its result would be "
            "replayed unchanged. Compute with the Tensor itself (where, maximum, minimum, "
            "arithmetic), or call the function eagerly"
        )

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func in (np.shape, np.ndim, np.size, np.result_type):
            return super().__array_function__(func, types, args, kwargs)
        raise CompileError(
            f"compile cannot follow np.{func.__name__} on .data of a Tensor the function "
            "computes or takes: it would run once, at the trace, and its result would be "
            "replayed unchanged. Compute with the Tensor itself, or call the function eagerly"
        )

    def __bool__(self) -> bool:
        raise _refuse("bool() of a Tensor's .data")

    def item(self, *args: Any) -> Any:
        raise _refuse(".item() of a Tensor's .data")

    def tolist(self) -> Any:
        raise _refuse(".tolist() of a Tensor's .data")


def _root_buffer(a: np.ndarray) -> Any:
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    """a is b, or a full view of b's memory (what np.asarray of a subclass gives)."""
    if a is b:
        return True
    return (
        _root_buffer(a) is _root_buffer(b)
        and a.shape == b.shape
        and a.dtype == b.dtype
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


class _Trace:
    """Records, while the function runs eagerly, every node made and how."""

    def __init__(self, flat: list[Any]) -> None:
        # the arguments' arrays, by id: a Tensor made from one reads the argument on replay
        self.arg_arrays: dict[int, int] = {}
        self.watched: set[int] = set()  # argument nodes: their .data is traced too
        for i, a in enumerate(flat):
            data = a._data if isinstance(a, Node) else a
            if isinstance(data, np.ndarray):
                self.arg_arrays.setdefault(id(data), i)
            if isinstance(a, Node):
                self.watched.add(id(a))
        self.from_arg: dict[int, int] = {}
        self.arg_copies: list[tuple[np.ndarray, int]] = [
            (a._data if isinstance(a, Node) else a, i)
            for i, a in enumerate(flat)
            if isinstance(a._data if isinstance(a, Node) else a, np.ndarray)
        ]
        self.made_buffers: set[int] = set()
        # node id -> (node, op, parents, params), in the order the ops ran
        self.made: dict[int, tuple[Node, Any, tuple[Node, ...], tuple[Any, ...]]] = {}
        self.inside: dict[int, Node] = {}  # leaves made inside the function (constants)
        self.masks: list[_Mask] = []
        self.keep: list[Any] = []  # what the ids above refer to stays alive while tracing
        # the array an op was given, by the id of the copy it keeps (see ops.kept_param)
        self.copied: dict[int, Any] = {}

    def clear(self) -> None:
        """Let go of the traced graph (the masks keep their trace otherwise)."""
        for m in self.masks:
            m.trace = None  # type: ignore[assignment]
        self.made.clear()
        self.from_arg.clear()
        self.arg_copies.clear()
        self.made_buffers.clear()
        self.inside.clear()
        self.keep.clear()
        self.copied.clear()

    def arg_of(self, a: np.ndarray) -> int | None:
        """The index of the argument whose numbers ``a`` holds (it, a view of it, or the copy a
        Tensor made of it), else None."""
        for array, i in self.arg_copies:
            if _same_array(a, array):
                return i
        return None

    def node(self, out: Node, op: Any, parents: tuple[Node, ...], params: tuple[Any, ...]) -> None:
        if self.copied:  # the arrays given, not the op's copies: an argument's is read anew
            params = self.given(params)
        if isinstance(out._data, np.ndarray):
            self.made_buffers.add(id(_root_buffer(out._data)))
        self.made[id(out)] = (out, op, tuple(parents), tuple(params))  # keeps out alive too

    def given(self, param: Any) -> Any:
        """``param`` with each array an op copied replaced by the array it was given."""
        if id(param) in self.copied:
            return self.copied[id(param)]
        if param.__class__ is tuple or param.__class__ is list:
            return param.__class__([self.given(p) for p in param])
        return param

    def leaf(self, x: Node) -> None:
        self.inside[id(x)] = x
        self.keep.append(x)

    def mask(self, sym: str, a: Tensor, b: Any, result: np.ndarray) -> _Mask:
        m = np.asarray(result).view(_Mask)
        m.src = (sym, a, b)
        m.trace = self
        self.masks.append(m)
        self.keep.append(m)
        return m


# The trace this thread (or asyncio task) is recording, or None. Tracing works by hooks on the
# front ends' methods; they are installed while any thread traces and act only for the trace of
# their own context, so another thread's eager code runs as if they were not there.
_current: contextvars.ContextVar[_Trace | None] = contextvars.ContextVar("trace", default=None)


def _hooks() -> list[tuple[Any, str, Any]]:
    """(owner, attribute, hook) for every hook tracing needs. Each hook keeps what it replaces
    (read now, before it is installed) and calls that when its context has no trace."""
    tm, vm = _tensor_mod, _value_mod
    t_init, v_init = Tensor.__dict__["__init__"], Value.__dict__["__init__"]
    data_prop = Node.__dict__["data"]

    def recorder(module: Any) -> Callable[..., Any]:
        real = module.record

        def record(cls: Any, data: Any, op: Any, parents: Any, params: Any = ()) -> Any:
            out = real(cls, data, op, parents, params)
            t = _current.get()
            if t is not None:
                t.node(out, op, parents, params)
            return out

        return record

    real_kept = tm._kept

    def kept(param: Any) -> Any:
        # The traced graph's op keeps a copy, as any graph's does; the trace notes the array it
        # was given (a batch's labels, a traced comparison), which every replay reads anew.
        copy = real_kept(param)
        t = _current.get()
        if t is not None and copy is not param:
            t.copied[id(copy)] = param
            t.keep.append(copy)
        return copy

    def tensor_init(self: Tensor, data: Any, *args: Any, **kwargs: Any) -> None:
        t = _current.get()
        if t is None:
            return t_init(self, data, *args, **kwargs)  # type: ignore[no-any-return]
        if isinstance(data, _Mask):  # a comparison used as numbers: X * (X > 0)
            raise CompileError(
                "compile cannot follow a comparison of traced Tensors made into a Tensor: "
                "use where(X > 0, X, 0.0) or maximum(X, 0.0) rather than X * (X > 0)"
            )
        source = data._data if isinstance(data, Tensor) else data
        i = t.arg_of(source) if isinstance(source, np.ndarray) else None
        if (
            i is None
            and isinstance(source, np.ndarray)
            and id(_root_buffer(source)) in t.made_buffers
        ):
            raise CompileError(
                "compile cannot follow a Tensor made from the data of a value computed "
                "inside the function (it would keep the traced numbers): compute with that "
                "Tensor itself, or detach() it"
            )
        t_init(self, data, *args, **kwargs)
        if i is not None:
            t.from_arg[id(self)] = i
            t.arg_copies.append((self._data, i))  # Tensor(Tensor(X)) reads X as well
        t.leaf(self)
        return None

    def value_init(self: Value, *args: Any, **kwargs: Any) -> None:
        v_init(self, *args, **kwargs)
        t = _current.get()
        if t is not None:
            t.leaf(self)

    def traced_data(self: Node) -> Any:
        # .data of a traced Tensor: its shape and dtype may be read, but NumPy arithmetic
        # on it would be done once, now, and frozen into every replay
        d = self._data
        t = _current.get()
        if (
            t is not None
            and d.__class__ is np.ndarray
            and (id(self) in t.made or id(self) in t.watched)
        ):
            return d.view(_Frozen)
        return d

    def refuse(owner: Any, name: str, what: str) -> tuple[Any, str, Any]:
        fn = owner.__dict__.get(name, _MISSING)

        def method(self: Any, *args: Any) -> Any:
            if _current.get() is not None:
                raise _refuse(what)
            if fn is _MISSING:  # as Python says when the class has no such method
                raise TypeError(f"{what.split(' of ')[0]} is not supported by {owner.__name__}")
            return fn(self, *args)

        return owner, name, method

    def compare(name: str, sym: str) -> tuple[Any, str, Any]:
        fn = Tensor.__dict__[name]

        def method(self: Tensor, other: Any) -> Any:
            t = _current.get()
            if t is None or (isinstance(other, Node) and not isinstance(other, Tensor)):
                return fn(self, other)  # eager, or the front end's TypeError
            right = other._data if isinstance(other, Tensor) else other
            return t.mask(sym, self, other, _COMPARE[sym](self._data, right))

        return Tensor, name, method

    hooks: list[tuple[Any, str, Any]] = [
        (tm, "record", recorder(tm)),
        (vm, "record", recorder(vm)),
        (tm, "_kept", kept),
        (Node, "data", property(traced_data, data_prop.fset, doc=data_prop.__doc__)),
        (Tensor, "__init__", tensor_init),
        (Value, "__init__", value_init),
        refuse(Tensor, "__bool__", "bool() of a Tensor"),
        refuse(Tensor, "__float__", "float() of a Tensor"),
        refuse(Tensor, "__int__", "int() of a Tensor"),
        refuse(Tensor, "item", ".item() of a Tensor"),
        refuse(Tensor, "numpy", ".numpy() of a Tensor"),
        refuse(Tensor, "__array__", "a Tensor turned into a NumPy array"),
        refuse(Value, "__bool__", "bool() of a Value"),
        refuse(Value, "__float__", "float() of a Value"),
        refuse(Value, "__int__", "int() of a Value"),
        refuse(Value, "item", ".item() of a Value"),
    ]
    for name in ("__lt__", "__le__", "__gt__", "__ge__"):
        hooks.append(refuse(Value, name, f"a comparison of Values ({name})"))
    for name, sym in (
        ("__lt__", "<"),
        ("__le__", "<="),
        ("__gt__", ">"),
        ("__ge__", ">="),
        ("__eq__", "=="),
        ("__ne__", "!="),
    ):
        hooks.append(compare(name, sym))
    return hooks


_MISSING = object()


class _Tracing:
    """``with _Tracing(trace):`` records into ``trace`` what this context runs. The hooks are
    installed by the first thread to trace and removed by the last (a lock orders them)."""

    lock = threading.Lock()
    users = 0
    replaced: ClassVar[list[tuple[Any, str, Any]]] = []  # (owner, attribute, what was there)

    def __init__(self, trace: _Trace) -> None:
        self.trace = trace
        self.token: contextvars.Token[_Trace | None] | None = None

    def __enter__(self) -> None:
        cls = _Tracing
        with cls.lock:
            if cls.users == 0:
                hooks = _hooks()
                cls.replaced = [(o, n, o.__dict__.get(n, _MISSING)) for o, n, _ in hooks]
                for owner, name, hook in hooks:
                    setattr(owner, name, hook)
            cls.users += 1
        self.token = _current.set(self.trace)

    def __exit__(self, *exc: object) -> None:
        cls = _Tracing
        assert self.token is not None
        _current.reset(self.token)
        with cls.lock:
            cls.users -= 1
            if cls.users == 0:
                for owner, name, old in cls.replaced:
                    if old is _MISSING:
                        delattr(owner, name)
                    else:
                        setattr(owner, name, old)


# ---------------------------------------------------------------------------------------------
# Emitting: symbolic values and the symbolic math namespace


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
        return self.em.emit(f"{self.name}[{self.em.fmt(index)}]", self.val[index], (self,))

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
# Each form makes exactly the NumPy (or float) call the namespace function makes, so the result is
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


def _cond(template: str, fn: Any) -> Callable[..., _Sym]:
    def form(em: _Emitter, *args: Any) -> _Sym:
        val = fn(*[em.value(a) for a in args])
        text = template.format(*[em.fmt(a) for a in args])
        return em.emit(text, val, em.used(args))

    return form


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
    (maths.FloatMath, "relu"): _cond("(0.0 if {0} <= 0.0 else {0})", maths.FloatMath.relu),
    (maths.FloatMath, "positive"): _cond("(1.0 if {0} > 0.0 else 0.0)", maths.FloatMath.positive),
    (maths.FloatMath, "sign"): _cond(
        "(1.0 if {0} > 0.0 else (-1.0 if {0} < 0.0 else 0.0))", maths.FloatMath.sign
    ),
    # NaN wins, as in FloatMath: x != x only for NaN
    (maths.FloatMath, "maximum"): _cond(
        "({0} if {0} >= {1} or {0} != {0} else {1})", maths.FloatMath.maximum
    ),
    (maths.FloatMath, "minimum"): _cond(
        "({0} if {0} <= {1} or {0} != {0} else {1})", maths.FloatMath.minimum
    ),
    (maths.FloatMath, "winner"): _cond(
        "(1.0 if {0} > {1} else (0.5 if {0} == {1} else 0.0))", maths.FloatMath.winner
    ),
    (maths.FloatMath, "tanh"): lambda em, x: _call(em, "tanh", math.tanh, x),
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
        prefix: str | None = None,
        target: str | None = None,
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
        name = target or f"{prefix or self.prefix}{next(self.count)}"
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


# ---------------------------------------------------------------------------------------------
# Functions from lines: chunked, so that no generated function grows enormous


class _Effect(_Line):
    """A statement kept for what it does (a leaf taking its gradient), not for a value."""


class _Unpack(_Effect):
    """``a, b = row``: names bound from a row of saved values."""

    def __init__(self, names: list[str], expr: str, uses: tuple[str, ...]) -> None:
        super().__init__("", f"{', '.join(names)}{',' if len(names) == 1 else ''} = {expr}", uses)
        self.binds = tuple(names)


class _Loop(_Effect):
    """A for loop, kept whole by the chunker. ``uses``: the names its body reads from before
    the loop; ``defines``: the names it leaves for the code after it."""

    def __init__(
        self, header: str, binds: list[str], body: list[_Line | str], defines: set[str]
    ) -> None:
        bound: set[str] = set(binds)
        outside: set[str] = set()
        for ln in body:
            if isinstance(ln, _Line):
                outside.update(u for u in ln.uses if u not in bound)
                if isinstance(ln, _Unpack):
                    bound.update(ln.binds)
                elif not isinstance(ln, _Effect):
                    bound.add(ln.target)
        super().__init__("", header, tuple(sorted(outside - (bound - defines))))
        self.body = body
        self.defines = defines


def _render(ln: _Line | str, pad: str) -> list[str]:
    if isinstance(ln, _Loop):
        return [f"{pad}{ln.expr}", *(t for b in ln.body for t in _render(b, pad + "    "))]
    if isinstance(ln, _Effect):
        return [f"{pad}{ln.expr}"]
    if isinstance(ln, _Line):
        return [f"{pad}{ln.target} = {ln.expr}"]
    return [f"{pad}{ln}"]


def _functions(
    name: str, head: list[str], lines: list[_Line | str], returns: list[str], saved: set[str]
) -> tuple[list[str], list[str]]:
    """Source of ``def name(*head)``: the lines, in pieces of at most CHUNK statements.

    The values in ``saved`` are appended to the list ``S`` (a head argument) as they are made;
    the second result is their order there. The function returns the names in ``returns``.
    """
    pieces: list[list[_Line | str]] = [[]]
    count = 0
    for ln in lines:
        if isinstance(ln, _Line):
            if count == CHUNK:
                pieces.append([])
                count = 0
            count += 1
        pieces[-1].append(ln)
    order: list[str] = []
    bodies: list[list[str]] = []
    for piece in pieces:
        body = [text for ln in piece for text in _render(ln, "    ")]
        keep = [ln.target for ln in piece if isinstance(ln, _Line) and ln.target in saved]
        if keep:
            body.append(
                f"    S.extend({_tuple(keep)})" if len(keep) > 1 else f"    S.append({keep[0]})"
            )
            order += keep
        bodies.append(body)
    if len(pieces) == 1:
        return [
            f"def {name}({', '.join(head)}):",
            *bodies[0],
            f"    return {_tuple(returns)}",
            "",
        ], order
    # Each piece is a function of the head and of the values earlier pieces made that it uses;
    # it returns the values it made that later pieces (or the result) use.
    made = [
        {ln.target for ln in p if isinstance(ln, _Line) and not isinstance(ln, _Effect)}
        | {name for ln in p if isinstance(ln, _Loop) for name in ln.defines}
        for p in pieces
    ]
    uses = [{u for ln in p if isinstance(ln, _Line) for u in ln.uses} for p in pieces]
    later: set[str] = set(returns)
    outs: list[list[str]] = [[] for _ in pieces]
    for i in range(len(pieces) - 1, -1, -1):
        outs[i] = sorted(made[i] & later, key=_name_key)
        later |= uses[i]
    src: list[str] = []
    calls: list[str] = []
    earlier: set[str] = set()
    for i, body in enumerate(bodies):
        ins = sorted((uses[i] & earlier) - set(head), key=_name_key)
        args = ", ".join([*head, *ins])
        src += [f"def {name}_{i}({args}):", *body, f"    return {_tuple(outs[i])}", ""]
        call = f"{name}_{i}({args})"
        calls.append(f"    {_tuple(outs[i])} = {call}" if outs[i] else f"    {call}")
        earlier |= made[i]
    src += [f"def {name}({', '.join(head)}):", *calls, f"    return {_tuple(returns)}", ""]
    return src, order


def _tuple(names: list[str]) -> str:
    if not names:
        return "()"
    return f"({names[0]},)" if len(names) == 1 else "(" + ", ".join(names) + ")"


def _name_key(name: str) -> tuple[str, int]:
    head = name.rstrip("0123456789")
    return head, int(name[len(head) :] or 0)


def _prune(lines: list[_Line | str], live: set[str]) -> list[_Line | str]:
    """Drop assignments nothing uses (the product a skipped input would have had)."""
    need = set(live)
    kept: list[_Line | str] = []
    for ln in reversed(lines):
        if isinstance(ln, _Line):
            if not isinstance(ln, _Effect) and ln.target not in need:
                continue
            need.update(ln.uses)
        kept.append(ln)
    kept.reverse()
    out: list[_Line | str] = []  # a comment whose lines all went goes too
    for i, ln in enumerate(kept):
        if isinstance(ln, str) and (i + 1 == len(kept) or isinstance(kept[i + 1], str)):
            continue
        out.append(ln)
    return out


def _define(prog: _Program, src: list[str], name: str) -> Callable[..., Any]:
    text = "\n".join(src)
    # Generated from the op table, our own names and number literals only (see _Emitter.fmt):
    # no text of the user's reaches this source.
    code = builtins.compile(text, f"<backproplab.compile {name}>", "exec")
    exec(code, prog.globals)
    fn: Callable[..., Any] = prog.globals[name]
    return fn


# ---------------------------------------------------------------------------------------------
# From a trace to a program


class _Program:
    """One traced graph: the generated forward, the backward(s), and what they read."""

    def __init__(self, kind: type[Node]) -> None:
        self.kind = kind  # Value or Tensor
        self.real_math = kind.xp
        self.globals: dict[str, Any] = {"__builtins__": builtins}
        self.fn_names: dict[int, str] = {}
        self.constants: dict[int, str] = {}
        self.const_notes: list[str] = []
        self.arg_arrays: list[tuple[np.ndarray, str]] = []
        self.mask_syms: list[tuple[_Mask, _Sym]] = []
        self.roots: list[Node] = []
        self.orders: dict[int, list[Node]] = {}
        self.entries: dict[int, tuple[Any, tuple[Node, ...], tuple[Any, ...]]] = {}
        self.fsym: dict[int, _Sym] = {}  # forward value of each node, by node id
        self.where: dict[str, str] = {}  # a forward name -> how the backward reads it again
        self.saveable: set[str] = set()  # the forward values a backward could read again
        self.forward_lines: list[_Line | str] = []  # the forward, until it is defined
        self.returns: list[str] = []
        self.forward: Callable[..., Any] | None = None
        self.forward_source = ""
        self.backward_sources: dict[Any, str] = {}
        self.backwards: dict[Any, Callable[..., Any]] = {}
        self.leaf_refs: dict[int, str] = {}  # node id -> "L[j]" / "A[i]", for gradients
        self.kept: list[Any] = []  # each leaf's last gradient array, alive until its next
        self.implied: dict[int, Callable[..., Any]] = {}  # output -> backward() without grad
        self.seeds: dict[int, Any] = {}  # output -> its implied seed 1
        self.fold: _Fold | None = None  # a run of repetitions written as a loop

    def function(self, name: str, fn: Any) -> str:
        """A global for a math namespace's function, under that namespace's own attribute name."""
        ref = self.fn_names.get(id(fn))
        if ref is None:
            if not (name.isidentifier() and getattr(self.real_math, name, None) is fn):
                raise CompileError("an op called a function compile cannot name")
            ref = name if name not in self.globals else f"{name}_{len(self.fn_names)}"
            self.globals[ref] = fn
            self.fn_names[id(fn)] = ref
        return ref

    def helper(self, name: str, fn: Any) -> str:
        self.globals[name] = fn
        return name

    def constant(self, x: Any) -> str:
        ref = self.constants.get(id(x))
        if ref is None:
            ref = f"k{len(self.constants)}"
            self.constants[id(x)] = ref
            self.globals[ref] = x
            self.const_notes.append(f"{ref}: {_describe(x)}")
        return ref

    def array_name(self, a: np.ndarray, em: _Emitter) -> str | None:
        """The name of an array that is an argument's data or a traced comparison, else None."""
        for arr, name in self.arg_arrays:
            if _same_array(a, arr):
                return name
        for mask, s in self.mask_syms:
            if _same_array(a, mask):
                return s.name
        for arr, _ in self.arg_arrays:
            if np.shares_memory(a, arr):
                raise CompileError(
                    f"the function uses part of an argument's array (shape {a.shape}) taken "
                    "outside the graph (through .data or NumPy), which compile would freeze: "
                    "index or reshape the Tensor itself instead"
                )
        return None

    def release(self) -> None:
        """Drop the traced graph once the code is built, except where a backward for another
        kind of seed may still be asked for (a Tensor output: a 0-d array or a NumPy scalar).
        A scalar graph's thousands of nodes would otherwise stay alive for the collector to
        walk at every collection, slowing the whole program."""
        if self.kind is Tensor:
            return
        self.fsym.clear()
        self.fold = None
        self.entries.clear()
        self.orders.clear()
        self.mask_syms.clear()
        self.roots = []

    @property
    def source(self) -> str:
        head = [f"# {note}" for note in self.const_notes]
        return "\n".join([*head, self.forward_source, *self.backward_sources.values()])


def _describe(x: Any) -> str:
    """What a kept constant is, for a comment: its kind and shape, never its text."""
    if isinstance(x, np.ndarray):
        return f"an array {x.shape} {x.dtype.name}, kept from the trace"
    if isinstance(x, np.generic):
        return f"a NumPy {x.dtype.name} scalar, kept from the trace"
    if isinstance(x, np.dtype):
        return f"the dtype {x.name}"
    if isinstance(x, type) and issubclass(x, engine.Op):
        return "an op of ops.py" if x.__module__ == _OPS_MODULE else "an op class"
    if isinstance(x, float):
        return "a float that is not finite"
    if isinstance(x, tuple) and x and isinstance(x[0], tuple):
        return f"a table of {len(x)} rows of {len(x[0])} numbers, a row per repetition"
    return f"a {type(x).__name__}"


_OPS_MODULE = engine.__name__.rsplit(".", 1)[0] + ".ops"


def _op_note(op: Any) -> str:
    """The op's class name for a comment, when the op is one of ours (ops.py)."""
    name = getattr(op, "__name__", "")
    return name if op.__module__ == _OPS_MODULE and name.isidentifier() else "an op"


# ---------------------------------------------------------------------------------------------
# Folding: a scalar trace that repeats one block (the same ops on the same leaves, per sample)
# is written once, as a loop over a table of the numbers that differ between repetitions


# Scalar traces of at least this many ops are searched for a repeated block. Below it the
# straight-line code builds quickly, and runs a little faster than a loop's body.
FOLD_OPS = 4_000

# Fewest repetitions worth a loop.
FOLD_REPS = 3


class _NoFold(Exception):
    """The repetition found does not fold faithfully: the code is built straight-line instead."""


class _Column(_Sym):
    """A number that differs between repetitions (a row of the table, in the loop's code).

    A rule that takes a decision on it (``if p == 2``) would take it once for every row, so
    any comparison or truth test refuses the fold rather than answer."""

    __slots__ = ()

    def _refuse(self, *args: Any) -> Any:
        raise _NoFold("a rule takes a decision on a number that differs between repetitions")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __float__ = _refuse
    __hash__ = _Sym.__hash__


class _Fold:
    """ops[start : start + reps * period] are ``reps`` repetitions of one block of ``period``
    ops: the same ops, with the same params, on the same leaves, reading the block's own
    results or the previous repetition's; only some numbers differ (a float param, a constant
    made inside the function), and those are the table's columns."""

    def __init__(
        self, start: int, period: int, reps: int, ops: list[Node], index: dict[int, int]
    ) -> None:
        self.start, self.period, self.reps = start, period, reps
        self.end = start + reps * period
        self.index = index  # node id -> its place among the ops
        self.template = ops[start : start + period]  # the first repetition's nodes
        self.last = ops[self.end - period : self.end]
        # what the first repetition reads where the others read the one before (a running
        # sum's start), by the position read
        self.initial: dict[int, Node] = {}
        # per position: how each parent is read, and which params come from the table
        self.parents: list[list[tuple[str, Any]]] = []
        self.params: list[dict[int, int]] = []  # param index -> slot of the op's numbers
        self.columns: dict[tuple[int, int], int] = {}  # (position, slot) -> column
        self.table: tuple[tuple[float, ...], ...] = ()
        self.carried: list[int] = []  # positions of the previous repetition the block reads
        self.names: list[_Sym] = []  # the forward's value of each position, in the loop
        self.row: list[str] = []  # the names saved for the backward, per repetition
        self.rows = "R0"

    def locate(self, key: int) -> tuple[int, int] | None:
        """(repetition, position) of the node with this id, if it is in the run."""
        j = self.index.get(key, -1) - self.start
        if j < 0 or j >= self.end - self.start:
            return None
        return divmod(j, self.period)


def _plan_fold(
    rows: list[tuple[Node, Any, tuple[Node, ...], tuple[Any, ...]]],
    entries: dict[int, Any],
    constant: Callable[[Node], bool],
    extend: bool = True,
) -> _Fold | None:
    """The longest run of repetitions of one block among the ops (``rows``: each op's node,
    op, parents and params, in the order they ran), or None.

    Each op gets a signature: its op, whether it needs a gradient, its params (a float as
    "a number", anything else as itself) and its parents, each as "d ops back" for a computed
    one, "a number" for a constant made inside, and the leaf itself otherwise. A period of the
    signatures is a candidate block; it is then checked op by op (parents within one repetition
    back, numbers split into those every repetition shares and the table's columns).
    """
    ops = [row[0] for row in rows]
    m = len(ops)
    index = {id(n): j for j, n in enumerate(ops)}
    at = index.get
    ids: dict[Any, int] = {}
    sigs: list[int] = []
    leaf: dict[int, Any] = {}  # a leaf's part of a signature: itself, or "c" for a constant
    for j, (n, op, parents, params) in enumerate(rows):
        key = [op, n.requires_grad]
        for p in parents:
            i = at(id(p))
            if i is None:
                ref = leaf.get(id(p))
                if ref is None:
                    ref = leaf[id(p)] = "c" if constant(p) else p
                key.append(ref)
            else:
                key.append(j - i)
        for q in params:
            key.append("f" if q.__class__ is float else ("param", q))
        try:
            sigs.append(ids.setdefault(tuple(key), len(ids)))
        except TypeError:  # an unhashable param: not a scalar op this folds
            return None
    # The period: the commonest gap between two uses of one signature that occurs as often as
    # most signatures do (once per repetition, as a weight's product does).
    counts = collections.Counter(sigs)
    per_count = collections.Counter(c for c in counts.values() if c >= FOLD_REPS)
    if not per_count:
        return None
    often = per_count.most_common(1)[0][0]
    probe = next(s for s in sigs if counts[s] == often)
    uses = [j for j, s in enumerate(sigs) if s == probe]
    gaps = collections.Counter(b - a for a, b in itertools.pairwise(uses))
    period = gaps.most_common(1)[0][0]
    # The longest stretch in which each signature equals the one a period later.
    later = sigs[period:]
    breaks = [j for j, (a, b) in enumerate(zip(sigs, later, strict=False)) if a != b]
    before, after = max(itertools.pairwise([-1, *breaks, m - period]), key=lambda r: r[1] - r[0])
    best_start, best_len = before + 1, after - before - 1
    reps = (best_len + period) // period
    if reps < FOLD_REPS:
        return None
    return _check_fold(ops, index, entries, constant, (best_start, period, reps), extend)


def _check_fold(
    ops: list[Node],
    index: dict[int, int],
    entries: dict[int, Any],
    constant: Callable[[Node], bool],
    run: tuple[int, int, int],
    extend: bool,
) -> _Fold | None:
    """The run (start, period, repetitions) as a _Fold, its reads and its table worked out.

    How the block reads each parent is taken from its second repetition: an op of its own, an
    op of the previous repetition ("prev"), a constant made inside ("number") or a leaf. The
    first repetition may read something else where the others read the previous repetition
    (the running sum's start, ``Value(0.0)``): with ``extend``, a repetition before the run that
    differs only so joins it. None where the block reads further back than one repetition, or
    code after the run reads anything but the last repetition.
    """
    start, period, reps = run
    second = start + period
    refs: list[list[tuple[str, Any]]] = []
    for q in range(period):
        row: list[tuple[str, Any]] = []
        for p in entries[id(ops[second + q])][1]:
            i = index.get(id(p))
            if i is None:
                row.append(("number", None) if constant(p) else ("leaf", p))
            elif i >= second:
                row.append(("op", i - second))
            elif i >= start:
                row.append(("prev", i - start))
            else:
                return None  # two repetitions back, or a value from before the run
        refs.append(row)

    def first_reads(base: int) -> dict[int, Node] | None:
        """What the repetition at ``base`` reads where the others read the one before, if it
        is the block otherwise."""
        initial: dict[int, Node] = {}
        leaves = {id(x) for row in refs for kind, x in row if kind == "leaf"}
        for q in range(period):
            op, parents, params = entries[id(ops[base + q])]
            like, parents_like, params_like = entries[id(ops[second + q])]
            if (
                op is not like
                or ops[base + q].requires_grad != ops[second + q].requires_grad
                or len(parents) != len(parents_like)
                or len(params) != len(params_like)
                or any(
                    (a.__class__ is float) != (b.__class__ is float)
                    or (a.__class__ is not float and a != b)
                    for a, b in zip(params, params_like, strict=True)
                )
            ):
                return None
            for (kind, x), p in zip(refs[q], parents, strict=True):
                i = index.get(id(p))
                if kind == "op":
                    ok = i == base + x
                elif kind == "number":
                    ok = i is None and constant(p)
                elif kind == "leaf":
                    ok = p is x
                else:  # read once, before the loop: it must need a gradient as the value does
                    was = initial.setdefault(x, p)
                    ok = (
                        was is p
                        and (i is None or i < base)
                        and id(p) not in leaves
                        and p.requires_grad == ops[start + x].requires_grad
                    )
                if not ok:
                    return None
        if len({id(p) for p in initial.values()}) != len(initial):
            return None
        return initial

    initial = first_reads(start)
    if extend and start >= period:
        before = first_reads(start - period)
        if before is not None:
            start, reps, initial = start - period, reps + 1, before
    if initial is None:
        return None
    fold = _Fold(start, period, reps, ops, index)
    fold.initial = initial
    end = fold.end
    columns: dict[tuple[str, ...], int] = {}  # a column's numbers (as hex) -> its index
    table: list[list[float]] = []
    for q in range(period):
        slot = 0
        kinds = []
        for kind, x in refs[q]:
            if kind == "number":
                kinds.append(("number", slot))
                slot += 1
            else:
                kinds.append((kind, x))
        floats = {}
        for k, v in enumerate(entries[id(ops[second + q])][2]):
            if v.__class__ is float:
                floats[k] = slot
                slot += 1
        fold.parents.append(kinds)
        fold.params.append(floats)
        if not slot:
            continue
        # a number every repetition shares stays a literal; each other one is read from a
        # column of the table, one column per distinct sequence (x0 of a sample, used 16 times)
        rows = []
        for r in range(reps):
            _, parents, params = entries[id(ops[start + r * period + q])]
            numbers = [
                p._data for (kind, _), p in zip(refs[q], parents, strict=True) if kind == "number"
            ]
            rows.append(numbers + [v for v in params if v.__class__ is float])
        for s in range(slot):
            seq = tuple(row[s].hex() for row in rows)
            if all(h == seq[0] for h in seq):
                continue
            c = columns.get(seq)
            if c is None:
                c = columns[seq] = len(table)
                table.append([row[s] for row in rows])
            fold.columns[(q, s)] = c
    for j in range(end, len(ops)):
        for p in entries[id(ops[j])][1]:
            i = index.get(id(p))
            if i is not None and start <= i < end - period:
                return None  # code after the run reads an earlier repetition
    fold.carried = sorted(initial)
    fold.table = tuple(zip(*table, strict=True)) if table else ()
    return fold


def _build(
    outs: tuple[Node, ...], trace: _Trace, flat: list[Any], fold: int = 2
) -> tuple[_Program, list[Node]]:
    """Emit the forward's lines (defined by _define_forward once the backwards show what they
    read again); return the program and the leaves it reads."""
    prog = _Program(Tensor if isinstance(outs[0], Tensor) else Value)
    if any(isinstance(o, Tensor) != (prog.kind is Tensor) for o in outs):
        raise CompileError("a compiled function returns Values or Tensors, not both")
    prog.roots = list(outs)
    fwd = _Emitter(prog, "t")
    xp = _SymMath(fwd, prog.real_math)
    prog.helper("asarray", np.asarray)

    arg_index: dict[int, int] = {}
    for i, a in enumerate(flat):
        if isinstance(a, Node):
            arg_index.setdefault(id(a), i)
            if isinstance(a.data, np.ndarray):
                prog.arg_arrays.append((a.data, f"x{i}"))
        elif isinstance(a, np.ndarray):
            prog.arg_arrays.append((a, f"x{i}"))

    def mask_of(p: Any) -> _Mask | None:
        if isinstance(p, np.ndarray) and p.dtype == bool:
            for m in trace.masks:
                if _same_array(p, m):
                    return m
        return None

    # Every op the outputs depend on (through parents, and through traced masks in params):
    # one pass over the trace from its end, as an op's inputs were all made before it.
    entries, made = prog.entries, trace.made
    reached = {id(o) for o in outs}
    outside = [o for o in outs if id(o) not in made]  # leaves, arguments, nodes made before
    rows: list[tuple[Node, Any, tuple[Node, ...], tuple[Any, ...]]] = []
    # a leaf's id -> where the first op reading it reads it: (-ops after it, its input number)
    first_read: dict[int, tuple[int, int]] = {}
    masks = bool(trace.masks)
    for row in reversed(made.values()):
        if id(row[0]) not in reached:
            continue
        entries[id(row[0])] = row[1:]
        rows.append(row)
        here = -len(rows)
        reads: Any = [*row[2], *_mask_reads(row[3], mask_of)] if masks else row[2]
        for i, p in enumerate(reads):
            key = id(p)
            if key in made:
                reached.add(key)
                continue
            if key not in reached:
                reached.add(key)
                outside.append(p)
            was = first_read.get(key)
            if was is None or was[0] != here:  # its first input here, not a later one
                first_read[key] = (here, i)
    rows.reverse()  # the order the ops ran in
    ops = [row[0] for row in rows]
    for n in outside:
        if n.op is not None and id(n) not in arg_index:
            raise CompileError(
                "the function reads a node computed outside it that has a graph of its own "
                "(its gradient would flow back through that graph): compute it inside the "
                "function, pass it as an argument, or detach() it"
            )

    leaves: list[Node] = []
    sym = prog.fsym
    fwd.comment("arguments (x) and the leaves read on every call (p), in order of first use")
    # leaves numbered as the ops first read them, so that p0 is the first weight of the step
    first_use = sorted(outside, key=lambda n: first_read.get(id(n), (1, 0)))  # outputs last
    for n in first_use:
        if id(n) in sym:
            continue
        data = n._data
        if id(n) in arg_index:
            i = arg_index[id(n)]
            sym[id(n)] = fwd.bind(f"x{i}", f"A[{i}]._data", data)
            prog.where[f"x{i}"] = f"A[{i}]._data"
            prog.leaf_refs[id(n)] = f"A[{i}]"
            continue
        if id(n) in trace.from_arg:  # a leaf made inside from an argument's array: Tensor(X)
            i = trace.from_arg[id(n)]
            arg = flat[i]
            array = arg._data if isinstance(arg, Node) else arg
            name = f"x{i}"
            if name not in prog.where:
                expr = f"A[{i}]._data" if isinstance(arg, Node) else f"A[{i}]"
                fwd.bind(name, expr, array)
                prog.where[name] = expr
            if data.dtype == array.dtype and data.shape == array.shape and data.dtype != bool:
                # the same numbers: read the argument itself (the copy Tensor() makes only
                # guards the graph against later writes, and the replay reads it at once)
                sym[id(n)] = _Sym(fwd, name, data)
            else:  # Tensor's own conversion (integer labels to float64, say)
                to_array = prog.helper("to_array", _tensor_mod._to_array)
                sym[id(n)] = fwd.emit(
                    f"{to_array}({name}, {fwd.fmt(data.dtype)})", data, (_Sym(fwd, name, array),)
                )
            continue
        bound = prog.array_name(data, fwd) if isinstance(data, np.ndarray) else None
        if bound is not None:
            raise CompileError(
                "the function made a leaf that shares an argument's memory in a way compile "
                "cannot follow: make Tensors from the argument itself"
            )
        if id(n) in trace.inside and not n.requires_grad:  # a constant made inside: kept
            sym[id(n)] = _Sym(fwd, fwd.fmt(data), data)
        else:
            j = len(leaves)
            leaves.append(n)
            sym[id(n)] = fwd.bind(f"p{j}", f"L[{j}]._data", data)
            prog.where[f"p{j}"] = f"L[{j}]._data"
            prog.leaf_refs[id(n)] = f"L[{j}]"

    def forward_op(n: Node, ins: list[Any], sparams: tuple[Any, ...]) -> _Sym:
        op = prog.entries[id(n)][0]
        out = op.forward(xp, *ins, *sparams)
        if not isinstance(out, _Sym):  # a rule that returned a constant
            out = _Sym(fwd, fwd.fmt(out), out)
        if prog.kind is Tensor and out.val.__class__ is not np.ndarray:
            out = fwd.emit(f"asarray({out.name})", np.asarray(out.val), (out,))
        if not _identical(out.val, n._data):
            raise CompileError(
                f"internal: the generated forward of {_op_note(op)} differs from the eager "
                "engine's; the function runs as it is without @compile"
            )
        if isinstance(fwd.lines[-1], _Line) and fwd.lines[-1].target == out.name:
            fwd.lines[-1].expr += f"  # {_op_note(op)}"
        return out

    if fold and prog.kind is Value and len(ops) >= FOLD_OPS:

        def constant(p: Node) -> bool:
            return id(p) in trace.inside and not p.requires_grad

        plan = _plan_fold(rows, prog.entries, constant, extend=fold > 1)
        # an output is returned by name: one inside the loop must be of its last repetition
        locs = [plan.locate(id(o)) for o in outs] if plan is not None else []
        if all(loc is None or loc[0] == plan.reps - 1 for loc in locs):  # type: ignore[union-attr]
            prog.fold = plan

    def straight(n: Node) -> None:
        _, parents, params = prog.entries[id(n)]
        sparams = tuple(_param_sym(prog, fwd, p, mask_of) for p in params)
        sym[id(n)] = forward_op(n, [sym[id(p)] for p in parents], sparams)

    fwd.comment("forward")
    if prog.fold is None:
        for n in ops:
            straight(n)
    else:  # the ops before the run, the run as one loop, the ops after it
        for n in ops[: prog.fold.start]:
            straight(n)
        _forward_loop(prog, fwd, forward_op)
        for n in ops[prog.fold.end :]:
            straight(n)
    for k, root in enumerate(outs):
        if root.requires_grad:
            prog.orders[k] = _order(root)
    # what a backward may read again: each computed value (and comparison) by its name
    saveable = {s.name for s in sym.values() if s.name[:1] in "tx" and s.name[1:].isdigit()}
    prog.saveable = saveable | {s.name for _, s in prog.mask_syms}
    prog.returns = [sym[id(o)].name for o in outs]
    prog.forward_lines = fwd.lines
    return prog, leaves


def _define_forward(prog: _Program, reads: set[str]) -> None:
    """Define the forward function, saving for the backward (in the list S) only the values in
    ``reads``, the names the backwards read again: the others are let go of when the forward
    returns, as a hand-written step lets go of what its backward does not use."""
    saved = reads & prog.saveable
    if prog.fold is not None:
        saved.add(prog.fold.rows)
    lines = _prune(prog.forward_lines, set(prog.returns) | saved)
    src, saved_order = _functions("forward", ["A", "L", "S"], lines, prog.returns, saved)
    for i, name in enumerate(saved_order):
        prog.where[name] = f"S[{i}]"
    if prog.fold is not None:  # the last repetition's values, for a backward of code after it
        for i, name in enumerate(prog.fold.row):
            prog.where.setdefault(name, f"{prog.fold.rows}[{prog.fold.reps - 1}][{i}]")
    prog.forward_source = "\n".join(src)
    prog.forward = _define(prog, src, "forward")
    prog.forward_lines = []


def _forward_loop(prog: _Program, fwd: _Emitter, forward_op: Callable[..., _Sym]) -> None:
    """The run of repetitions as one loop, its block emitted once from the first repetition.

    Each pass appends the block's values to the list ``R0`` (the backward reads them again);
    ``u0``... carry what the next repetition reads of this one (a running sum), and each row of
    the table holds the numbers that differ (a sample's inputs and target).
    """
    fold = prog.fold
    assert fold is not None
    sym = prog.fsym
    cols = [_Column(fwd, f"c{i}", x) for i, x in enumerate(fold.table[0])]
    col_of = {qs: cols[c] for qs, c in fold.columns.items()}
    carried = {q: _Sym(fwd, f"u{i}", fold.initial[q]._data) for i, q in enumerate(fold.carried)}
    fwd.comment(
        f"{fold.reps} repetitions of one block of {fold.period} ops, written once"
        + (f": row r of {prog.constant(fold.table)} holds repetition r's numbers" if cols else "")
    )
    fwd.lines.append(_Line(fold.rows, "[]", ()))
    for q, u in carried.items():
        first = sym[id(fold.initial[q])]
        fwd.lines.append(_Line(u.name, first.name, (first.name,)))
    outer, body = fwd.lines, list[_Line | str]()
    fwd.lines = body
    names: list[_Sym] = []
    for q, n in enumerate(fold.template):
        ins, sparams = _block_inputs(prog, n, q, names, carried, col_of, sym)
        names.append(forward_op(n, ins, sparams))
    fwd.lines = outer
    made = [ln.target for ln in body if isinstance(ln, _Line) and not isinstance(ln, _Effect)]
    fold.names = names
    fold.row = [u.name for u in carried.values()] + made
    body.append(_Effect("", f"{fold.rows}.append({_tuple(fold.row)})", (fold.rows, *fold.row)))
    if carried:
        us = ", ".join(u.name for u in carried.values())
        news = [names[q].name for q in carried]
        body.append(_Effect("", f"{us} = {', '.join(news)}", tuple(news)))
    if not cols:
        header = f"for _ in range({fold.reps}):"
    else:
        row = ", ".join(c.name for c in cols)
        header = f"for {row if len(cols) > 1 else f'({row},)'} in {prog.constant(fold.table)}:"
    binds = [c.name for c in cols]
    fwd.lines.append(_Loop(header, binds, body, {u.name for u in carried.values()} | set(made)))
    # after the loop its names hold the last repetition's values, which code after it reads
    for n, s in zip(fold.last, names, strict=True):
        sym[id(n)] = _Sym(fwd, s.name, n._data)


def _block_inputs(
    prog: _Program,
    n: Node,
    q: int,
    names: list[_Sym],
    carried: dict[int, _Sym],
    col_of: dict[tuple[int, int], _Column],
    known: Callable[[Node], _Sym] | dict[int, _Sym],
) -> tuple[list[_Sym], tuple[Any, ...]]:
    """The inputs and params of n, the block's op at position q, as the loop's code reads them
    (in the forward loop and in the backward's alike): a parent made in the block by its name
    there, one of the repetition before by what is carried, a number that differs between
    repetitions by its column of the table, anything else as ``known`` has it."""
    fold = prog.fold
    assert fold is not None
    _, parents, params = prog.entries[id(n)]
    ins = []
    for (kind, x), p in zip(fold.parents[q], parents, strict=True):
        if kind == "op":
            ins.append(names[x])
        elif kind == "prev":
            ins.append(carried[x])
        elif kind == "number" and (q, x) in col_of:
            ins.append(col_of[(q, x)])
        else:
            ins.append(known(p) if callable(known) else known[id(p)])
    floats = fold.params[q]
    sparams = tuple(
        col_of.get((q, floats[i]), v) if i in floats else v for i, v in enumerate(params)
    )
    return ins, sparams


def _mask_reads(params: tuple[Any, ...], mask_of: Callable[[Any], Any]) -> list[Node]:
    """The nodes an op reads through the traced comparisons among its params (a where's mask)."""
    out: list[Node] = []
    for p in _flat_params(params):
        masks = [mask_of(p)]
        while masks:
            m = masks.pop()
            if m is None:
                continue
            for x in m.src[1:]:
                if isinstance(x, Node):
                    out.append(x)
                elif isinstance(x, _Mask):
                    masks.append(x)
    return out


def _flat_params(params: tuple[Any, ...]) -> Iterator[Any]:
    for p in params:
        if isinstance(p, tuple):
            yield from _flat_params(p)
        else:
            yield p


def _param_sym(prog: _Program, em: _Emitter, p: Any, mask_of: Callable[[Any], Any]) -> Any:
    """A param as the rules should see it: a traced comparison becomes its recomputation."""
    if isinstance(p, tuple):
        return tuple(_param_sym(prog, em, v, mask_of) for v in p)
    m = mask_of(p)
    if m is None:
        return p
    for known, s in prog.mask_syms:
        if known is m:
            return s
    op_sym, a, b = m.src

    def operand(x: Any) -> Any:
        if isinstance(x, Node):
            return prog.fsym[id(x)]
        if isinstance(x, _Mask):
            return _param_sym(prog, em, x, mask_of)
        return x

    if op_sym == "~":
        s = ~operand(a)
    else:
        s = em.binary(op_sym, _COMPARE[op_sym], operand(a), operand(b))
    prog.mask_syms.append((m, s))
    return s


_MASK_UFUNCS = {
    np.bitwise_and: "&",
    np.logical_and: "&",
    np.bitwise_or: "|",
    np.logical_or: "|",
    np.invert: "~",
    np.logical_not: "~",
}

_COMPARE = {
    "&": operator.and_,
    "|": operator.or_,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _identical(a: Any, b: Any) -> bool:
    if isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=True))
        )
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b)
    return bool(a == b)


# ---------------------------------------------------------------------------------------------
# The backward: the eager pass's loop, run once on symbols


def _seed_kind(k: int, seed: Any, implied: bool) -> tuple[Any, ...]:
    """What a backward is generated for: output k, a seed of this class, shape and dtype."""
    return (k, implied, seed.__class__, getattr(seed, "shape", None), getattr(seed, "dtype", None))


def _build_backward(prog: _Program, k: int, seed: Any, implied: bool) -> Callable[..., Any]:
    """The backward of output k for a seed like ``seed``, generated on its first use (a call
    with another kind of gradient than those built at the trace, see _program)."""
    kind = _seed_kind(k, seed, implied)
    fn = prog.backwards.get(kind)
    if fn is not None:
        return fn
    return _define_backward(prog, kind, _backward_lines(prog, k, seed, implied))


def _backward_lines(prog: _Program, k: int, seed: Any, implied: bool) -> list[_Line | str]:
    """The lines of the backward of output k for a seed like ``seed``, following the engine's
    loop. The names of forward values they read are left to _define_backward to bind.

    ``implied``: the seed is the implied 1 of ``backward()`` with no grad, the same on every
    call, so what follows from it alone is computed here once.
    """
    em = _Emitter(prog, "g")
    if implied:
        em.fixed = {"G"}
    xp = _SymMath(em, prog.real_math)
    tensor = prog.kind is Tensor
    again: dict[str, _Sym] = {}

    def fwd_name(s: _Sym) -> _Sym:
        b = again.get(s.name)
        if b is None:
            b = again[s.name] = _Sym(em, s.name, s.val)
        return b

    def fwd(n: Node) -> _Sym:
        return fwd_name(prog.fsym[id(n)])

    def param(p: Any) -> Any:
        if isinstance(p, tuple):
            return tuple(param(v) for v in p)
        if isinstance(p, np.ndarray) and p.dtype == bool:
            for m, s in prog.mask_syms:
                if _same_array(p, m):
                    b = again.get(s.name)
                    if b is None:
                        b = again[s.name] = _Sym(em, s.name, s.val)
                    return b
        return p

    root = prog.roots[k]
    value_grad = prog.helper("value_grad", Node._accumulate)  # as the eager pass hands it over
    # engine.backward_pass, run once on symbols: the gradients summed in a dict in the order
    # they arrive, each node's rule once all its uses have sent theirs
    grads: dict[int, Any] = {id(root): _Sym(em, "G", seed)}
    nodes: dict[int, Node] = {id(root): root}

    # While the loop's block is written: the sums it carries from one repetition to the next
    # (a leaf's gradient: "a0 = a0 + d" on every pass), by node id.
    sums: dict[int, str] = {}
    before_loop: list[_Line | str] = []
    looping: list[_Fold] = []

    def add(p: Node, d: _Sym) -> None:
        key = id(p)
        if not looping or looping[0].locate(key) is not None:
            grads[key] = grads[key] + d if key in grads else d
            return
        name = sums.get(key)
        if name is None:  # the first sum over repetitions into p: from what p has, or from -0.0,
            # which adds to any float giving it back to the bit, as the eager pass's first d
            name = sums[key] = f"a{len(sums)}"
            old = grads.get(key)
            before_loop.append(
                _Line(name, old.name, (old.name,)) if old is not None else _Line(name, "-0.0", ())
            )
        grads[key] = em.emit(f"{name} + {d.name}", d.val, (_Sym(em, name, d.val), d), target=name)

    def visit(n: Node, out: _Sym, ins: list[Any], params: tuple[Any, ...]) -> None:
        g = grads.pop(id(n), None)
        if g is None:  # no use of n sent a gradient (every rule skipped it)
            z = prog.kind.zeros_like(n, False)  # type: ignore[attr-defined]
            g = _Sym(em, em.fmt(z), z)
        op, parents, _ = prog.entries[id(n)]
        em.comment(f"{_op_note(op)}: {out.name}")
        input_grads = engine.call_backward(op, xp, g, out, ins, params, parents)
        for i, (p, d) in enumerate(zip(parents, input_grads)):  # noqa: B905 - call_backward
            if d is None or not p.requires_grad:
                continue
            if not isinstance(d, _Sym):
                d = _Sym(em, em.fmt(d), d)
            if tensor:
                d = _fit(em, d, p._data)
            elif not (d.val.__class__ is float or isinstance(d.val, (int, float))):
                p.fit_gradient(d.val, op, i)  # raises, naming the op
            add(p, d)
            nodes[id(p)] = p

    def visit_all(order: list[Node]) -> None:
        for n in order:
            params = prog.entries[id(n)][2]
            visit(n, fwd(n), [fwd(p) for p in prog.entries[id(n)][1]], param(params))

    order = prog.orders[k]
    run = _fold_order(prog.fold, order) if prog.fold is not None else None
    if run is None:
        visit_all(order)
    else:
        first, pattern = run
        fold = prog.fold
        assert fold is not None
        visit_all(order[:first])
        reps = fold.reps
        em.comment(
            f"the {reps} repetitions, the last first as the eager pass visits them: "
            f"{fold.rows}[i] holds repetition i's values"
        )
        # what the last repetition has been sent so far (the seed, the code after the run)
        slots: dict[int, str] = {}
        for key in list(grads):
            loc = fold.locate(key)
            if loc is None:
                continue
            if loc[0] != reps - 1:
                raise _NoFold("a gradient reaches an earlier repetition before the loop")
            name = slots[loc[1]] = f"h{len(slots)}"
            em.lines.append(_Line(name, grads[key].name, (grads[key].name,)))
            grads[key] = _Sym(em, name, grads[key].val)
        # A value the next repetition reads gets a gradient back from it; the last one has no
        # next, so it starts from -0.0, which adds to the first gradient it gets to the bit.
        unsent: set[int] = set()
        for q in fold.carried:
            n = fold.last[q]
            if q not in slots and n.requires_grad:
                name = slots[q] = f"h{len(slots)}"
                em.lines.append(_Line(name, "-0.0", ()))
                grads[id(n)] = _Sym(em, name, n._data)
                unsent.add(id(n))
        outer, body = em.lines, list[_Line | str]()
        em.lines = body
        cols = [_Column(em, f"c{i}", x) for i, x in enumerate(fold.table[-1])]
        col_of = {qs: cols[c] for qs, c in fold.columns.items()}
        names = [fwd_name(s) for s in fold.names]
        carried = {q: _Sym(em, f"u{i}", fold.names[q].val) for i, q in enumerate(fold.carried)}
        body.append(_Unpack(fold.row, f"{fold.rows}[i]", (fold.rows,)))
        if cols:
            body.append(_Unpack([c.name for c in cols], f"{prog.constant(fold.table)}[i]", ()))
        looping.append(fold)
        position = {id(n): q for q, n in enumerate(fold.last)}
        for n in pattern:
            q = position[id(n)]
            if id(n) in unsent and grads[id(n)].name == slots[q]:
                # the eager pass starts this one from zero, not from what the block adds to it
                raise _NoFold("a value the next repetition reads gets no gradient of its own")
            ins, sparams = _block_inputs(prog, n, q, names, carried, col_of, fwd)
            visit(n, names[q], ins, sparams)
        looping.clear()
        em.lines = outer
        # what the block sent to the repetition before it: the same places, on every pass
        ends: dict[int, _Sym] = {}
        for key in list(grads):
            loc = fold.locate(key)
            if loc is not None:
                if loc[0] != reps - 2:
                    raise _NoFold("the block sends a gradient further than one repetition back")
                ends[loc[1]] = grads.pop(key)
        if set(ends) != set(slots):
            raise _NoFold("the gradients the block sends back differ from those it receives")
        moves = [(slots[q], ends[q].name) for q in sorted(slots) if ends[q].name != slots[q]]
        if moves:
            news = tuple(b for _, b in moves)
            body.append(_Effect("", f"{', '.join(a for a, _ in moves)} = {', '.join(news)}", news))
        carry = set(slots.values()) | set(sums.values())
        em.lines += before_loop
        em.lines.append(
            _Loop(f"for i in range({reps - 1}, -1, -1):", ["i"], _prune(body, carry), carry)
        )
        # after the loop: what the first repetition sent to what it read before it
        for q, name in slots.items():
            n = fold.initial[q]
            if n.requires_grad:
                add(n, _Sym(em, name, ends[q].val))
                nodes[id(n)] = n
        visit_all(order[first + len(pattern) * reps :])
    em.comment("each leaf takes its gradient, in the order the eager pass hands them over")
    # A gradient a leaf may own: a new array made by a line here, read by no other line, sent
    # to one leaf. Any other (a view, a kept constant, the seed) is copied, as Tensor's own
    # _accumulate copies; a gradient the leaf already has is added to, as there.
    made = {ln.target for ln in em.lines if isinstance(ln, _Line) and ln.fresh}
    reads = collections.Counter(u for ln in em.lines if isinstance(ln, _Line) for u in ln.uses)
    reads.update(g.name for g in grads.values())
    for key, g in grads.items():
        n = nodes[key]
        ref = prog.leaf_refs.get(key)
        if ref is None or n is root:  # a constant made inside that requires grad: unreadable
            continue
        if tensor:
            kept = prog.helper("kept", prog.kept)
            j = len(prog.kept)
            # the array is also kept (kept[j]) until the leaf takes its next gradient, as NumPy
            # written by hand keeps d_w1 until the next step replaces it, rather than handing
            # a parameter-sized array back to the system every step
            prog.kept.append(None)
            owned = g.name in made and reads[g.name] == 1 and g.val.__class__ is np.ndarray
            mine = g.name if owned else f"{prog.helper('array', np.array)}({g.name})"
            grad = f"{ref}.grad"
            expr = f"{grad} = {kept}[{j}] = {mine} if {grad} is None else {grad} + {g.name}"
        else:
            expr = f"{value_grad}({ref}, {g.name})"
        em.lines.append(_Effect("", expr, (g.name,)))
    return _prune(em.lines, set())


def _define_backward(
    prog: _Program, kind: tuple[Any, ...], lines: list[_Line | str]
) -> Callable[..., Any]:
    """Define a backward from its lines, each forward value it reads bound where it is kept
    (S[i], a leaf, an argument). A value the forward did not save raises KeyError here, which
    sends the step to its eager rerun; the rules read the same values whatever the seed, so
    the backwards built at the trace have asked for all that any later one reads."""
    used = {u for ln in lines if isinstance(ln, _Line) for u in ln.uses}
    wanted = used & (set(prog.where) | prog.saveable)
    head = [_Line(name, prog.where[name], ()) for name in sorted(wanted, key=_name_key)]
    name = f"backward{len(prog.backwards)}"
    src, _ = _functions(name, ["G", "S", "A", "L"], [*head, *lines], [], set())
    prog.backward_sources[kind] = "\n".join(src)
    fn = prog.backwards[kind] = _define(prog, src, name)
    return fn


def _fold_order(fold: _Fold, order: list[Node]) -> tuple[int, list[Node]] | None:
    """Where the run's repetitions sit in the backward's order: (the index of the first, the
    last repetition's nodes in the order they are visited), or None when the root does not
    depend on the run. Raises _NoFold unless the pass visits the repetitions one after the
    other, the last first, each in the same order."""
    get, start, end = fold.index.get, fold.start, fold.end
    at = [get(id(n), -1) for n in order]  # each node's place among the ops
    inside = [start <= j < end for j in at]
    if True not in inside:
        return None
    first = inside.index(True)
    size, extra = divmod(inside.count(True), fold.reps)
    base = end - fold.period  # the last repetition's first op
    pattern = [j - base for j in at[first : first + size]]
    if not all(0 <= q < fold.period for q in pattern):
        raise _NoFold("the backward pass visits other nodes among the repetitions")
    for r in range(fold.reps):
        expect = [base - r * fold.period + q for q in pattern]
        if extra or at[first + r * size : first + (r + 1) * size] != expect:
            raise _NoFold("the backward pass does not visit the repetitions one by one, alike")
    return first, order[first : first + size]


def _fit(em: _Emitter, g: _Sym, like: Any) -> _Sym:
    """Tensor.fit_gradient, emitted: undo broadcasting (tensor.unbroadcast, its axes worked
    out now) and give the input's dtype."""
    v = g.val
    shape = like.shape
    if getattr(v, "shape", ()) != shape:
        axes = unbroadcast_axes(v.shape, shape)
        if axes == tuple(range(v.ndim - len(shape))):
            # only the leading axes broadcasting added (a bias): the same sum, without the
            # keepdims and reshape, whose view the leaf would have to copy
            g = _reduce(em, "sum", g, axes, False)
        else:
            g = _reduce(em, "sum", g, axes, True)
            if v.ndim != len(shape):
                g = em.emit(f"{g.name}.reshape({em.fmt(shape)})", g.val.reshape(shape), (g,))
    v = g.val
    if v.__class__ is np.ndarray and v.dtype == like.dtype:
        return g
    asarray = em.program.helper("asarray", np.asarray)
    return em.emit(
        f"{asarray}({g.name}, dtype={em.fmt(like.dtype)})",
        np.asarray(v, dtype=like.dtype),
        (g,),
    )


# ---------------------------------------------------------------------------------------------
# Calls: the cache of traces, and the results a replay hands back


def _signature(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[list[Any], tuple[Any, ...], list[Any]]:
    """(the arguments' arrays and nodes in order, the key of their trace, objects to keep alive).

    Arrays and nodes are read on every call; their shapes and dtypes are part of the key, and so
    is every other argument (a number, a string, an object by identity), which the trace keeps.
    """
    flat: list[Any] = []
    key: list[Any] = []
    keep: list[Any] = []
    first: dict[int, int] = {}

    def walk(x: Any) -> None:
        if isinstance(x, (Node, np.ndarray)):
            alias = first.setdefault(id(x), len(flat))
            if isinstance(x, Tensor):
                key.append(("T", x.data.shape, x.data.dtype.str, x.requires_grad, alias))
            elif isinstance(x, Node):
                key.append(("V", x.requires_grad, alias))
            else:
                key.append(("A", x.shape, x.dtype.str, alias))
            flat.append(x)
        elif isinstance(x, (list, tuple)):
            key.append((type(x).__name__, len(x)))
            for v in x:
                walk(v)
        elif isinstance(x, dict):
            key.append(("dict", len(x)))
            for k in sorted(x, key=repr):
                key.append(("key", k) if isinstance(k, (str, int)) else ("key", id(k)))
                walk(x[k])
        elif isinstance(x, float):
            key.append(("float", x.hex()))
        elif isinstance(x, (bool, int, str, bytes, type(None), complex)):
            key.append((type(x).__name__, x))
        else:  # an object (a model, a function): by identity, kept alive so the id stays its own
            key.append(("object", id(x)))
            keep.append(x)

    walk(args)
    walk(kwargs)
    return flat, tuple(key), keep


def _array_key(args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The signature of arguments that are all arrays and Tensors (the usual step), else None."""
    key: list[tuple[Any, ...]] = []
    for a in args:
        c = a.__class__
        if c is np.ndarray:
            key.append((c, a.shape, a.dtype))
        elif c is Tensor:
            d = a.data
            key.append((c, d.shape, d.dtype, a.requires_grad))
        else:
            return None
    if len(args) > 1 and len({id(a) for a in args}) != len(args):
        return None  # one object passed twice: the slow key records which
    return tuple(key)


# Arguments and leaves a guard checks at most: past this, the dict of traces is as quick.
MAX_GUARDED = 64


def _make_guard(
    args: tuple[Any, ...], leaves: list[Node]
) -> Callable[[tuple[Any, ...], list[Node]], bool] | None:
    """One generated test of what _array_key and _Entry.fresh check between them, for a trace
    made from ``args`` (arrays and Tensors only, no object twice): the same number of
    arguments of the same classes, each array (an argument's, a Tensor argument's data, a
    leaf's data) of the same class, shape and dtype, and the same requires_grad. The test
    compares a few tuples rather than building a key to look up, which is what a step of a
    small network notices. Built from indices alone: shapes and dtypes are globals of its own.

    The arrays that last passed are remembered (``S0``...): when a call brings the very same
    array objects (a training loop's data, parameters updated in place), only their shapes are
    read again (``a.shape = ...`` reshapes an array in place). This keeps those arrays alive
    until the next call.
    """
    checked = [j for j, leaf in enumerate(leaves) if isinstance(leaf._data, np.ndarray)]
    if len(args) + len(checked) > MAX_GUARDED:
        return None
    n = len(args)
    a = [f"a{i}" for i in range(n)]
    tensors = [i for i, x in enumerate(args) if x.__class__ is Tensor]
    datas = [f"a{i}._data" if i in tensors else f"a{i}" for i in range(n)]
    datas += [f"L[{j}]._data" for j in checked]
    d = [f"d{i}" for i in range(len(datas))]
    arrays = [args[i]._data if i in tensors else args[i] for i in range(n)]
    arrays += [leaves[j]._data for j in checked]
    space: dict[str, Any] = {
        "__builtins__": builtins,
        "CLASSES": tuple(x.__class__ for x in args),
        "ARRAYS": (np.ndarray,) * len(arrays),
        "SHAPES": tuple(x.shape for x in arrays),
        "DTYPES": tuple(x.dtype for x in arrays),
        "GRADS": tuple(args[i].requires_grad for i in tensors),
        "Tensor": Tensor,
    }
    seen = [f"S{i}" for i in range(len(d))]
    space.update(zip(seen, arrays, strict=True))
    src = ["def guard(A, L):"]
    if seen:
        src.append(f"    global {', '.join(seen)}")
    if not n:
        src += ["    if A:", "        return False"]
    src.append("    try:")  # another number of arguments, or an array where a Tensor was
    if n:
        src.append(f"        {_tuple(a)[1:-1]} = A")
    src += [f"        {name} = {expr}" for name, expr in zip(d, datas, strict=True)]
    src += ["        pass", "    except (ValueError, AttributeError):", "        return False"]
    distinct = [f"{a[i]} is not {a[k]}" for i in range(n) for k in range(i + 1, n)]
    grads = [f"a{i}.requires_grad is {args[i].requires_grad}" for i in tensors]
    same = [f"{x} is {y}" for x, y in zip(d, seen, strict=True)]
    same += [f"a{i}.__class__ is Tensor" for i in tensors] + grads + distinct
    if same:  # the very arrays that passed last time: their class and dtype are known, and
        # their shape is read again, as a.shape = ... reshapes an array in place
        if d:
            same.append(f"{_tuple([x + '.shape' for x in d])} == SHAPES")
        src += [f"    if {' and '.join(same)}:", "        return True"]
    if n:
        src += [
            f"    if {_tuple([x + '.__class__' for x in a])} != CLASSES:",
            "        return False",
        ]
    if grads or distinct:
        src += [f"    if not ({' and '.join(grads + distinct)}):", "        return False"]
    if d:
        src += [
            f"    if {_tuple([x + '.__class__' for x in d])} != ARRAYS:",
            "        return False",
        ]
        src += [f"    if {_tuple([x + '.shape' for x in d])} != SHAPES:", "        return False"]
        src += [f"    if {_tuple([x + '.dtype' for x in d])} != DTYPES:", "        return False"]
        src.append(f"    {_tuple(seen)[1:-1]} = {_tuple(d)[1:-1]}")
    src.append("    return True")
    exec(builtins.compile("\n".join(src), "<backproplab.compile guard>", "exec"), space)
    guard: Callable[[tuple[Any, ...], list[Node]], bool] = space["guard"]
    return guard


_new = object.__new__


def _result_tensor(data: np.ndarray, requires_grad: bool) -> _CompiledTensor:
    # A leaf's fields set directly: Tensor() would copy the array the generated code made.
    out = _new(_CompiledTensor)
    out._leaf(data, "", requires_grad)
    out.grad = None
    return out


def _result_value(data: float, requires_grad: bool) -> _CompiledValue:
    out = _new(_CompiledValue)
    out._leaf(data, "", requires_grad)
    out.grad = 0.0
    return out


class _Entry:
    """A trace of the function for one signature: its program and the leaves it reads."""

    __slots__ = ("checks", "grads", "guard", "keep", "leaves", "program", "structure")

    def __init__(
        self, program: _Program, leaves: list[Node], structure: Any, keep: list[Any]
    ) -> None:
        self.program = program
        self.leaves = leaves
        self.structure = structure  # None: one output; else the output tuple's type
        self.keep = keep
        self.grads = [root.requires_grad for root in program.roots]
        # A leaf's data may be replaced between calls; a new shape or dtype traces again.
        self.checks = [
            (leaf, leaf.data.shape, leaf.data.dtype)
            for leaf in leaves
            if isinstance(leaf.data, np.ndarray)
        ]
        self.guard: Callable[[tuple[Any, ...], list[Node]], bool] | None = None

    def fresh(self) -> bool:
        for leaf, shape, dtype in self.checks:
            d = leaf._data
            if d.__class__ is not np.ndarray or d.shape != shape or d.dtype != dtype:
                return False
        return True


class _Eager:
    """A trace too large to compile (more than MAX_OPS ops): later calls run eagerly."""

    program = None

    def __init__(self, ops: int, structure: Any) -> None:
        self.ops = ops
        self.structure = structure

    def fresh(self) -> bool:
        return True


def _count_ops(outs: tuple[Node, ...], trace: _Trace) -> int:
    seen: set[int] = set()
    stack = list(outs)
    while stack:
        n = stack.pop()
        entry = trace.made.get(id(n))
        if entry is None or id(n) in seen:
            continue
        seen.add(id(n))
        stack.extend(entry[2])
    return len(seen)


def _program(
    outs: tuple[Node, ...],
    trace: _Trace,
    flat: list[Any],
    structure: Any,
    keep: list[Any],
    fold: int,
) -> _Entry:
    """The generated forward and backward of a trace.

    The backwards come first, while the trace is at hand: ``backward()``'s own for a scalar
    output, one for a gradient of the output's shape for any other. The forward then saves
    just what they read again.
    """
    program, leaves = _build(outs, trace, flat, fold)
    entry = _Entry(program, leaves, structure, keep)
    built = []
    for k in program.orders:
        root = program.roots[k]
        implied = isinstance(root, Value) or root.data.size == 1
        if implied:
            seed = program.seeds[k] = root._seed(None, False)
        else:
            seed = root._seed(np.ones_like(root.data), False)
        built.append((k, implied, seed, _backward_lines(program, k, seed, implied)))
    reads = {u for *_, lines in built for ln in lines if isinstance(ln, _Line) for u in ln.uses}
    _define_forward(program, reads)
    for k, implied, seed, lines in built:
        fn = _define_backward(program, _seed_kind(k, seed, implied), lines)
        if implied:
            program.implied[k] = fn
    program.release()
    return entry


class _Replay(NamedTuple):
    """What a compiled result needs for its backward: the program, the saved values, the call.

    Made with ``_make_replay`` (tuple.__new__, no Python call): one is made per call.
    """

    compiled: Compiled
    entry: _Entry
    output: int  # which of the outputs
    saved: list[Any]
    flat: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    clock: int  # engine._data_writes when the forward ran


_make_replay = tuple.__new__


def _check_unchanged(r: _Replay) -> None:
    """Raise, as the eager pass does, when a leaf or argument the forward read had its data set
    since: the generated backward reads leaves again and would mix old values with new."""
    nodes = [*r.entry.leaves, *(a for a in r.flat if isinstance(a, Node))]
    for x in nodes:
        if x._version > r.clock:
            name = f" {x.label!r}" if x.label else ""
            raise RuntimeError(
                f"the data of a {type(x).__name__}{name} (now {engine.short(x._data)}) was "
                "changed after the compiled forward used it: its gradient would come from the "
                "new data. Run the forward pass again."
            )


_CREATE_GRAPH = (
    "backward(create_graph=True) on the result of a compiled function: the generated code "
    "computes first-order gradients as numbers, with no graph to differentiate again. For "
    "higher-order gradients call the function without @compile (or use grad(grad(f)))"
)


def _replay_backward(node: Any, grad: Any, create_graph: bool, retain_grads: bool) -> None:
    if create_graph:
        raise CompileError(_CREATE_GRAPH)
    if not node.requires_grad:
        raise RuntimeError(
            "backward() on a node that does not require grad: it was made from constants "
            "only, or under no_grad()"
        )
    r: _Replay = node._replay
    if engine._data_writes != r.clock:  # some node's data was set since the forward
        _check_unchanged(r)
    entry = r.entry
    prog = entry.program
    try:
        fn = prog.implied.get(r.output) if grad is None else None
        if fn is None:
            seed = node._seed(grad, False)
            fn = _build_backward(prog, r.output, seed, grad is None)
        else:  # backward(): the implied 1, made at the trace (the code never writes to it)
            seed = prog.seeds[r.output]
        fn(seed, r.saved, r.flat, entry.leaves)
    except CompileError:
        raise
    except Exception:
        # An error inside the generated code (a domain error, an overflow): the step again,
        # eagerly, so that the engine's own message is what the user sees.
        outs = r.compiled.fn(*r.args, **r.kwargs)
        out = outs if r.entry.structure is None else outs[r.output]
        out.backward(grad, retain_grads=retain_grads)
        return
    if retain_grads:  # the root keeps its gradient, as in the eager pass
        node._accumulate(seed)


class _CompiledResult:
    """What a compiled function's results have on top of a Tensor's or a Value's: their
    backward runs the generated code. (No slots of its own, so either front end can take it.)"""

    __slots__ = ()
    _replay: _Replay

    def backward(
        self,
        grad: Any = None,
        *,
        create_graph: bool = False,
        retain_graph: bool = True,
        retain_grads: bool = True,
    ) -> None:
        """Accumulate the gradients into the leaves' ``.grad`` exactly as the eager pass does.

        Raises CompileError for ``create_graph=True``: higher-order gradients stay eager.
        """
        _replay_backward(self, grad, create_graph, retain_grads)


class _CompiledTensor(_CompiledResult, Tensor):
    """A Tensor computed by a compiled function."""

    __slots__ = ("_replay",)


class _CompiledValue(_CompiledResult, Value):
    """A Value computed by a compiled function."""

    __slots__ = ("_replay",)


# Traces kept per compiled function: one per argument signature (shapes, dtypes, constants).
MAX_TRACES = 16


class Compiled:
    """A function traced once per argument signature and replayed as generated code.

    Call it as the function. ``source`` is the generated forward and backward of the latest
    trace; ``traces`` counts the traces made so far.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError(f"compile() needs a function, got {type(fn).__name__}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.traces = 0
        self._entries: dict[tuple[Any, ...], _Entry | _Eager] = {}
        self._last: _Entry | _Eager | None = None
        self._hot: _Entry | None = None  # the latest trace, when it has a guard

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        entry = self._hot
        if entry is not None and not kwargs and entry.guard(args, entry.leaves):  # type: ignore[misc]
            flat: Any = args  # the latest trace's signature again: no key to build
        else:
            key = None if kwargs else _array_key(args)
            if key is None:
                flat, key, keep = _signature(args, kwargs)
            else:
                flat, keep = args, []
            found = self._entries.get(key)
            if found is None or not found.fresh():
                return self._trace(key, args, kwargs, list(flat), keep)
            self._last = found
            if found.program is None:  # above MAX_OPS: the function itself, eagerly
                self._hot = None
                return self.fn(*args, **kwargs)
            entry = found
            self._hot = found if found.guard is not None and flat is args else None
        prog = entry.program
        saved: list[Any] = []
        clock = engine._data_writes
        try:
            outs = prog.forward(flat, entry.leaves, saved)  # type: ignore[misc]
        except Exception:
            # The engine's own message (or its result, if the generated code was at fault).
            return self.fn(*args, **kwargs)
        make = _result_tensor if prog.kind is Tensor else _result_value
        if entry.structure is None:
            out = make(outs[0], entry.grads[0])
            out._replay = _make_replay(_Replay, (self, entry, 0, saved, flat, args, kwargs, clock))
            return out
        results = []
        for i, data in enumerate(outs):
            out = make(data, entry.grads[i])
            out._replay = _make_replay(_Replay, (self, entry, i, saved, flat, args, kwargs, clock))
            results.append(out)
        return entry.structure(results)

    def _trace(
        self,
        key: tuple[Any, ...],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        flat: list[Any],
        keep: list[Any],
    ) -> Any:
        trace = _Trace(flat)
        # The trace keeps every node it records alive until the code is built, and no node
        # makes a reference cycle: a collection would walk the whole graph to free nothing
        # (a scalar step of 64,000 nodes spent most of its trace so).
        with cycle_collector_paused(), _Tracing(trace):
            result = self.fn(*args, **kwargs)
        if isinstance(result, Node):
            outs: tuple[Node, ...] = (result,)
            structure = None
        elif (
            isinstance(result, (tuple, list))
            and result
            and all(isinstance(r, Node) for r in result)
        ):
            outs = tuple(result)
            structure = type(result)
        else:
            raise CompileError(
                f"a compiled function must return a Value or a Tensor (or a tuple of them), "
                f"got {type(result).__name__}"
            )
        ops = _count_ops(outs, trace) if len(trace.made) > MAX_OPS else 0
        if ops > MAX_OPS:
            entry: _Entry | _Eager = _Eager(ops, structure)
        else:
            with cycle_collector_paused():
                entry = self._program(outs, trace, flat, structure, keep)
            if not kwargs and _array_key(args) == key:
                entry.guard = _make_guard(args, entry.leaves)
        trace.clear()
        if len(self._entries) >= MAX_TRACES:
            self._entries.clear()
        self._entries[key] = entry
        self._last = entry
        self._hot = entry if isinstance(entry, _Entry) and entry.guard is not None else None
        self.traces += 1
        return result  # the trace is an eager run: its results are the eager engine's own

    @staticmethod
    def _program(
        outs: tuple[Node, ...], trace: _Trace, flat: list[Any], structure: Any, keep: list[Any]
    ) -> _Entry:
        # A loop whose first repetition reads its own start (2), a loop after a first
        # repetition written out (1), straight code (0): the first that replays exactly.
        for fold in (2, 1):
            try:
                return _program(outs, trace, flat, structure, keep, fold)
            except _NoFold:
                pass
        return _program(outs, trace, flat, structure, keep, 0)

    @property
    def source(self) -> str:
        """The generated source of the latest trace: its forward and its backward.

        Raises CompileError before the first call (nothing has been traced yet).
        """
        if self._last is None:
            raise CompileError("nothing traced yet: call the compiled function first")
        prog = self._last.program
        if prog is None:
            ops = self._last.ops  # type: ignore[union-attr]
            return (
                f"# This trace has {ops:,} ops, more than compile.MAX_OPS ({MAX_OPS:,}): "
                "generating and building its code would take longer than it saves, so the "
                "function runs eagerly.\n"
            )
        return prog.source


def compile(fn: Callable[..., Any]) -> Compiled:
    """Trace ``fn`` on its first call and replay it as generated straight-line code afterwards.

    ``fn`` takes Tensors, Values, NumPy arrays (read afresh on every call) and other arguments
    (a number, a string, an object: part of the trace, so a new value traces again), and
    returns a Value or a Tensor, or a tuple of them. The first call with each new signature
    (shapes, dtypes, the other arguments) runs ``fn`` eagerly and records it; later calls run
    the generated code, whose results are bit for bit the eager engine's, and whose
    ``backward()`` fills the leaves' ``.grad`` as the eager pass does.

    Returns a ``Compiled`` wrapper; ``wrapper.source`` is the generated code. Raises
    CompileError while tracing when ``fn`` takes a Python decision on a traced value
    (``if loss > 1``, ``float(x)``, ``x.item()``), or returns something else than nodes.
    """
    return Compiled(fn)
