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

    def __init__(self, op: Any, depth: int, nodes: list[int], params: Any, needs: Any) -> None:
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
        elif len(cols) == 1 and not params:
            v[self.slots] = [fwd(fm, x) for x in cols[0]]
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
            v[o] = op.forward(fm, *[item(i) for i in ins], *params)

    def backward(self, v: np.ndarray, e: np.ndarray) -> None:
        item, use = v.item, e.item
        for op, o, ins, params, extra, uses, first in self.entries:
            g = use(uses[0])
            for j in uses[1:]:
                g += use(j)  # in the engine's order, as it adds them
            xs = [item(i) for i in ins]
            for d in _float_backward(op, g, item(o), xs, params, extra):
                e[first] = d
                first += 1


def _float_backward(op: Any, g: float, out: float, xs: list, params: Any, extra: dict) -> list:
    """The op's rule on floats, its errors said as the engine's pass says them; None as -0.0."""
    try:
        grads = op.backward(FloatMath, g, out, *xs, *params, **extra)
    except (ZeroDivisionError, OverflowError) as err:
        at = ", ".join(repr(x) for x in xs)
        raise ArithmeticError(f"the backward of {op.name} at ({at}) is infinite: {err}") from None
    _check_count(op, grads, len(xs))
    return [-0.0 if d is None else d for d in grads]  # -0.0 + d is d: a use that sends nothing


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
        with np.errstate(all="ignore"):
            for step in self.backward_steps:
                step.backward(saved, e)
        grads = [0.0] * self.n_inputs
        if self.input_order:
            found = _gather(e, self.input_gather, len(self.input_order)).tolist()
            for q, d in zip(self.input_order, found, strict=True):
                grads[q] = d
        return grads

    @property
    def source(self) -> str:
        """The program as a learner reads it: one line a batch, forward then backward."""
        return _describe(self)


# --- building the program ----------------------------------------------------------------------
def build_scalar_program(
    order: list[Node], inputs: list[Node], outputs: list[Node]
) -> ScalarProgram:
    """Compile a graph of Values into batches.

    ``order``: the graph's nodes in topological order, leaves included; ``inputs``: the leaves
    whose values the program takes, in order (every other leaf is a constant, its value read
    now; an input missing from ``order`` is one no output uses); ``outputs``: the nodes whose
    values it returns. Raises ValueError for an output or a parent missing from ``order``, an
    input given twice or not a leaf; TypeError naming the op for a node that does not hold a
    float (a Tensor op) or whose params cannot be compared.
    """
    # The build makes no reference cycles: the collector would only walk the graph, again and
    # again as the lists made here pile up.
    with cycle_collector_paused():
        return _build(order, inputs, outputs)


def _build(order: list[Node], inputs: list[Node], outputs: list[Node]) -> ScalarProgram:
    pos = {id(node): i for i, node in enumerate(order)}
    for x in inputs:
        if x.op is not None:
            raise ValueError(f"an input must be a leaf; this one was made by {x.op.name}")
        if id(x) not in pos:  # an input no output uses: its value is not read, its gradient 0
            pos[id(x)] = len(order)
            order = [*order, x]
    in_idx = [pos[id(x)] for x in inputs]
    if len(set(in_idx)) != len(in_idx):
        raise ValueError("an input is given twice: each leaf can be one input only")
    out_idx = [_index(pos, x, "output") for x in outputs]
    parents, req, groups, consts = _scan(order, pos, set(in_idx))
    prog = ScalarProgram(len(order), in_idx, consts, [order[i]._data for i in consts])
    groups = _by_depth(groups)
    prog.forward_steps = _forward_steps(order, groups, parents)
    prog.out_slots = np.array(out_idx, np.intp)
    uses = _uses(parents, req, out_idx)
    where, tape_of = _backward_steps(prog, order, groups, parents, req, uses, len(out_idx))
    cons = _visit(where, tape_of, order, parents, req, uses, out_idx, in_idx)
    for step in prog.backward_steps:
        if isinstance(step, _Batch):
            step.gather = _gathers(step.nodes, cons)
    live_inputs = [q for q, i in enumerate(in_idx) if uses[i]]
    prog.input_order = sorted(live_inputs, key=lambda q: -uses[in_idx[q]])
    prog.input_gather = _gathers([in_idx[q] for q in prog.input_order], cons)
    return prog


def _index(pos: dict[int, int], x: Node, what: str) -> int:
    i = pos.get(id(x))
    if i is None:
        raise ValueError(f"an {what} ({type(x).__name__} {x.label!r}) is not in the order given")
    return i


