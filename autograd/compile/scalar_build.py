"""The passes that turn a Value graph into scalar.py's batches and tapes.

The graph is read once into integer arrays (scalar_graph.py); grouping, edge numbering and the
order each node's gradients are added in are NumPy work on those arrays, so the cost per node
is about the same whatever the graph's shape.
"""

from __future__ import annotations

from functools import partial
from itertools import pairwise
from typing import Any

import numpy as np

from ..engine import Node, cycle_collector_paused
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
from .scalar_graph import (
    _NONE,
    Known,
    _check_floats,
    _depths,
    _engine_order,
    _Graph,
    _locate,
    _uses,
)


def build(
    order: list[Node], inputs: list[Node], outputs: list[Node], known: Known | None = None
) -> ScalarProgram:
    """``scalar.build_scalar_program``'s work (its docstring says what it takes and raises).
    ``known``: the parents of the nodes at the end of ``order``, as ``reached`` read them (the
    nodes before them are leaves); else they are read here."""
    if len({id(x) for x in inputs}) != len(inputs):
        raise ValueError("an input is given twice: each leaf can be one input only")
    if known is None:
        ids = np.fromiter(map(id, order), np.int64, len(order))
    else:
        lead = len(order) - len(known.arity)
        ids = np.concatenate((np.fromiter(map(id, order[:lead]), np.int64, lead), known.ids))
    order = list(order)
    in_idx = _locate(ids, np.fromiter(map(id, inputs), np.int64, len(inputs))).tolist()
    if known is not None and min(in_idx, default=0) < 0:  # an input to append: read it all
        return build(order, inputs, outputs)
    for q, x in enumerate(inputs):
        if in_idx[q] < 0:  # an input no output uses: its value is not read, its gradient 0
            in_idx[q] = len(order)
            order.append(x)
            ids = np.append(ids, id(x))
        elif x.op is not None:
            # An input with a history of its own (a compiled function's argument computed
            # before the call) is read as a number: the graph is cut there, as at a leaf. A leaf
            # of its value takes its place; its users still find it by the input's id.
            order[in_idx[q]] = Value(x._data, requires_grad=True)
    if len(set(in_idx)) != len(in_idx):
        raise ValueError("an input is given twice: each leaf can be one input only")
    out_idx = _locate(ids, np.fromiter(map(id, outputs), np.int64, len(outputs))).tolist()
    for k, i in enumerate(out_idx):
        if i < 0:
            x = outputs[k]
            raise ValueError(
                f"an output ({type(x).__name__} {x.label!r}) is not in the order given"
            )
    g = _Graph(order, ids, known)
    values = [node._data for node in order]
    _check_floats(g, values)
    depth, req = _depths(g, in_idx)
    is_input = np.zeros(g.n, bool)
    is_input[in_idx] = True
    consts = np.flatnonzero((g.arity == 0) & ~is_input).tolist()
    prog = ScalarProgram(g.n, in_idx, consts, [values[i] for i in consts])
    groups = _group(g, depth)
    prog.forward_steps = _forward_steps(g, groups)
    prog.out_slots = np.array(out_idx, np.intp)
    _backward_part(prog, g, groups, req, in_idx, out_idx)
    if len(out_idx) > 1:  # the pass from one output alone, made when first asked for
        prog.backward_for = partial(_output_part, prog, g, groups, req, in_idx, out_idx)
    return prog


def _backward_part(
    prog: ScalarProgram, g: _Graph, groups: list, req: np.ndarray, in_idx: list[int],
    out_idx: list[int],
) -> None:  # fmt: skip
    """The backward of the outputs ``out_idx`` (their seeds the first edges), into ``prog``."""
    uses = _uses(g, req, out_idx)
    tapes = _backward_steps(prog, g, groups, req, uses, len(out_idx))
    rank = _engine_order(g, req, uses, out_idx)
    cstart, cslots = _contributions(g, req, uses, rank, out_idx)
    _set_gathers(prog.backward_steps, g, uses, cstart, cslots)
    _tape_entries(g, tapes, req, rank, cstart, cslots, uses)
    in_arr = np.array(in_idx, np.intp)
    live = np.flatnonzero(uses[in_arr] > 0)
    live = live[np.argsort(-uses[in_arr[live]], kind="stable")]
    prog.input_order = live.tolist()
    prog.input_gather = _gathers(in_arr[live], uses, cstart, cslots)


def _output_part(
    prog: ScalarProgram, g: _Graph, groups: list, req: np.ndarray, in_idx: list[int],
    out_idx: list[int], k: int,
) -> ScalarProgram:  # fmt: skip
    """A program whose backward is the engine's pass from output k alone (it shares ``prog``'s
    forward state: the same slots)."""
    part = ScalarProgram(prog.n_values, in_idx, [], [])
    part.out_slots = prog.out_slots[k : k + 1]
    with cycle_collector_paused():
        _backward_part(part, g, groups, req, in_idx, [out_idx[k]])
    return part


