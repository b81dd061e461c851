"""One trace of a compiled function: its program, what it reads, and how a call runs it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine import Node, record
from ..value import Value
from .backward import _backward_lines, _define_backward, _seed_kind
from .emit import _Line
from .errors import CompileError
from .forward import _build, _define_forward
from .guard import _MISSING
from .op import CompiledCall, _Call
from .program import _Program

# The scalar back end: a Value trace of any shape runs as batches of one op at one depth.
from .scalar import build_scalar_program
from .scalar_graph import reached
from .trace import _Trace

if TYPE_CHECKING:
    from .api import Compiled


class _Entry:
    """A trace of the function for one signature: its program, the leaves it reads (the op's
    parameters), the names it was traced with, and whether the self-check has passed."""

    def __init__(
        self, compiled: Compiled, program: _Program, leaves: list[Node], node_args: list[int]
    ) -> None:
        self.compiled = compiled
        self.program = program
        self.leaves = leaves
        self.leaves_tuple = tuple(leaves)
        self.node_args = node_args  # the arguments that are nodes: the op's first parents
        self.kind: type[Node] = program.kind
        self.structure: Any = None  # None: one output; else the output tuple's type
        # per output: (the backward from the implied seed 1 or None, the general one), or None
        self.backwards: list[tuple[Any, Any] | None] = []
        self.seeds: list[Any] = []
        self.guard: Any = None
        self.watch: list[tuple[Any, Any, Any]] = []  # (namespace or cell, name, value)
        self.roots: list[tuple[str, Any]] = []  # the state it holds, until its owners are found
        self.owners: list[Any] = []  # objects holding parameters, see owners.param_owners
        self.from_arrays: list[Any] = []  # arrays the trace made leaves from, until guarded
        self.grad_mode = True
        self.unchecked = True  # the self-check has not compared gradients yet
        self.failed: str | None = None
        self.tolerance = 0.0  # bit for bit
        self.op_inputs: Any = None  # (op, its inputs' dtypes) counted, for the self-check
        self.keep: list[Any] = []  # objects of the key, alive so their ids stay theirs
        self.checks = [
            (leaf, leaf._data.shape, leaf._data.dtype, leaf.requires_grad)
            if isinstance(leaf._data, np.ndarray)
            else (leaf, None, None, leaf.requires_grad)
            for leaf in leaves
        ]

    def fresh(self) -> bool:
        """Whether a call may replay this trace: the leaves have the shapes, dtypes and
        requires_grad it was traced with, and every name the function reads is bound as then."""
        for leaf, shape, dtype, needs in self.checks:
            if leaf.requires_grad is not needs:
                return False
            if shape is not None:
                d = leaf._data
                if d.__class__ is not np.ndarray or d.shape != shape or d.dtype != dtype:
                    return False
        return self.watched_unchanged()

    def watched_unchanged(self) -> bool:
        for space, name, value in self.watch:
            now = space.get(name, _MISSING) if isinstance(space, dict) else _cell(space)
            if now is not value:
                return False
        return True

    def run(self, flat: Any, args: Any, kwargs: Any) -> Any:
        """Run the generated forward; return its outputs as nodes of the graph, recorded by the
        engine as outputs of one CompiledCall op whose parents are the arguments and leaves."""
        saved: list[Any] = []
        outs = self.program.forward(flat, self.leaves, saved)  # type: ignore[misc]
        leaves = self.leaves_tuple
        parents = (*[flat[i] for i in self.node_args], *leaves) if self.node_args else leaves
        kind = self.kind
        if self.structure is None:
            call = _Call(self, saved, 0, flat, args, kwargs, parents)
            return record(kind, outs[0], CompiledCall, self._from(0, parents), (call,))
        return self.structure(
            [
                record(
                    kind,
                    data,
                    CompiledCall,
                    self._from(k, parents),
                    (_Call(self, saved, k, flat, args, kwargs, parents),),
                )
                for k, data in enumerate(outs)
            ]
        )

    def _from(self, k: int, parents: tuple[Node, ...]) -> tuple[Node, ...]:
        """Output k's parents: none when no gradient reaches it (made under no_grad() inside, or
        from constants only), so that it is a constant, as the eager run's output is."""
        return parents if self.backwards[k] is not None else ()

    def same(self, got: Any, want: Any) -> bool:
        """got and want agree: to the bit, or within the program's stated tolerance (relative,
        and as much absolute near zero). No gradient agrees with a Value's gradient 0.0, which
        adds nothing to a ``.grad``."""
        if got is None or want is None:
            other = want if got is None else got
            if other is None:
                return True
            return bool(other.__class__ is float and other == 0.0 and math.copysign(1.0, other) > 0)
        if got.__class__ is float and want.__class__ is float:  # a Value's: one of many
            if got == want:
                return got != 0.0 or math.copysign(1.0, got) == math.copysign(1.0, want)
            return (
                got != got and want != want and math.copysign(1.0, got) == math.copysign(1.0, want)
            )
        a = np.asarray(got)
        b = np.asarray(want)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if self.tolerance == 0.0:  # the same floats, signed zeros and NaNs included
            return bool(
                np.array_equal(a, b, equal_nan=True) and np.all(np.signbit(a) == np.signbit(b))
            )
        tol = self.tolerance
        return bool(np.allclose(a, b, rtol=tol, atol=tol, equal_nan=True))

    def fail(self, reason: str) -> None:
        """The self-check found a difference: this trace is never replayed; raise (or, where
        the caller chose fallback="eager", warn once and run eagerly from now on)."""
        self.failed = f"the self-check of compile found the compiled step wrong: {reason}"
        self.compiled._hot = None
        self.compiled._give_up(CompileError(self.failed))


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell: a name not bound yet
        return _MISSING


