"""A scalar (Value) trace as a program of batches: the nodes of one op at one depth run together.

Straight-line code costs compile time in proportion to the user's code, and a fold of repeated
blocks fits only the shapes it was written for. Here a trace of any shape becomes a list of
batches (DyNet's autobatching): a node's depth is one more than its deepest input's, and the
nodes of one op (and one set of params) at one depth need nothing from each other, so they run
together, on NumPy arrays where that gives the engine's bits, else one by one with the engine's
own float math. Building it is a few passes over the nodes, whatever their structure.

Every op runs its own rules from ops.py (on arrays through ArrayMath, or on floats through
FloatMath, as the engine does). Where NumPy's result could differ from Python's by a bit
(``math.tanh`` against ``np.tanh``, ReLU of -0.0, ``**``) or where the float rule raises (a
division by zero, the log of a negative number), the batch runs one node at a time. The backward
sums each node's gradients in the order the engine's backward pass does, so the results are
bit for bit the engine's: ``tolerance`` is 0.0.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import partial
from itertools import repeat
from typing import Any

import numpy as np

from ..engine import ArrayMath, FloatMath, Node, cycle_collector_paused
from ..ops import (
    Add,
    AddNumber,
    Div,
    DivNumber,
    Dot,
    Exp,
    Log,
    Mul,
    MulNumber,
    Neg,
    NumberDiv,
    NumberSub,
    ReLU,
    Sigmoid,
    Sub,
    SumValues,
    Tanh,
)

__all__ = ["ScalarProgram", "build_scalar_program"]


class _Arrays(ArrayMath):
    """ArrayMath with the float namespace's ``fsum``: ``sum`` of arrays adds them one after the
    other from 0, as ``sum`` of floats does (up to Python 3.11), so each element gets its bits."""

    fsum = staticmethod(sum)


# The ops whose array rule gives each element the bits of the float rule, and raises nowhere
# the float rule would (a division's divisor is checked for zeros first: see _DIVISOR).
_SUMS = {SumValues, Dot} if sys.version_info < (3, 12) else set()  # 3.12's sum compensates
_ARRAY_FORWARD = {Add, Sub, Mul, Neg, AddNumber, MulNumber, NumberSub, DivNumber, Div, NumberDiv}
_ARRAY_FORWARD |= _SUMS
_ARRAY_BACKWARD = _ARRAY_FORWARD | {Exp, Log, Tanh, Sigmoid, ReLU} | {SumValues, Dot}
# Pow's rule is arithmetic for these powers (g * (x * 2.0), g * 0.0); for others it calls pow.
_ARITHMETIC_POWERS = (2.0, 0.0)
# A number operand that differs from node to node is passed as an array: one batch for all.
_ARRAY_PARAMS = {AddNumber, MulNumber, DivNumber, NumberSub, NumberDiv}
# The input a division's forward divides by: the float rule raises where it is 0.
_DIVISOR = {Div: 1, NumberDiv: 0}


TAPE_BELOW = 8  # a batch of fewer nodes runs on the tape: node by node costs less than arrays


class _Batch:
    """The nodes of one op, params and depth, run together; ``ins[k]``: the slots of the values
    of their k-th inputs; ``first``: the first of the edges their inputs' gradients go to."""

    __slots__ = (
        *("depth", "first", "gather", "ins", "needs"),
        *("nodes", "op", "params", "slots", "vector"),
    )

    def __init__(self, op: Any, depth: int, nodes: Any, params: Any, needs: Any) -> None:
        self.op, self.depth, self.nodes, self.params, self.needs = op, depth, nodes, params, needs
        self.slots: Any = None  # where the nodes' values are (an index array)
        self.ins: list[np.ndarray] = []
        self.vector = False
        self.first = 0
        self.gather: Any = None

    def forward(self, v: np.ndarray) -> None:
        op, params = self.op, self.params
        if self.vector:
            args = [v[ix] for ix in self.ins]
            k = _DIVISOR.get(op)
            if k is None or args[k].all():  # a zero divisor: the float rule raises, below
                v[self.slots] = op.forward(_Arrays, *args, *params)
                return
        cols = [v[ix].tolist() for ix in self.ins]
        fwd, fm = op.forward, FloatMath
        if op in _ARRAY_PARAMS:
            v[self.slots] = [
                fwd(fm, x, c) for x, c in zip(cols[0], params[0].tolist(), strict=True)
            ]
        elif len(cols) == 1:
            v[self.slots] = list(map(partial(fwd, fm), cols[0], *[repeat(p) for p in params]))
        else:
            v[self.slots] = [fwd(fm, *xs, *params) for xs in zip(*cols, strict=True)]

    def backward(self, v: np.ndarray, e: np.ndarray) -> None:
        op, m, first = self.op, len(self.nodes), self.first
        extra = {} if self.needs is None else {"needs_grad": self.needs}
        g = _gather(e, self.gather, m)
        if self.vector:
            args = [v[ix] for ix in self.ins]
            grads = op.backward(_Arrays, g, v[self.slots], *args, *self.params, **extra)
            _check_count(op, grads, len(args))
            for k, d in enumerate(grads):
                e[first + k * m : first + (k + 1) * m] = -0.0 if d is None else d
            return
        cols = [v[ix].tolist() for ix in self.ins]
        each = self.params[0].tolist() if op in _ARRAY_PARAMS else None
        rows = []
        for r, (gr, out) in enumerate(zip(g.tolist(), v[self.slots].tolist(), strict=True)):
            xs = [c[r] for c in cols]
            params = self.params if each is None else (each[r],)
            rows.append(_float_backward(op, gr, out, xs, params, extra))
        for k in range(len(cols)):
            e[first + k * m : first + (k + 1) * m] = [row[k] for row in rows]