def _group(g: _Graph, depth: np.ndarray) -> list[tuple[Any, ...]]:
    """The computed nodes in the order they run, as (depth, op, arity, params, nodes): a run
    of depths each with too few nodes for a batch goes whole on one tape, as (lo, None, hi,
    None, nodes in order); at a wide depth, one group per op, arity and params."""
    comp = np.flatnonzero(g.arity)
    if not len(comp):
        return []
    d = depth[comp]
    width = np.bincount(d)
    narrow = width < TAPE_BELOW
    narrow[0] = False
    first = narrow & ~np.concatenate(([False], narrow[:-1]))
    run_of = np.maximum.accumulate(np.where(first, np.arange(len(width)), 0)) * narrow
    lo = np.where(narrow[d], run_of[d], d)
    in_run = narrow[d]
    code = np.where(in_run, -1, g.code[comp])
    arity = np.where(in_run, -1, g.arity[comp])
    pkey = np.where(in_run, -1, g.pkey[comp])
    sort = np.lexsort((comp, pkey, arity, code, lo))
    keys = np.stack([lo[sort], code[sort], arity[sort], pkey[sort]])
    cuts = np.flatnonzero((keys[:, 1:] != keys[:, :-1]).any(axis=0)) + 1
    bounds = [0, *cuts.tolist(), len(sort)]
    nodes_sorted, d_sorted = comp[sort], d[sort]
    groups: list[tuple[Any, ...]] = []
    for a, b in pairwise(bounds):
        nodes = nodes_sorted[a:b]
        i = int(nodes[0])
        if code[sort[a]] == -1:
            groups.append((int(lo[sort[a]]), None, int(d_sorted[a:b].max()), None, nodes))
        else:
            params = None if g.pkey[i] == _NONE else g.params[i]
            groups.append((int(d_sorted[a]), g.ops[i], int(g.arity[i]), params, nodes))
    return groups


def _forward_steps(g: _Graph, groups: list[tuple[Any, ...]]) -> list[_Batch | _Tape]:
    """A batch for each group large enough for arrays; the others, in order, on tapes."""
    steps: list[_Batch | _Tape] = []
    for depth, op, hi, group_params, nodes in groups:
        if op is None:  # a run of narrow depths
            tape = _Tape(depth)
            tape.depths[1] = hi
            tape.entries = _forward_entries(g, nodes)
            steps.append(tape)
            continue
        if len(nodes) >= TAPE_BELOW:
            batch = _Batch(op, depth, nodes, group_params, None)
            _fill(batch, g)
            batch.vector = op in _ARRAY_FORWARD
            steps.append(batch)
            continue
        if not steps or steps[-1].__class__ is not _Tape:
            steps.append(_Tape(depth))
        last: Any = steps[-1]
        last.depths[1] = depth
        last.entries += _forward_entries(g, nodes)
    return steps


def _forward_entries(g: _Graph, nodes: np.ndarray) -> list[tuple[Any, ...]]:
    at = nodes.tolist()
    return list(
        zip(
            map(g.ops.__getitem__, at),
            map(g.pt.__getitem__, at),
            map(g.params.__getitem__, at),
            at,
            strict=True,
        )
    )


def _fill(batch: _Batch, g: _Graph) -> None:
    nodes, op = batch.nodes, batch.op
    batch.slots = nodes
    arity = int(g.arity[nodes[0]])
    if arity <= 2:
        batch.ins = [g.first_parent[nodes], g.second_parent[nodes]][:arity]
    else:
        starts = g.start[nodes]
        batch.ins = [g.par[starts + k] for k in range(arity)]
    if op in _ARRAY_PARAMS:
        batch.params = (g.numbers()[nodes],)
    elif batch.params is None:
        batch.params = ()