def build_entry(
    compiled: Compiled,
    outs: tuple[Node, ...],
    trace: _Trace,
    flat: list[Any],
    arrays: dict[int, bool],
) -> _Entry:
    """The entry of a trace: its generated forward and backwards, or for a scalar (Value) trace
    the program of the scalar back end (scalar.py)."""
    if isinstance(outs[0], Value):
        return _scalar_entry(compiled, outs, trace, flat)
    program, leaves, node_args, backwards, seeds = generate(outs, trace, flat, arrays)
    entry = _Entry(compiled, program, leaves, node_args)
    entry.backwards, entry.seeds = backwards, seeds
    return entry


def generate(
    outs: tuple[Node, ...],
    trace: _Trace,
    flat: list[Any],
    arrays: dict[int, bool],
) -> tuple[_Program, list[Node], list[int], list[Any], list[Any]]:
    """The generated forward and backwards of a Tensor trace, and the op's parents: the
    arguments that are nodes (their places in ``flat``) and the leaves it reads.

    The backwards come first, while the trace is at hand: one from ``backward()``'s implied
    seed 1 for a single-element output, one for any seed. The forward then saves just what
    they read again."""
    program, leaves = _build(outs, trace, flat, arrays)
    seen: set[int] = set()
    node_args = []
    for i, a in enumerate(flat):
        if i not in arrays and id(a) not in seen:
            seen.add(id(a))
            node_args.append(i)
    parents = [*(flat[i] for i in node_args), *leaves]
    program.parent_index = {id(p): j for j, p in enumerate(parents)}
    program.n_parents = len(parents)
    built = []
    for k, root in enumerate(program.roots):
        if k not in program.orders:
            continue
        implied = root._data.size == 1
        if implied:
            seed = root._seed(None, False)
            built.append((k, True, seed, _backward_lines(program, k, seed, True)))
        general = root._seed(np.ones_like(root._data), False)
        built.append((k, False, general, _backward_lines(program, k, general, False)))
    reads = {
        u for *_, (lines, _r) in built for ln in lines if isinstance(ln, _Line) for u in ln.uses
    }
    _define_forward(program, reads)
    backwards: list[Any] = [None] * len(program.roots)
    seeds: list[Any] = [None] * len(program.roots)
    for k, implied, seed, lines in built:
        fn = _define_backward(program, _seed_kind(k, seed, implied), lines)
        if implied:
            seeds[k] = seed
            backwards[k] = (fn, None)
        else:
            backwards[k] = (backwards[k][0] if backwards[k] else None, fn)
    program.release()
    return program, leaves, node_args, backwards, seeds