def _scan(order: list[Node], pos: dict[int, int], is_input: set[int]) -> tuple[Any, ...]:
    """Each node's parents (as indices in ``order``, which are also its value's slot) and
    whether it depends on an input; the groups of computed nodes by (depth, op, arity, params)
    (a node's depth: one more than its deepest parent's); the constant leaves."""
    n = len(order)
    parents: list[tuple[int, ...]] = [()] * n
    depth, req = [0] * n, [False] * n
    groups: dict[tuple[Any, ...], list[int]] = {}
    consts = []
    at, get, needs = pos.__getitem__, depth.__getitem__, req.__getitem__
    for i, node in enumerate(order):
        op = node.op
        if op is None:
            if i in is_input:
                req[i] = True
            else:
                consts.append(i)
            continue
        try:
            nodes = node.parents
            if len(nodes) == 1:  # the common arities spelled out: this loop sees every node
                j = at(id(nodes[0]))
                parents[i], d, req[i] = (j,), depth[j], req[j]
            elif len(nodes) == 2:
                j, k = at(id(nodes[0])), at(id(nodes[1]))
                parents[i], d, req[i] = (j, k), max(depth[j], depth[k]), req[j] or req[k]
            else:
                ps = parents[i] = tuple([at(id(p)) for p in nodes])
                d, req[i] = max(map(get, ps)), any(map(needs, ps))
        except KeyError:
            raise ValueError(f"a parent of a {op.name} node is not in the order given") from None
        if node._data.__class__ is not float:
            raise TypeError(
                f"op {op.name} holds a {type(node._data).__name__}, not a float: a scalar "
                "program runs Value ops only"
            )
        d = depth[i] = d + 1
        key = (d, op, len(nodes), None if op in _ARRAY_PARAMS else node.params)
        # A batch is a group that is large enough; a group is keyed by what its rule is run with
        try:
            group = groups.get(key)
        except TypeError:
            raise TypeError(
                f"op {op.name} has params that cannot be compared: {node.params!r:.60}"
            ) from None
        if group is None:
            groups[key] = [i]
        else:
            group.append(i)
    return parents, req, groups, consts


def _by_depth(groups: dict[tuple[Any, ...], list[int]]) -> list[tuple[Any, list[int]]]:
    buckets: dict[int, list[tuple[Any, list[int]]]] = {}
    for item in groups.items():
        buckets.setdefault(item[0][0], []).append(item)
    return [item for d in sorted(buckets) for item in buckets[d]]


def _forward_steps(order: list[Node], groups: list, parents: list) -> list[_Batch | _Tape]:
    """A batch for each group large enough for arrays; the others, in order, on tapes."""
    steps: list[_Batch | _Tape] = []
    for (depth, op, _, params), nodes in groups:
        if len(nodes) >= TAPE_BELOW:
            batch = _Batch(op, depth, nodes, params, None)
            _fill(batch, order, parents)
            batch.vector = op in _ARRAY_FORWARD
            steps.append(batch)
            continue
        if not steps or steps[-1].__class__ is not _Tape:
            steps.append(_Tape(depth))
        tape: Any = steps[-1]
        tape.depths[1] = depth
        if len(nodes) == 1:
            i = nodes[0]
            tape.entries.append((op, parents[i], order[i].params, i))
        else:
            tape.entries += [(op, parents[i], order[i].params, i) for i in nodes]
    return steps


def _fill(batch: _Batch, order: list[Node], parents: list) -> None:
    nodes, op = batch.nodes, batch.op
    batch.slots = np.array(nodes, np.intp)
    arity = len(parents[nodes[0]])
    batch.ins = [np.array([parents[i][k] for i in nodes], np.intp) for k in range(arity)]
    if op in _ARRAY_PARAMS:
        batch.params = (np.array([order[i].params[0] for i in nodes]),)
    elif batch.params is None:
        batch.params = ()


def _uses(parents: list, req: list, out_idx: list[int]) -> list[int]:
    """How many uses each node has on the way to an output, the seeds counted (as
    engine.toposort counts them). Nodes come after their inputs in ``order``, so walking it
    backwards meets all of a node's users before the node."""
    uses = [0] * len(parents)
    for i in out_idx:
        if req[i]:
            uses[i] += 1
    for i in range(len(parents) - 1, -1, -1):
        if uses[i]:
            for j in parents[i]:
                if req[j]:
                    uses[j] += 1
    return uses


