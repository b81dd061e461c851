"""The passes that turn a Value graph into scalar.py's batches and tapes, a few over the nodes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Node
from ..ops import Pow
from ..value import Value
from .scalar import (
    _ARITHMETIC_POWERS,
    _ARRAY_BACKWARD,
    _ARRAY_FORWARD,
    _ARRAY_PARAMS,
    TAPE_BELOW,
    ScalarProgram,
    _Batch,
    _Tape,
)


def build(order: list[Node], inputs: list[Node], outputs: list[Node]) -> ScalarProgram:
    """``scalar.build_scalar_program``'s work (its docstring says what it takes and raises)."""
    pos = {id(node): i for i, node in enumerate(order)}
    order = list(order)
    for x in inputs:
        if x.op is not None and id(x) in pos:
            # An input with a history of its own (a compiled function's argument computed
            # before the call) is read as a number: the graph is cut there, as at a leaf. A leaf
            # of its value takes its place; its parents still find it by the input's id.
            order[pos[id(x)]] = cut = Value(x._data, requires_grad=True)
            pos[id(cut)] = pos[id(x)]
        if id(x) not in pos:  # an input no output uses: its value is not read, its gradient 0
            pos[id(x)] = len(order)
            order = [*order, x]
    in_idx = [pos[id(x)] for x in inputs]
    if len(set(in_idx)) != len(in_idx):
        raise ValueError("an input is given twice: each leaf can be one input only")
    out_idx = [_index(pos, x, "output") for x in outputs]
    parents, req, depth, width, consts = _scan(order, pos, set(in_idx))
    prog = ScalarProgram(len(order), in_idx, consts, [order[i]._data for i in consts])
    groups = _group(order, depth, width)
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
    """Each node's parents (as indices in ``order``, which are also its value's slot), depth
    (one more than its deepest parent's) and whether it depends on an input; how many nodes
    each depth has; the constant leaves."""
    n = len(order)
    parents: list[tuple[int, ...]] = [()] * n
    depth, req, width = [0] * n, [False] * n, [0]
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
        if d == len(width):
            width.append(1)
        else:
            width[d] += 1
    return parents, req, depth, width, consts


def _group(order: list[Node], depth: list[int], width: list[int]) -> list[tuple[Any, list[int]]]:
    """The computed nodes in the order they run: a run of depths each with too few nodes for a
    batch goes on one tape whole, as ``((lo, None, hi, None), its nodes in order)``; at a wide
    depth, one group per (depth, op, arity, params), what the op's rule is run with."""
    run_of = [0] * len(width)  # the depth its run of narrow depths starts at; 0 if wide
    for d in range(1, len(width)):
        if width[d] < TAPE_BELOW:
            run_of[d] = run_of[d - 1] or d
    runs: dict[int, list[int]] = {}
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, node in enumerate(order):
        op = node.op
        if op is None:
            continue
        d = depth[i]
        if run_of[d]:
            runs.setdefault(run_of[d], []).append(i)
            continue
        key = (d, op, len(node.parents), None if op in _ARRAY_PARAMS else node.params)
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
    at_depth: dict[int, list[tuple[Any, list[int]]]] = {}
    for lo, nodes in runs.items():
        hi = lo
        while hi + 1 < len(width) and run_of[hi + 1] == lo:
            hi += 1
        at_depth[lo] = [((lo, None, hi, None), nodes)]
    for item in groups.items():
        at_depth.setdefault(item[0][0], []).append(item)
    return [item for d in sorted(at_depth) for item in at_depth[d]]


def _forward_steps(order: list[Node], groups: list, parents: list) -> list[_Batch | _Tape]:
    """A batch for each group large enough for arrays; the others, in order, on tapes."""
    steps: list[_Batch | _Tape] = []
    for (depth, op, hi, params), nodes in groups:
        if op is None:  # a run of narrow depths
            tape = _Tape(depth)
            tape.depths[1] = hi
            tape.entries = [(order[i].op, parents[i], order[i].params, i) for i in nodes]
            steps.append(tape)
            continue
        if len(nodes) >= TAPE_BELOW:
            batch = _Batch(op, depth, nodes, params, None)
            _fill(batch, order, parents)
            batch.vector = op in _ARRAY_FORWARD
            steps.append(batch)
            continue
        if not steps or steps[-1].__class__ is not _Tape:
            steps.append(_Tape(depth))
        last: Any = steps[-1]
        last.depths[1] = depth
        last.entries += [(op, parents[i], order[i].params, i) for i in nodes]
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
        if op is None or len(nodes) < TAPE_BELOW:  # _visit writes the entries, in its order
            if op is None or not steps or steps[-1].__class__ is not _Tape:
                steps.append(_Tape(arity if op is None else depth))  # a run: from its deepest
            tape: Any = steps[-1]
            tape.depths[0] = depth
            for i in nodes:
                if uses[i]:
                    tape_of[i] = tape
                    where[i] = (base, 0, 1)
                    base += len(parents[i])
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
            batch.vector = op in _ARRAY_BACKWARD or (
                op is Pow and batch.params[0] in _ARITHMETIC_POWERS
            )
            batch.first = base
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
    narrow, columns = nodes[cut:], []
    n = len(narrow)
    for j in range(counts[cut] if cut < len(counts) else 0):
        while counts[cut + n - 1] <= j:  # the nodes with more than j uses: a prefix
            n -= 1
        columns.append(np.array([cons[i][j] for i in narrow[:n]], np.intp))
    return wide, columns