def _scalar_entry(
    compiled: Compiled, outs: tuple[Node, ...], trace: _Trace, flat: list[Any]
) -> _Entry:
    """A Value trace through the scalar back end's interface: its inputs are the op's parents
    (the arguments, then the leaves read in order of first use); it is handed their numbers."""
    if not all(isinstance(a, Value) for a in flat):
        raise CompileError("a compiled function that returns Values takes Values, not arrays")
    order, inputs, node_args, leaves, known = scalar_graph(trace, outs, flat)
    scalar = build_scalar_program(order, inputs, list(outs), known)
    entry = _Entry(compiled, _ScalarView(scalar, node_args), leaves, node_args)  # type: ignore[arg-type]
    entry.tolerance = scalar.tolerance
    entry.backwards = [(None, _scalar_backward(scalar, k)) for k in range(len(outs))]
    entry.seeds = [None] * len(outs)
    return entry


def scalar_graph(
    trace: _Trace, outs: tuple[Node, ...], flat: list[Any]
) -> tuple[list[Node], list[Node], list[int], list[Node], Any]:
    """(order, inputs, the arguments' places, the leaves read, the parents as read here) of a
    scalar trace, as the scalar back end takes them: every node the outputs depend on in the
    order it was made, leaves first, each with its op, parents and params set (the trace's own
    nodes: one recorded without a gradient has none of its own otherwise)."""
    made = trace.made
    rows = list(made.values())
    keep, read, known = reached(np.fromiter(made, np.int64, len(rows)), [r[2] for r in rows], outs)
    if keep is not None:
        rows = [rows[i] for i in keep.tolist()]
    seen: set[int] = set()
    node_args = []
    for i, a in enumerate(flat):
        if id(a) not in seen:
            seen.add(id(a))
            node_args.append(i)
    leaves: list[Node] = []
    constants: list[Node] = []
    inside = trace.inside
    for p in read:
        if id(p) not in seen:
            (constants if id(p) in inside else leaves).append(p)
    for n, op, parents, params in rows:
        n.op, n.parents, n.params = op, parents, params
    inputs = [*(flat[i] for i in node_args), *leaves]
    order = [*inputs, *constants, *(row[0] for row in rows)]
    return order, inputs, node_args, leaves, known


class _ScalarView:
    """A scalar program as an entry runs it: handed the parents' numbers on each call."""

    kind = Value

    def __init__(self, scalar: Any, node_args: list[int]) -> None:
        self.scalar = scalar
        self.node_args = node_args

    @property
    def source(self) -> str:
        """The program's description, made when asked for (it walks every tape's entries)."""
        return self.scalar.source  # type: ignore[no-any-return]

    def forward(self, flat: Any, leaves: list[Node], saved: list[Any]) -> Any:
        values = [flat[i]._data for i in self.node_args]
        values += [leaf._data for leaf in leaves]
        outs, state = self.scalar.forward(values)
        saved.append(state)
        return outs


def _scalar_backward(scalar: Any, k: int) -> Any:
    def backward(g: Any, saved: list[Any], flat: Any, leaves: Any) -> tuple[Any, ...]:
        return tuple(scalar.backward_output(saved[0], k, g))

    return backward


def describe_output(k: int, got: Any, want: Any) -> str:
    """What differs between the compiled output k and the eager one, for the self-check."""
    if isinstance(want, Node) and isinstance(got, Node):
        a, b = got._data, want._data
        if isinstance(a, float) and isinstance(b, float):
            return f"output {k}: {a!r} compiled, {b!r} eager"
        if a.shape != b.shape:
            return f"output {k}: shape {a.shape} compiled, {b.shape} eager"
        if a.dtype != b.dtype:
            return f"output {k}: dtype {a.dtype} compiled, {b.dtype} eager"
        diff = np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0)
        return f"output {k}: largest difference {diff!r}" + (
            "" if math.isfinite(diff) else " (a NaN or infinity in one of them)"
        )
    return f"output {k}: a {type(got).__name__} compiled, a {type(want).__name__} eager"