class _Tape:
    """Nodes run one at a time on floats: the batches too small for arrays (a deep chain is all
    tape). Forward entries: (op, input slots, params, slot), in depth order; backward entries:
    (op, slot, input slots, params, needs_grad, the edges of its uses, its first edge), in the
    order of the engine's backward pass."""

    __slots__ = ("depths", "entries")

    def __init__(self, depth: int) -> None:
        self.entries: list[tuple[Any, ...]] = []
        self.depths = [depth, depth]

    def forward(self, v: np.ndarray) -> None:
        item, fm = v.item, FloatMath
        for op, ins, params, o in self.entries:
            v[o] = op.forward(fm, *map(item, ins), *params)

    def backward(self, v: np.ndarray, e: np.ndarray) -> None:
        item, use, fm = v.item, e.item, FloatMath
        for op, o, ins, params, extra, uses, first in self.entries:
            g = use(uses[0])
            if len(uses) > 1:
                for j in uses[1:]:
                    g += use(j)  # in the engine's order, as it adds them
            xs = list(map(item, ins))
            try:  # _float_backward, written out: this loop runs once a node
                if extra:
                    grads = op.backward(fm, g, item(o), *xs, *params, **extra)
                else:
                    grads = op.backward(fm, g, item(o), *xs, *params)
            except (ZeroDivisionError, OverflowError) as err:
                raise _infinite(op, xs, err) from None
            if grads.__class__ is not tuple or len(grads) != len(xs):
                _check_count(op, grads, len(xs))
            for d in grads:
                e[first] = -0.0 if d is None else d  # -0.0 + d is d: a use sending nothing
                first += 1


def _float_backward(op: Any, g: float, out: float, xs: list, params: Any, extra: dict) -> list:
    """The op's rule on floats, its errors said as the engine's pass says them; None as -0.0."""
    try:
        grads = op.backward(FloatMath, g, out, *xs, *params, **extra)
    except (ZeroDivisionError, OverflowError) as err:
        raise _infinite(op, xs, err) from None
    _check_count(op, grads, len(xs))
    return [-0.0 if d is None else d for d in grads]  # -0.0 + d is d: a use that sends nothing


def _infinite(op: Any, xs: list, err: Exception) -> ArithmeticError:
    """The engine's words for a float rule that divided by zero or overflowed."""
    at = ", ".join(repr(x) for x in xs)
    return ArithmeticError(f"the backward of {op.name} at ({at}) is infinite: {err}")


def _check_count(op: Any, grads: Any, n: int) -> None:
    if not isinstance(grads, (tuple, list)) or len(grads) != n:
        raise TypeError(
            f"the backward of {op.name} returned {grads!r:.60}: it must return a tuple of one "
            f"gradient (or None) per input, and the op has {n} input(s)"
        )


