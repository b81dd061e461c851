"""The trace: the function run on stand-ins, every op and leaf it makes recorded.

While a trace is set in ``modes.tracing`` (this thread or task only), the engine reports to it
every op (``record``) and every leaf made (``Tensor()``, ``Value()``, ``detach()``), and reading
a node's number (``.data``, ``.item()``, ``float``, ``bool``, printing, ``np.asarray``) is
refused here, naming the user's line: a number computed outside the graph would be frozen into
every replay. The few things computed from data on purpose (a comparison for ``where``, an
index array, class labels) are made by the front ends through ``mask`` and ``computed``, which
remember how, so that the generated code makes them again on every call.
"""

from __future__ import annotations

import contextlib
import operator
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..engine import Node
from ..modes import cycle_collector_paused, tracing
from ..tensor import Tensor
from .errors import CompileError

_INSTEAD = (
    "compile traces the function with stand-ins, so a number read from a {what} inside it "
    "would be the first call's, frozen into every later call. Compute with the {what} itself: "
    "where(cond, a, b), maximum or minimum for a decision, a Tensor op for the arithmetic; "
    "pass a number the function needs as an argument; or call the function without @compile"
)


_LIBRARIES = ("backproplab.", "numpy.")


def user_line() -> str:
    """``file:line`` of the innermost frame outside backproplab and NumPy (``np.clip(x, ...)``
    reaches the refusal through NumPy's own Python code): the user's own line."""
    frame = sys._getframe(1)
    inside = None  # the library's nn function the user called, which did it (a loss)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_LIBRARIES):
        if frame.f_globals["__name__"].startswith("backproplab.nn"):
            inside = frame
        frame = frame.f_back  # type: ignore[assignment]
    where = "?" if frame is None else f"{frame.f_code.co_filename}:{frame.f_lineno}"
    if inside is not None:
        module = inside.f_globals["__name__"].replace(".", "/").removeprefix("backproplab/")
        where += f" (in backproplab's {inside.f_code.co_name}, {module}.py:{inside.f_lineno})"
    return where


def refuse(what: str) -> CompileError:
    """The error for ``what`` done to a traced value, at the user's line."""
    return CompileError(f"{user_line()}: {what}: " + _INSTEAD.format(what="value"))


class _Derived(np.ndarray):
    """An array the trace made from traced data (a comparison, an index): its ``src`` says how,
    ``(symbol, a, b)`` for a comparison or combination, ``("call", fn, node)`` otherwise. Masks
    combine (``&``, ``|``, ``~``); any other NumPy on one would be frozen, so it is refused."""

    src: tuple[Any, ...]
    trace: _Trace | None  # type: ignore[assignment]  # ndarray has a method of that name

    def __bool__(self) -> bool:
        raise refuse("bool() of a comparison of Tensors")

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        sym = _MASK_UFUNCS.get(ufunc)
        if sym is None or method != "__call__" or kwargs or self.trace is None:
            raise CompileError(
                f"{user_line()}: NumPy's {ufunc.__name__} on a comparison of traced Tensors (or "
                "an index made from one) would run once, at the trace: pass comparisons "
                "(combined with &, | and ~) to where(cond, a, b), or compute with Tensors"
            )
        plain = [x.view(np.ndarray) if isinstance(x, _Derived) else x for x in inputs]
        src = (sym, *inputs) if len(inputs) == 2 else (sym, inputs[0], None)
        return self.trace.derived(ufunc(*plain), src)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func in (np.shape, np.ndim, np.size, np.result_type):
            return super().__array_function__(func, types, args, kwargs)
        raise CompileError(
            f"{user_line()}: np.{func.__name__} on a comparison of traced Tensors would run "
            "once, at the trace: use where(cond, a, b) or compute with Tensors"
        )

    def item(self, *args: Any) -> Any:
        raise refuse(".item() of a comparison of Tensors")

    def tolist(self) -> Any:
        raise refuse(".tolist() of a comparison of Tensors")


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
_SYMBOL = {fn: sym for sym, fn in _COMPARE.items()}


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


# The ops whose result rounds otherwise on inputs of two float dtypes than on the same inputs
# cast to one first (a product's sums); elementwise NumPy casts exactly, then computes.
PRODUCTS = frozenset({"MatMul", "Dense", "Dot"})


def product_key(op: Any, parents: tuple[Node, ...]) -> tuple[str, ...]:
    """(the op's name, its inputs' dtypes): what the self-check compares of a product."""
    return tuple([op.name, *[p._data.dtype.name for p in parents]])


class _StopGradient:
    """out = x (a leaf made inside from a traced node: ``detach()``, ``Tensor(t)``); no dx.
    Not an Op of the table: it exists only in traces, and the backward never reaches it."""

    name = "detach"

    @staticmethod
    def forward(xp: Any, x: Any) -> Any:
        return x