def _backward_steps(
    prog: ScalarProgram, g: _Graph, groups: list, req: np.ndarray, uses: np.ndarray, n_out: int
) -> list[tuple[_Tape, np.ndarray]]:
    """The batches and tapes of the nodes some output uses, deepest first; the first edges
    hold the seeds. Sets where each node's edges are: the r-th of a batch's m nodes sends its
    k-th input's gradient to edge ``first + k * m + r`` (``g.first``, ``g.stride``, ``g.row``).
    Returns each tape with its nodes (their entries are written once their order is known)."""
    rev = groups[::-1]
    wide = [op is not None and len(nodes) >= TAPE_BELOW for _, op, _, _, nodes in rev]
    batches = _live_batches(g, [rev[k][4] for k, w in enumerate(wide) if w], req, uses)
    sn, ranges = batches
    m = np.array([b - a for _, a, b in ranges], np.intp)
    edges = m * g.arity[sn[[a for _, a, _ in ranges]]] if ranges else m
    firsts = n_out + np.cumsum(edges) - edges
    g.first[sn] = np.repeat(firsts, m)
    g.stride[sn] = np.repeat(m, m)
    g.row[sn] = np.arange(len(sn)) - np.repeat([a for _, a, _ in ranges], m).astype(np.intp)
    base = n_out + int(edges.sum())
    narrow = [rev[k][4] for k, w in enumerate(wide) if not w]
    tn = np.concatenate(narrow) if narrow else np.zeros(0, np.intp)
    tn = tn[uses[tn] > 0]
    tn_edges = g.arity[tn]
    g.first[tn] = base + np.cumsum(tn_edges) - tn_edges
    prog.n_edges = base + int(tn_edges.sum())
    live_in = np.cumsum([0, *[int((uses[nodes] > 0).sum()) for nodes in narrow]]).tolist()
    steps, tapes = prog.backward_steps, []
    j = n = 0  # the next batch, the next narrow group
    for (depth, op, arity, params, nodes), w in zip(rev, wide, strict=True):
        if w:
            while j < len(ranges) and ranges[j][0] is nodes:
                _, a, b = ranges[j]
                batch = _backward_batch(g, op, depth, params, sn[a:b], req, int(firsts[j]))
                batch.gather = (a, b)  # where its nodes are in sn, until the gathers are made
                steps.append(batch)
                j += 1
            continue
        if op is None or not steps or steps[-1].__class__ is not _Tape:
            steps.append(_Tape(arity if op is None else depth))  # a run: from its deepest
            tapes.append([steps[-1], live_in[n], 0])
        tapes[-1][0].depths[0] = depth
        n += 1
        tapes[-1][2] = live_in[n]
    g.batched = sn
    return [(tape, tn[a:b]) for tape, a, b in tapes]


def _set_gathers(
    steps: list[_Batch | _Tape], g: _Graph, uses: np.ndarray, start: np.ndarray, slots: Any
) -> None:
    """Each batch's gather (see ``_gathers``); a batch whose nodes have one or two uses each,
    most batches, from two arrays made for all of them at once."""
    sn = g.batched
    if not len(sn):
        return
    count, at = uses[sn], start[sn]
    once = slots[at]
    twice = slots[np.minimum(at + 1, len(slots) - 1)]
    pairs = np.concatenate(([0], np.cumsum(count == 2))).tolist()
    count_list = count.tolist()
    for step in steps:
        if step.__class__ is _Batch:
            a, b = step.gather  # type: ignore[union-attr]
            if count_list[a] > 2:
                step.gather = _gathers(sn[a:b], uses, start, slots)  # type: ignore[union-attr]
                continue
            n = pairs[b] - pairs[a]  # the nodes with two uses: first, as most uses come first
            step.gather = ([], [once[a:b], twice[a : a + n]] if n else [once[a:b]])  # type: ignore[union-attr]


def _live_batches(
    g: _Graph, groups: list[np.ndarray], req: np.ndarray, uses: np.ndarray
) -> tuple[np.ndarray, list[tuple[np.ndarray, int, int]]]:
    """The nodes of the batch groups that some output uses, in one array: by group, by what
    needs a gradient among their inputs (when the op is told), most uses first. Returns it and
    each batch as (its group, start, end)."""
    if not groups:
        return np.zeros(0, np.intp), []
    nodes = np.concatenate(groups)
    gid = np.repeat(np.arange(len(groups)), [len(x) for x in groups])
    live = uses[nodes] > 0
    nodes, gid = nodes[live], gid[live]
    if not len(nodes):  # no gradient reaches any of them
        return nodes, []
    takes = np.array([getattr(op, "takes_needs_grad", False) for op in g.op_of], bool)
    bits = np.zeros(len(nodes), np.intp)
    told = np.flatnonzero(takes[g.code[nodes]])
    if len(told):  # needs_grad is part of what the rule is called with
        at = g.start[nodes[told]]
        for k in range(int(g.arity[nodes[told]].max())):
            bits[told] |= req[g.par[np.minimum(at + k, len(g.par) - 1)]].astype(np.intp) << k
    sort = np.lexsort((nodes, -uses[nodes], bits, gid))
    nodes, gid, bits = nodes[sort], gid[sort], bits[sort]
    cut = np.flatnonzero((gid[1:] != gid[:-1]) | (bits[1:] != bits[:-1])) + 1
    bounds = [0, *cut.tolist(), len(nodes)]
    starts = bounds[:-1]
    owners = gid[starts].tolist()
    return nodes, [
        (groups[o], a, b) for o, a, b in zip(owners, starts, bounds[1:], strict=True) if b > a
    ]


