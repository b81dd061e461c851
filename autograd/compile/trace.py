"""Tracing: the eager run, with every op recorded (constants' too) and control flow refused."""

from __future__ import annotations

import contextvars
import operator
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from .. import tensor as _tensor_mod
from .. import value as _value_mod
from ..engine import Node
from ..tensor import Tensor
from ..value import Value
from .errors import CompileError, _refuse


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

    def arg_of(self, a: np.ndarray) -> int | None:
        """The index of the argument whose numbers ``a`` holds (it, a view of it, or the copy a
        Tensor made of it), else None."""
        for array, i in self.arg_copies:
            if _same_array(a, array):
                return i
        return None

    def node(self, out: Node, op: Any, parents: tuple[Node, ...], params: tuple[Any, ...]) -> None:
        if isinstance(out._data, np.ndarray):
            self.made_buffers.add(id(_root_buffer(out._data)))
        self.made[id(out)] = (out, op, tuple(parents), tuple(params))  # keeps out alive too

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