def _gather(e: np.ndarray, gather: Any, m: int) -> np.ndarray:
    """Each node's gradient: the gradients its uses sent, added in the engine's order.

    ``wide``: per node with many uses, their edges (added one after the other by cumsum);
    ``columns[j]``: the j-th use of each other node, those with more than j uses coming first."""
    wide, columns = gather
    if wide:
        g = np.empty(m)
        for i, slots in enumerate(wide):
            g[i] = e[slots].cumsum()[-1]
        if columns:
            g[len(wide) :] = e[columns[0]]
    else:
        g = e[columns[0]]
    n = len(wide)
    for slots in columns[1:]:
        g[n : n + len(slots)] += e[slots]  # elementwise, so each node's sum keeps its order
    return g


class ScalarProgram:
    """A scalar trace compiled into batches. ``forward(values)`` takes the inputs' floats, in
    the order they were given, and returns the outputs' floats and the state the backward
    reads; ``backward(saved, seeds)`` returns d(sum(seed * output))/d(input) for each input."""

    tolerance = 0.0  # the engine's own bits: see the module's docstring

    def __init__(self, n_values: int, inputs: list[int], consts: list[int], data: list) -> None:
        self.n_values, self.n_inputs = n_values, len(inputs)
        self.input_slots = np.array(inputs, np.intp)
        self.const_slots, self.consts = np.array(consts, np.intp), np.array(data, float)
        self.forward_steps: list[_Batch | _Tape] = []
        self.backward_steps: list[_Batch | _Tape] = []
        self.out_slots: Any = None
        self.n_edges = 0
        self.input_gather: Any = None
        self.input_order: list[int] = []  # the inputs some output uses, most used first
        # with several outputs: the program of the pass from output k alone, made when asked
        self.backward_for: Any = None
        self.of_output: dict[int, ScalarProgram] = {}

    @property
    def n_ops(self) -> int:
        """How many computed nodes the program runs."""
        return self.n_values - self.n_inputs - len(self.consts)

    def forward(self, values: Sequence[float]) -> tuple[list[float], Any]:
        """The outputs' values, and the state ``backward`` needs (every node's value)."""
        if len(values) != self.n_inputs:
            raise ValueError(f"the program takes {self.n_inputs} input(s), got {len(values)}")
        v = np.empty(self.n_values)
        v[self.input_slots] = values
        v[self.const_slots] = self.consts
        with np.errstate(all="ignore"):  # floats overflow to inf silently; so do these
            for step in self.forward_steps:
                step.forward(v)
        return v[self.out_slots].tolist(), v

    def backward(self, saved: Any, seeds: Sequence[float]) -> list[float]:
        """d(sum(seed * output))/d(input) for each input (0.0 for an input no output uses)."""
        if len(seeds) != len(self.out_slots):
            raise ValueError(f"the program has {len(self.out_slots)} output(s), got {len(seeds)}")
        e = np.empty(self.n_edges)  # e[j]: the gradient one use of a node sends back to it
        e[: len(seeds)] = seeds
        grads = [0.0] * self.n_inputs
        with np.errstate(all="ignore"):
            for step in self.backward_steps:
                step.backward(saved, e)
            if self.input_order:
                found = _gather(e, self.input_gather, len(self.input_order)).tolist()
                for q, d in zip(self.input_order, found, strict=True):
                    grads[q] = d
        return grads

    def backward_output(self, saved: Any, k: int, g: float) -> list[float]:
        """g * d(output k)/d(input) for each input, as the engine's pass from output k: the
        graph only the other outputs need is not run (its rules could raise, or give a NaN as
        0 * inf, where that pass never goes)."""
        if self.backward_for is None:
            return self.backward(saved, [0.0] * k + [g] + [0.0] * (len(self.out_slots) - k - 1))
        part = self.of_output.get(k)
        if part is None:
            part = self.of_output[k] = self.backward_for(k)
        return part.backward(saved, [g])

    @property
    def source(self) -> str:
        """The program as a learner reads it: one line a batch, forward then backward."""
        return _describe(self)


# --- building the program: the passes are in scalar_build.py --------------------------------


