"""The public object: ``compile`` and ``Compiled``, the cache of traces and the self-check."""

from __future__ import annotations

import functools
import types
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from ..engine import Node
from ..modes import anomaly, cycle_collector_paused, grad_enabled, tracing
from ..tensor import Tensor
from .entry import _Entry, build_entry, describe_output
from .errors import CompileError
from .guard import _array_key, _make_guard, _signature, eager_reference
from .owners import outside_arrays, owners_unchanged, param_owners
from .state import (
    _nothing_changed,
    _read_names,
    _value,
    labelled,
    nothing_kept,
    restore,
    shells,
    state_of,
)
from .trace import PRODUCTS, _Trace, product_key, stand_in

# Ops in one trace above which compile refuses it: building generated code costs time and memory
# per statement, and past this size the build's memory, not the replay's speed, is what a user
# notices (bench/README.md has the measured costs).
MAX_OPS = 200_000

# Traces kept per compiled function: one per argument signature (shapes, dtypes, constants).
MAX_TRACES = 16


class Compiled:
    """A function traced once per argument signature and replayed as generated code.

    Call it as the function: its results are nodes of the graph, outputs of one op whose
    forward and backward are the generated code. ``source`` is the latest trace's code;
    ``stats`` counts the traces made, the calls replayed and the calls run eagerly.
    """

    _not_state = True  # its counts and cache change on every call: not a model's state

    def __init__(self, fn: Callable[..., Any], fallback: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"compile() needs a function, got {type(fn).__name__}")
        if fallback not in (None, "eager"):
            raise ValueError(f"compile: fallback must be None or 'eager', got {fallback!r}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.fallback = fallback
        self.traces = 0
        self.replays = 0
        self.eager_runs = 0
        self.eager_reason: str | None = None  # why it runs eagerly (fallback="eager" only)
        self._entries: dict[tuple[Any, ...], _Entry] = {}
        self._last: _Entry | None = None
        self._hot: _Entry | None = None  # the latest checked trace, when it has a guard
        self._warned = False  # about traces made on (nearly) every call
        self._warned_anomaly = False

    @property
    def stats(self) -> dict[str, int]:
        """How many traces were made, calls replayed as generated code, and calls run eagerly."""
        return {"traces": self.traces, "replays": self.replays, "eager": self.eager_runs}

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        """``@compile`` on a method: ``model.step(x)`` calls it with the model as its first
        argument (an object: part of the key, and its parameters guarded, as any argument)."""
        if obj is None or isinstance(self.fn, staticmethod):  # @compile over @staticmethod
            return self
        return types.MethodType(self, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        entry = self._hot
        if (
            entry is not None
            and not kwargs
            and entry.guard(args, entry.leaves)
            and (not entry.owners or owners_unchanged(entry.owners))
        ):
            self.replays += 1
            return entry.run(args, args, kwargs)
        return self._call(args, kwargs)

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if tracing.get() is not None or eager_reference.get():
            # inside another compiled function's trace its ops are that trace's own; inside its
            # self-check's eager run, the eager engine's (the reference is the eager function,
            # whose sums a compiled call inside would order otherwise)
            return self.fn(*args, **kwargs)
        if anomaly.get():  # detect_anomaly() checks and names each op: the eager engine's work
            self.eager_runs += 1
            if not self._warned_anomaly:
                self._warned_anomaly = True
                warnings.warn(
                    f"compile: {getattr(self.fn, '__name__', 'the function')} runs eagerly "
                    "while detect_anomaly() is on, so that each op is checked",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return self.fn(*args, **kwargs)
        if self.eager_reason is not None:
            self.eager_runs += 1
            return self.fn(*args, **kwargs)
        fast = None if kwargs else _array_key(args)  # arrays and Tensors only: flat is args
        flat: Any
        if fast is None:
            flat, key, keep = _signature(args, kwargs)
        else:
            flat, key, keep = args, fast, []
        key = (*key, grad_enabled.get())
        entry = self._entries.get(key)
        if entry is None or not entry.fresh() or not owners_unchanged(entry.owners):
            return self._trace(key, args, kwargs, list(flat), keep)
        if entry.failed is not None:
            raise CompileError(entry.failed)
        self._last = entry
        if entry.unchecked and grad_enabled.get():
            return self._checked_run(entry, flat, args, kwargs)
        self._hot = entry if entry.guard is not None and fast is not None else None
        self.replays += 1
        return entry.run(flat, args, kwargs)

    def _trace(
        self,
        key: tuple[Any, ...],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        flat: list[Any],
        keep: list[Any],
    ) -> Any:
        try:
            # The collector paused while the graph is read (the trace pauses it while it is
            # made): every collection would walk the whole traced graph, freeing nothing.
            with cycle_collector_paused():
                entry = self._build(args, kwargs, flat)
        except CompileError as e:
            self._give_up(e)
            self.eager_runs += 1
            return self.fn(*args, **kwargs)
        entry.keep = keep
        entry.grad_mode = grad_enabled.get()
        # a module read (by name or as an argument) may have a parameter rebound, added or
        # appended while it stays the same object: its parameters are checked on each call
        roots = [v for _, v in entry.roots] + keep
        entry.roots = []
        # the Tensor arguments too: one the function also reads through a model (f(model.W, x)
        # reading model.W inside) is read from the argument by the replay
        nodes = [a for a in flat if isinstance(a, Node)]
        entry.owners = param_owners(roots, entry.leaves + nodes)
        entry.owners += outside_arrays(roots, entry.from_arrays)
        entry.from_arrays = []
        if not kwargs and _array_key(args) is not None:
            entry.guard = _make_guard(args, entry.leaves, entry.watch)
        if len(self._entries) >= MAX_TRACES:
            self._too_many_traces()
            self._entries.clear()
        self._entries[key] = entry
        self._last = entry
        self._hot = None
        self.traces += 1
        return self._checked_run(entry, args if entry.guard is not None else flat, args, kwargs)

    def _build(self, args: tuple[Any, ...], kwargs: dict[str, Any], flat: list[Any]) -> _Entry:
        """Run the function on stand-ins, recording it, and generate the code of what it did."""
        trace = _Trace()
        traced_args, traced_kwargs = stand_in(args), stand_in(kwargs)
        traced_flat = _signature(traced_args, traced_kwargs)[0]
        arrays = {
            i: a.dtype not in (np.float64, np.float32, np.bool_)
            for i, a in enumerate(flat)
            if isinstance(a, np.ndarray)
        }
        containers = shells((traced_args, traced_kwargs))
        names, roots = _read_names(self.fn)
        before = state_of([*roots, *labelled(args, kwargs)])
        bound = [(space, name, _value(space, name)) for space, name in names]
        at = (traced_args, traced_kwargs, traced_flat, flat, arrays, containers, before, bound)
        try:
            return self._generate(trace, args, kwargs, at)
        except CompileError:
            restore(before, bound)  # a refused function leaves what it changed as it was
            raise

    def _generate(
        self, trace: _Trace, args: tuple[Any, ...], kwargs: dict[str, Any], at: tuple[Any, ...]
    ) -> _Entry:
        """The trace itself, then the checks of what the function did and its generated code;
        ``at`` is what _build prepared: the stand-ins, and what the function reads as it was."""
        traced_args, traced_kwargs, traced_flat, flat, arrays, containers, before, bound = at
        with trace.recording():
            result = self.fn(*traced_args, **traced_kwargs)
        try:
            outs, structure = _outputs(result)
            _computed_inside(outs, trace)
            # read after the run: a helper rebound since reads names of its own
            names, roots = _read_names(self.fn)
            kept = [*roots, *labelled(args, kwargs)]
            nothing_kept(trace, traced_flat, flat, containers, kept)
            _nothing_changed(before, bound)
            if len(trace.made) > MAX_OPS:
                raise CompileError(
                    f"the trace has {len(trace.made):,} ops, more than compile.MAX_OPS "
                    f"({MAX_OPS:,}): generating its code would cost more than it saves"
                )
            entry = build_entry(self, outs, trace, traced_flat, arrays)
            trace.refuse_grads_read(entry.leaves)
            entry.from_arrays = trace.from_arrays
            if isinstance(outs[0], Tensor):
                entry.op_inputs = trace.op_inputs(outs)
            entry.watch = [(space, name, _value(space, name)) for space, name in names]
            entry.roots = roots
        finally:
            trace.clear()
        entry.structure = structure
        return entry

    def _checked_run(
        self, entry: _Entry, flat: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """The self-check: the generated forward and the function run eagerly, side by side;
        their outputs must agree to the bit (their gradients are compared at the first
        backward, see op._Call.check_gradients)."""
        result = entry.run(flat, args, kwargs)
        token = eager_reference.set(True)  # compiled functions it calls run eagerly too
        try:
            # The collector paused, as in the trace: it would walk the eager graph again and
            # again as it grows (a third of the run for a graph of 150,000 Values), freeing nothing.
            with cycle_collector_paused():
                eager = self.fn(*args, **kwargs)
        finally:
            eager_reference.reset(token)
        got = (result,) if entry.structure is None else tuple(result)
        want = (eager,) if entry.structure is None else tuple(eager)
        for k, (a, b) in enumerate(zip(got, want, strict=False)):
            if not (isinstance(b, Node) and entry.same(a._data, b._data)):
                entry.fail(f"the forward's {describe_output(k, a, b)}")
                self.eager_runs += 1
                return eager
        if len(got) != len(want):
            entry.fail(f"{len(got)} outputs compiled, {len(want)} eager")
            return eager
        differs = _op_inputs_differ(entry, want, flat)
        if differs is not None:
            entry.fail(differs)
            self.eager_runs += 1
            return eager
        if grad_enabled.get():
            pending = False  # compared at the first backward of this call's results
            for a, b in zip(got, want, strict=True):
                if a.requires_grad and b.requires_grad:
                    a.params[0].check = b
                    pending = True
            entry.unchecked = pending
        if not entry.unchecked and entry.guard is not None and flat is args:
            self._hot = entry
        self.replays += 1
        return result

    def _too_many_traces(self) -> None:
        """Warn, once, that the traces keep coming: each costs a trace and an eager run (the
        self-check), so a function traced on every call is slower than running it eagerly."""
        if self._warned:
            return
        self._warned = True
        warnings.warn(
            f"compile: {getattr(self.fn, '__name__', 'the function')} has been traced "
            f"{self.traces} times ({MAX_TRACES} signatures kept): an argument that is a Python "
            "number, or an object, differs between calls, and each new one traces again. Pass "
            "numbers that change as Values or arrays (they are read on every call)",
            RuntimeWarning,
            stacklevel=4,
        )

    def _give_up(self, error: CompileError) -> None:
        """Raise ``error``; or, with fallback="eager", warn once and run eagerly from now on."""
        if self.fallback != "eager":
            raise error
        self.eager_reason = str(error)
        self._hot = None
        warnings.warn(
            f"compile: {getattr(self.fn, '__name__', 'the function')} runs eagerly: {error}",
            RuntimeWarning,
            stacklevel=4,
        )

    @property
    def source(self) -> str:
        """The code of the latest trace: a Tensor step's generated forward and backwards, after a
        legend of their names; a Value step's program of batches, described one line a batch.

        Raises CompileError before the first call (nothing has been traced yet).
        """
        if self._last is None and self.eager_reason is not None:
            return f"# runs eagerly (fallback='eager'): {self.eager_reason}\n"
        if self._last is None:
            raise CompileError("nothing traced yet: call the compiled function first")
        return self._last.program.source


def _op_inputs_differ(entry: _Entry, want: tuple[Any, ...], flat: Any) -> str | None:
    """What differs between the ops the trace ran and those the eager run ran, by their inputs'
    dtypes, or None. The eager engine lifts a NumPy array to the dtype of a Tensor it meets
    (``x @ W``), but not in ``Tensor(x)``, and a stand-in cannot tell the two apart: a float32
    batch met by float64 weights is multiplied in float64 there and in mixed dtypes here, which
    rounds otherwise, now and then (the outputs may agree at this call and not at the next)."""
    if entry.op_inputs is None or not grad_enabled.get():
        return None
    args = {id(a) for a in flat if isinstance(a, Node)}
    seen: set[int] = set()
    eager: Counter[tuple[Any, ...]] = Counter()
    todo = [w for w in want if isinstance(w, Node)]
    while todo:
        n = todo.pop()
        if id(n) in seen or n.op is None or id(n) in args:
            continue
        seen.add(id(n))
        if n.op.name in PRODUCTS:
            eager[product_key(n.op, n.parents)] += 1
        todo += n.parents
    if eager == entry.op_inputs:
        return None
    traced = ", ".join("/".join(k) for k in (entry.op_inputs - eager)) or "none"
    ran = ", ".join("/".join(k) for k in (eager - entry.op_inputs)) or "none"
    return (
        f"the products took inputs of dtypes {traced} in the trace, {ran} in the eager run: "
        "the eager engine casts a NumPy array argument to "
        "the dtype of the Tensor it meets, which a trace cannot repeat; pass the array in that "
        "dtype (x.astype(np.float64)), or make it a Tensor yourself"
    )


def _outputs(result: Any) -> tuple[tuple[Node, ...], Any]:
    if isinstance(result, Node):
        outs: tuple[Node, ...] = (result,)
        structure = None
    elif isinstance(result, (tuple, list)) and result and all(isinstance(r, Node) for r in result):
        outs = tuple(result)
        structure = type(result)
    else:
        raise CompileError(
            f"a compiled function must return a Value or a Tensor (or a tuple of them), "
            f"got {type(result).__name__}"
        )
    kinds = {type(o).__name__ for o in outs}
    if len(kinds) > 1:
        raise CompileError("a compiled function returns Values or Tensors, not both")
    return outs, structure


def _computed_inside(outs: tuple[Node, ...], trace: _Trace) -> None:
    """Refuse an output the function did not compute (an argument, a parameter, a leaf it
    made): as an output of the compiled op it would be a new node, cut off from its gradient."""
    for k, o in enumerate(outs):
        if id(o) not in trace.made:
            raise CompileError(
                f"output {k} of the function is a {type(o).__name__} it did not compute (an "
                "argument, a parameter or a leaf made inside): return it from outside the "
                "compiled function, or return what is computed from it"
            )


def compile(fn: Callable[..., Any] | None = None, *, fallback: str | None = None) -> Any:
    """Trace ``fn`` with stand-ins on its first call and replay it as generated code.

    ``fn`` takes Tensors, Values, NumPy arrays (read afresh on every call; an array enters the
    trace as a Tensor) and other arguments (a number, a string, an object: part of the trace,
    so a new value traces again), and returns a Value or a Tensor, or a tuple of them. The
    result of a call is one op of the graph, so it composes, nests and differentiates (also
    with ``create_graph``) as any node does.

    The first call of each signature also runs ``fn`` eagerly and compares the outputs, and
    the first backward compares the gradients, to the bit; a difference raises CompileError.
    What a trace cannot replay (a number read from a traced value, a random draw) raises
    CompileError naming the line; with ``fallback="eager"`` the function runs eagerly instead,
    after one warning. Use as ``@compile`` or ``@compile(fallback="eager")``.
    """
    if fn is None:
        return functools.partial(Compiled, fallback=fallback)
    return Compiled(fn, fallback)