class _FromData:
    """out = an array computed from traced data (Tensor(labels) made inside); no gradient."""

    name = "from data"

    @staticmethod
    def forward(xp: Any, data: Any) -> Any:
        return data


class _Trace:
    """What one run of the function on stand-ins made, in the order it made it."""

    def __init__(self) -> None:
        # node id -> (node, op, parents, params), in the order the ops ran
        self.made: dict[int, tuple[Node, Any, tuple[Node, ...], tuple[Any, ...]]] = {}
        self.inside: dict[int, Node] = {}  # leaves made inside the function (constants)
        self.masks: list[_Derived] = []  # every array made from traced data
        self.keep: list[Any] = []  # what the ids above refer to stays alive while tracing
        self.from_arrays: list[np.ndarray] = []  # arrays leaves made inside were made from

    # -- what the engine and the front ends report (see modes.tracing) --------------------------

    def node(self, out: Node, op: Any, parents: tuple[Node, ...], params: tuple[Any, ...]) -> None:
        # keeps out alive too; the engine passes tuples (once an op: no copy to make)
        if parents.__class__ is not tuple or params.__class__ is not tuple:
            parents, params = tuple(parents), tuple(params)
        self.made[id(out)] = (out, op, parents, params)

    def op_inputs(self, outs: tuple[Node, ...]) -> Counter[tuple[Any, ...]]:
        """(op, its inputs' dtypes) for each product the outputs depend on that the eager engine
        records too (one some input of which requires grad): for the self-check to compare
        with the eager run's graph (see api._op_inputs_differ)."""
        reached = {id(o) for o in outs}
        out: Counter[tuple[Any, ...]] = Counter()
        for node, op, parents, _ in reversed(self.made.values()):
            if id(node) not in reached or not node.requires_grad:
                continue  # eager records no op here: a constant, or made under no_grad()
            reached.update(id(p) for p in parents)
            if op.name in PRODUCTS:
                out[product_key(op, parents)] += 1
        return out

    def leaf(self, x: Node, source: Any) -> None:
        """A leaf made inside; ``source``: the node or data it was made from, if any."""
        if isinstance(source, Node):  # detach(), Tensor(t): the same numbers, on every call
            if isinstance(x, Tensor) and x._data.dtype != source._data.dtype:
                raise CompileError(
                    f"{user_line()}: a Tensor made with another dtype from a traced Tensor: "
                    "make it in that dtype outside the function, or pass it as an argument"
                )
            self.made[id(x)] = (x, _StopGradient, (source,), ())
            return
        if isinstance(source, _Derived) and x._data.dtype == source.dtype:
            self.made[id(x)] = (x, _FromData, (), (source,))  # computed again on every call
            return
        if isinstance(source, _Derived):
            raise CompileError(
                f"{user_line()}: an array computed from traced Tensors (a comparison, labels) "
                "made into a Tensor would be frozen: use where(X > 0, X, 0.0) or maximum(X, "
                "0.0) rather than X * (X > 0); give class labels as indices"
            )
        if isinstance(source, np.ndarray):  # perhaps an array from outside: see owners
            self.from_arrays.append(source)
        self.inside[id(x)] = x
        self.keep.append(x)

    def refuse_grads_read(self, leaves: list[Node]) -> None:
        """Refuse a ``.grad`` read inside the function: its numbers would be a constant of the
        trace, and a replay never reads them again. Nothing marks a number as read from a
        ``.grad`` (a slot of the engine's nodes), so the gradients the ``leaves`` the function
        read hold are looked for among what it made constants: the arrays it made Tensors from
        or indexed with, a Value's number, and each op's number operands."""
        for src in self.from_arrays:
            for n in leaves:
                if n.grad.__class__ is np.ndarray and np.may_share_memory(src, n.grad):
                    raise _grad_read(n)
        # a zero is left out: a literal 0.0 can be the very float object a fresh .grad holds
        floats = {id(n.grad): n for n in leaves if n.grad.__class__ is float and n.grad}
        if not floats:
            return
        for x in self.inside.values():
            if id(x._data) in floats and x._data is floats[id(x._data)].grad:
                raise _grad_read(floats[id(x._data)])
        for _, _, _, params in self.made.values():
            for q in params:
                if id(q) in floats and q is floats[id(q)].grad:
                    raise _grad_read(floats[id(q)])

    def read_data(self, x: Node) -> Any:
        raise CompileError(
            f"{user_line()}: .data (or .item(), float(), bool(), printing, np.asarray) of a "
            f"{type(x).__name__}: " + _INSTEAD.format(what=type(x).__name__)
        )

    def backward_inside(self) -> CompileError:
        """backward() (or gradients()) run inside the function: it writes numbers, computed
        once at the trace, into ``.grad``, and a replay would never compute them again."""
        return CompileError(
            f"{user_line()}: backward() inside a compiled function would run once, at the "
            "trace, and never on a replay: return the loss and call .backward() on the "
            "compiled call's result"
        )

    def side_effect(self, what: str) -> CompileError:
        """``what`` (``zero_grad()``, an optimizer's ``step()``) called inside the function: it
        changes gradients or parameters outside the graph, once, at the trace; a replay runs the
        generated code alone and would never do it again."""
        return CompileError(
            f"{user_line()}: {what} inside a compiled function would run once, at the trace, "
            "and never on a replay (it changes parameters or gradients outside the graph): call "
            "it outside, before or after the compiled call"
        )

    def index(self, part: np.ndarray) -> np.ndarray:
        """Refuse a boolean mask computed from traced data as an index: how many elements it
        selects differs from call to call, and the generated code keeps the trace's shapes (a
        mean's count, a gradient's shape) as numbers."""
        if part.dtype == bool and (isinstance(part, _Derived) or self.mask_of(part) is not None):
            raise CompileError(
                f"{user_line()}: indexing with a boolean mask made from traced data (x[x > 0], "
                "x[m] with m an argument) gives a shape that differs from call to call: use "
                "where(mask, x, 0.0) and divide by the count, or call the function without "
                "@compile"
            )
        if not isinstance(part, _Derived) and self.mask_of(part) is None:
            self.from_arrays.append(part)  # perhaps an array from outside: see owners
        return part

    def mask(self, fn: Any, a: Tensor, b: Any, result: np.ndarray) -> _Derived:
        return self.derived(result, (_SYMBOL[fn], a, b))

    def computed(self, fn: Callable[[np.ndarray], np.ndarray], x: Tensor) -> _Derived:
        """fn(x's data), remembered so that each replay computes it again from x. fn runs as
        it will at a replay, outside the trace: on numbers, recording nothing."""
        token = tracing.set(None)
        try:
            result = fn(x._data)
        finally:
            tracing.reset(token)
        return self.derived(result, ("call", fn, x))

    def derived(self, result: Any, src: tuple[Any, ...]) -> _Derived:
        m = np.asarray(result).view(_Derived)
        m.src, m.trace = src, self
        self.masks.append(m)
        self.keep.append(m)
        return m

    def mask_of(self, p: Any) -> _Derived | None:
        """The derived array p is (or a full view of), else None."""
        if isinstance(p, np.ndarray):
            for m in self.masks:
                if _same_array(p, m):
                    return m
        return None

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Set this trace for this context. No collection while it runs: the trace keeps every
        node alive until the code is built, and nodes make no reference cycles."""
        token = tracing.set(self)
        try:
            with cycle_collector_paused():
                yield
        finally:
            tracing.reset(token)

    def clear(self) -> None:
        """Let go of the traced graph (a derived array keeps its trace otherwise)."""
        for m in self.masks:
            m.trace = None
        self.made.clear()
        self.inside.clear()
        self.keep.clear()


def _grad_read(n: Node) -> CompileError:
    name = f" {n.label!r}" if n.label else ""
    shape = f" of shape {n._data.shape}" if isinstance(n._data, np.ndarray) else ""
    return CompileError(
        f"the function reads the .grad of a {type(n).__name__}{name}{shape}: the trace would keep "
        "the numbers it holds now, and a replay never reads them again. Use the gradient "
        "outside the compiled function, or pass it in as an argument"
    )


def _in_place(name: str) -> Callable[..., Any]:
    def refuse_in_place(self: Tensor, *args: Any) -> Any:
        raise CompileError(
            f"{user_line()}: {name} on an array argument: the eager function writes into the "
            "caller's array, on every call, which a replay of the trace would not do. Write "
            "x = x + 1 (a new array), or copy the array first, or call the function without "
            "@compile"
        )

    return refuse_in_place


class _ArrayArgument(Tensor):
    """The stand-in of an array argument: a Tensor, except that an in-place write (``x += 1``,
    ``x[0] = 0``), which eagerly changes the caller's array, is refused (a Tensor would make a
    new one and leave the caller's array as it was)."""

    __slots__ = ()
    __iadd__ = _in_place("+=")
    __isub__ = _in_place("-=")
    __imul__ = _in_place("*=")
    __itruediv__ = _in_place("/=")
    __ipow__ = _in_place("**=")
    __imatmul__ = _in_place("@=")
    __setitem__ = _in_place("item assignment (x[i] = ...)")


def stand_in(x: Any) -> Any:
    """An argument as the trace passes it: an array enters as a Tensor (no gradient), so that
    what the function computes from it is recorded; lists, tuples and dicts are walked."""
    if isinstance(x, np.ndarray):
        t = _ArrayArgument.__new__(_ArrayArgument)
        floats = x.dtype in (np.float64, np.float32) or x.dtype == bool
        t._leaf(x if floats else x.astype(np.float64), "", False)
        t.grad = None
        return t
    if isinstance(x, (list, tuple)):
        return type(x)(stand_in(v) for v in x)
    if isinstance(x, dict):
        return {k: stand_in(v) for k, v in x.items()}
    return x
