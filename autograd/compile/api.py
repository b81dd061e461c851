"""The public object: compile, Compiled, and the results a replay hands back."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .. import engine
from ..engine import Node
from ..modes import cycle_collector_paused
from ..tensor import Tensor
from ..value import Value
from .backward import _backward_lines, _build_backward, _define_backward, _seed_kind
from .emit import _Line
from .errors import CompileError
from .fold import _NoFold
from .forward import _build, _define_forward
from .guard import _array_key, _make_guard, _signature
from .program import _Program
from .trace import _Trace, _Tracing

# generated code costs time and memory per statement, and past this size the build's memory,
# not the replay's speed, is what a user notices (bench/README.md has the measured costs).
MAX_OPS = 200_000

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