def _backward_steps(
    prog: ScalarProgram, order: list, groups: list, parents: list, req: list, uses: list,
    n_out: int,
) -> tuple[list[Any], list[Any]]:  # fmt: skip
    """The batches and tapes of the nodes some output uses, deepest first. Returns where each
    node's edges are (the r-th of a batch's m nodes sends its k-th input's gradient to edge
    ``first + k * m + r``; the first edges hold the seeds) and the tape of each taped node."""
    where: list[Any] = [None] * len(parents)
    tape_of: list[Any] = [None] * len(parents)
    base, steps = n_out, prog.backward_steps
    for (depth, op, arity, params), nodes in reversed(groups):
        if len(nodes) < TAPE_BELOW:  # _visit writes the entries, with their needs_grad
            if not steps or steps[-1].__class__ is not _Tape:
                steps.append(_Tape(depth))
            tape: Any = steps[-1]
            tape.depths[0] = depth
            for i in nodes:
                if uses[i]:
                    tape_of[i] = tape
                    where[i] = (base, 0, 1)
                    base += arity
            continue
        split: dict[Any, list[int]] = {}
        for i in nodes:  # needs_grad is part of what the rule is called with
            if uses[i]:
                needs = tuple([req[j] for j in parents[i]]) if op.takes_needs_grad else None
                split.setdefault(needs, []).append(i)
        for needs, live in split.items():
            live.sort(key=lambda i: -uses[i])
            batch = _Batch(op, depth, live, None if op in _ARRAY_PARAMS else params, needs)
            _fill(batch, order, parents)
            batch.vector, batch.first = op in _ARRAY_BACKWARD and len(live) >= TAPE_BELOW, base
            steps.append(batch)
            for r, i in enumerate(live):
                where[i] = (base, r, len(live))
            base += arity * len(live)
    prog.n_edges = base
    return where, tape_of


def _visit(
    where: list, tape_of: list, order: list, parents: list, req: list, uses: list,
    out_idx: list[int], in_idx: list[int],
) -> list[Any]:  # fmt: skip
    """Walk the nodes in the order of the engine's backward pass (engine.toposort's, from a root
    whose parents are the outputs) and list each node's uses in that order, the order the engine
    adds their gradients in. A node's uses are all listed when the walk reaches it: then its
    tape entry is written, so a tape runs in the engine's order too. Returns the uses."""
    cons: list[Any] = [[] if u else None for u in uses]
    left = uses[:]
    ready = []
    for j, i in enumerate(out_idx):
        if req[i]:
            cons[i].append(j)
            if parents[i]:
                left[i] -= 1
                if left[i] == 0:
                    ready.append(i)
    while ready:
        i = ready.pop()
        b, r, m = where[i]
        ps = parents[i]
        for k, p in enumerate(ps):
            if req[p]:
                cons[p].append(b + k * m + r)
                if parents[p]:
                    left[p] -= 1
                    if left[p] == 0:
                        ready.append(p)
        tape = tape_of[i]
        if tape is not None:
            node, op = order[i], order[i].op
            extra = {"needs_grad": tuple([req[p] for p in ps])} if op.takes_needs_grad else {}
            tape.entries.append((op, i, ps, node.params, extra, cons[i], b))
    return cons


def _gathers(nodes: list[int], cons: list[Any]) -> tuple[list, list]:
    """How ``_gather`` sums the uses of ``nodes`` (sorted, most uses first): a node with many
    uses alone (one cumsum), the rest a column at a time; the cut is where that costs least
    (a column and a cumsum cost alike; a cumsum grows a little with its length)."""
    counts = [len(cons[i]) for i in nodes]
    best, cut, cost = float(counts[0] if counts else 0), 0, 0.0
    for w, c in enumerate(counts):
        cost += 1.0 + c / 50
        rest = counts[w + 1] if w + 1 < len(counts) else 0
        if cost + rest < best:
            best, cut = cost + rest, w + 1
    wide = [np.array(cons[i], np.intp) for i in nodes[:cut]]
    narrow = nodes[cut:]
    columns = []
    for j in range(counts[cut] if cut < len(counts) else 0):
        columns.append(np.array([cons[i][j] for i in narrow if len(cons[i]) > j], np.intp))
    return wide, columns


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
        lines.append(f"v[constants] = {n_const:,} constants")
    lines.append("# forward")
    lines += _lines(prog.forward_steps, "v[out] = {}.forward(v[ins])")
    lines.append("# backward")
    lines += _lines(prog.backward_steps, "e[ins] = {}.backward(g, v[out], v[ins])")
    lines.append("input gradients = g of the inputs")
    return "\n".join(lines) + "\n"


def _lines(steps: list[_Batch | _Tape], form: str) -> list[str]:
    lines: list[str] = []
    last, repeats = None, 0
    for step in steps:
        if isinstance(step, _Tape):
            ops: dict[str, int] = {}
            for entry in step.entries:
                ops[entry[0].name] = ops.get(entry[0].name, 0) + 1
            low, high = sorted(step.depths)
            counts = ", ".join(f"{name} x {n:,}" for name, n in ops.items())
            lines.append(
                f"tape: {len(step.entries):,} nodes one by one, depths {low:,}-{high:,}: {counts}"
            )
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