def build_scalar_program(
    order: list[Node], inputs: list[Node], outputs: list[Node], known: Any = None
) -> ScalarProgram:
    """Compile a graph of Values into batches.

    ``order``: the graph's nodes in topological order, leaves included; ``inputs``: the nodes
    whose values the program takes, in order, leaves or not (the graph is cut at an input with a
    history of its own; every other leaf is a constant, its value read now; an input missing
    from ``order`` is one no output uses); ``outputs``: the nodes whose values it returns;
    ``known``: compile's reading of a trace's parents (``scalar_graph.reached``), so that they
    are not read twice (None: read here). Raises ValueError for an output or a parent missing
    from ``order``, an order that is not topological, or an input given twice; TypeError naming
    the op for a node that does not hold a float (a Tensor op) or whose params cannot be
    compared.
    """
    from .scalar_build import build

    # The build makes no reference cycles: the collector would only walk the graph, again and
    # again as the lists made here pile up.
    with cycle_collector_paused():
        return build(order, inputs, outputs, known)


def _describe(prog: ScalarProgram) -> str:
    """One line a batch (a run of batches alike, one line; a tape, one line), with the op's
    rule as its comment."""
    n_in, n_const = prog.n_inputs, len(prog.consts)
    lines = [
        f"# A scalar program of {prog.n_ops:,} ops. A batch is the nodes of one op at one depth",
        "# (one more than their deepest input's): they need nothing from each other, so they run",
        "# together, as NumPy arrays [NumPy] where that gives the bits of floats, else one by one",
        "# [each] with the engine's float math. Batches of fewer than "
        f"{TAPE_BELOW} nodes run on a tape,",
        "# node by node. v: every node's value (v[ins]: its inputs'); e: the gradient each use",
        "# of a node sends back; g: each node's gradient, its uses added in the engine's order.",
        f"v[inputs] = the {n_in:,} inputs",
    ]
    if n_const:
        lines.append(f"v[constants] = the {n_const:,} constant(s), read when the program was built")
    lines.append("# forward")
    lines += _lines(prog.forward_steps, "v[out] = {}.forward(v[ins])")
    lines.append("# backward")
    lines += _lines(prog.backward_steps, "e[ins] = {}.backward(g, v[out], v[ins])")
    lines.append("input gradients = g of the inputs")
    return "\n".join(lines) + "\n"


SHOWN = 60  # lines of batches and tapes shown for each pass; the rest are counted


def _lines(steps: list[_Batch | _Tape], form: str) -> list[str]:
    lines: list[str] = []
    last, repeats = None, 0
    for k, step in enumerate(steps):
        if len(lines) >= SHOWN:
            if repeats:
                lines.append(f"#   ... and {repeats:,} more batches like it")
            rest = steps[k:]
            tapes = sum(isinstance(s, _Tape) for s in rest)
            lines.append(
                f"#   ... and {len(rest) - tapes:,} more batches and {tapes:,} more tapes "
                f"({sum(_size(s) for s in rest):,} nodes)"
            )
            return lines
        if isinstance(step, _Tape):
            if repeats:
                lines.append(f"#   ... and {repeats:,} more batches like it")
            ops: dict[str, int] = {}
            for entry in step.entries:
                ops[entry[0].name] = ops.get(entry[0].name, 0) + 1
            low, high = sorted(step.depths)
            counts = ", ".join(f"{name} x {n:,}" for name, n in ops.items())
            depths = f"depth {low:,}" if low == high else f"depths {low:,}-{high:,}"
            lines.append(f"tape: {_count(len(step.entries))} one by one, {depths}: {counts}")
            last, repeats = None, 0
            continue
        op, m = step.op, len(step.nodes)
        if (op, m, step.vector) == last:
            repeats += 1
            continue
        if repeats:
            lines.append(f"#   ... and {repeats:,} more batches like it")
        last, repeats = (op, m, step.vector), 0
        rule = (op.__doc__ or op.name).strip().splitlines()[0]
        how = "NumPy" if step.vector else "each"
        call = form.format(op.name)
        lines.append(f"{call}  # depth {step.depth:,}, {m:,} nodes [{how}]: {rule}")
    if repeats:
        lines.append(f"#   ... and {repeats:,} more batches like it")
    return lines


def _size(step: _Batch | _Tape) -> int:
    return len(step.entries) if isinstance(step, _Tape) else len(step.nodes)


def _count(n: int) -> str:
    return "1 node" if n == 1 else f"{n:,} nodes"