def _backward_batch(
    g: _Graph, op: Any, depth: int, params: Any, part: np.ndarray, req: np.ndarray, first: int
) -> _Batch:
    needs = tuple(req[list(g.pt[int(part[0])])].tolist()) if op.takes_needs_grad else None
    batch = _Batch(op, depth, part, None if op in _ARRAY_PARAMS else params, needs)
    _fill(batch, g)
    batch.vector = op in _ARRAY_BACKWARD or (op is Pow and batch.params[0] in _ARITHMETIC_POWERS)
    batch.first = first
    return batch


def _contributions(
    g: _Graph, req: np.ndarray, uses: np.ndarray, rank: np.ndarray, out_idx: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Each node's uses as edges, in the order the engine adds their gradients: the seeds
    first, then by the user's place in the engine's order and the input's position. Node i's
    are ``slots[start[i] : start[i] + uses[i]]``."""
    user = g.user
    live = req[g.par] & (uses[user] > 0)
    u, p = user[live], g.par[live]
    k = np.arange(len(user))[live] - g.start[u]
    slot = g.first[u] + k * g.stride[u] + g.row[u]
    seeds = [(i, j) for j, i in enumerate(out_idx) if req[i]]
    sp = np.array([i for i, _ in seeds], np.intp)
    sj = np.array([j for _, j in seeds], np.intp)
    p = np.concatenate((sp, p))
    when = np.concatenate((np.full(len(sp), -1, np.intp), rank[u]))
    k = np.concatenate((sj, k))
    slot = np.concatenate((sj, slot))
    slots = slot[np.lexsort((k, when, p))]
    start = np.zeros(g.n, np.intp)
    np.cumsum(uses[:-1], out=start[1:])
    return start, slots


def _gathers(nodes: np.ndarray, uses: np.ndarray, start: np.ndarray, slots: np.ndarray) -> Any:
    """How ``_gather`` sums the uses of ``nodes`` (sorted, most uses first): a node with many
    uses alone (one cumsum), the rest a column at a time; the cut is where that costs least
    (a column and a cumsum cost alike; a cumsum grows a little with its length)."""
    counts = uses[nodes]
    if not len(counts):
        return [], []
    if counts[0] <= 2:  # no cut costs less than two columns: most batches
        at = start[nodes]
        twice = int(np.count_nonzero(counts == 2))
        return [], [slots[at]] + ([slots[at[:twice] + 1]] if twice else [])
    total = np.cumsum(1.0 + counts / 50) + np.append(counts[1:], 0)
    w = int(np.argmin(total))
    cut = w + 1 if total[w] < counts[0] else 0
    wide = [slots[start[i] : start[i] + uses[i]] for i in nodes[:cut].tolist()]
    narrow, left = nodes[cut:], counts[cut:]
    if not len(narrow):
        return wide, []
    most = int(left[0])
    js = np.arange(most)
    table = slots[np.minimum(js[:, None] + start[narrow], len(slots) - 1)]  # row j: j-th uses
    # the nodes with more than j uses: a prefix, as most uses come first
    prefix = (len(left) - np.searchsorted(left[::-1], js, side="right")).tolist()
    return wide, [table[j, :n] for j, n in enumerate(prefix)]


def _tape_entries(
    g: _Graph, tapes: list, req: np.ndarray, rank: np.ndarray, cstart: np.ndarray,
    cslots: np.ndarray, uses: np.ndarray,
) -> None:  # fmt: skip
    """Each tape's backward entries, in the order of the engine's backward pass: a node's
    gradient is complete when the pass reaches it."""
    ops, params, pt = g.ops, g.params, g.pt
    needs = req.tolist()
    slots = cslots.tolist()
    plain: dict[str, Any] = {}
    told = np.array([getattr(op, "takes_needs_grad", False) for op in g.op_of], bool)
    for tape, nodes in tapes:
        nodes = nodes[np.argsort(rank[nodes], kind="stable")]
        at = nodes.tolist()
        first = cstart[nodes]
        uses_of: list[Any] = list(zip(cslots[first].tolist()))  # one use: most nodes
        for r in np.flatnonzero(uses[nodes] > 1).tolist():
            c = int(first[r])
            uses_of[r] = slots[c : c + int(uses[at[r]])]
        extras = [plain] * len(at)
        for r in np.flatnonzero(told[g.code[nodes]]).tolist():
            extras[r] = {"needs_grad": tuple([needs[p] for p in pt[at[r]]])}
        tape.entries = list(
            zip(
                map(ops.__getitem__, at),
                at,
                map(pt.__getitem__, at),
                map(params.__getitem__, at),
                extras,
                uses_of,
                g.first[nodes].tolist(),
                strict=True,
            )
        )
