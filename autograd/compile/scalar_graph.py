"""A Value graph read into integer arrays, and what the scalar program's build needs of it
that one node cannot know without the nodes before it: depths, uses, the engine's order.

Each node's op, parents and params become numbers (``_Graph``); what is left to Python loops is
a few list operations a node, so the cost per node is about the same whatever the graph's shape.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np

from ..engine import Node
from .scalar import _ARRAY_PARAMS

_NONE = -1  # the params key of an op whose number operand is passed as an array


class _Graph:
    """The graph as arrays: node i's op is ``ops[i]`` (code ``code[i]``), its parents are
    ``par[start[i] : start[i] + arity[i]]`` (indices of nodes before it), its params
    ``params[i]`` (key ``pkey[i]``: equal params, equal keys)."""

    def __init__(self, order: list[Node], ids: np.ndarray, known: Known | None) -> None:
        n = self.n = len(order)
        self.ops = [node.op for node in order]
        self.params = [node.params for node in order]
        if known is None:
            plists = [node.parents for node in order]
            self.arity = np.fromiter(map(len, plists), np.intp, n)
            pids = np.fromiter(map(id, chain.from_iterable(plists)), np.int64)
            self.par = _locate(ids, pids)
        else:  # leaves first, then the trace's nodes, read already (see ``reached``)
            lead = n - len(known.arity)
            self.arity = np.concatenate((np.zeros(lead, np.intp), known.arity))
            self.par = np.where(known.at >= 0, known.at + lead, -1)
            outside = np.flatnonzero(known.at < 0)
            self.par[outside] = _locate(ids[:lead], known.pids[outside])
        self.start = np.zeros(n + 1, np.intp)
        np.cumsum(self.arity, out=self.start[1:])
        n_edges = int(self.start[-1])
        self.user = np.repeat(np.arange(n), self.arity)  # the node each edge goes into
        if n_edges and (self.par < 0).any():
            e = int(np.argmax(self.par < 0))
            name = getattr(self.ops[int(self.user[e])], "name", "?")
            raise ValueError(f"a parent of a {name} node is not in the order given")
        if n_edges and (self.par >= self.user).any():
            raise ValueError("the order given is not topological: a node comes before a parent")
        self.op_of = list(dict.fromkeys(self.ops))  # the op of each code
        index = {op: k for k, op in enumerate(self.op_of)}
        self.code = np.fromiter(map(index.__getitem__, self.ops), np.intp, n)
        self.pkey = self._params_keys()
        self.pt = self._parent_tuples()
        last = max(n_edges - 1, 0)  # each node's first two parents (any index for fewer)
        self.first_parent = self.par[np.minimum(self.start[:-1], last)] if n_edges else self.arity
        self.second_parent = (
            self.par[np.minimum(self.start[:-1] + 1, last)] if n_edges else self.arity
        )
        self._numbers: np.ndarray | None = None
        # where each node's edges are (set with the backward's steps): see _backward_steps
        self.first = np.zeros(n, np.intp)
        self.stride = np.ones(n, np.intp)
        self.row = np.zeros(n, np.intp)
        self.batched = np.zeros(0, np.intp)  # the nodes of the backward's batches, in order

    def _params_keys(self) -> np.ndarray:
        try:  # equal params (2.0 and 2), one key
            index = {p: k for k, p in enumerate(dict.fromkeys(self.params))}
        except TypeError:
            for op, p in zip(self.ops, self.params, strict=True):
                try:
                    hash(p)
                except TypeError:
                    name = op.name if op is not None else "leaf"
                    raise TypeError(
                        f"op {name} has params that cannot be compared: {p!r:.60}"
                    ) from None
            raise
        pkey = np.fromiter(map(index.__getitem__, self.params), np.intp, self.n)
        for c, op in enumerate(self.op_of):
            if op in _ARRAY_PARAMS:
                pkey[self.code == c] = _NONE
        return pkey

    def numbers(self) -> np.ndarray:
        """The number operand of each node whose op takes one as an array (0.0 elsewhere)."""
        if self._numbers is None:
            codes = [c for c, op in enumerate(self.op_of) if op in _ARRAY_PARAMS]
            at = np.flatnonzero(np.isin(self.code, codes)).tolist()
            params = self.params
            self._numbers = np.zeros(self.n)
            self._numbers[at] = np.fromiter((params[i][0] for i in at), float, len(at))
        return self._numbers

    def _parent_tuples(self) -> list[tuple[int, ...]]:
        """Each node's parents as a tuple of indices, made a column at a time for each arity."""
        pt: list[tuple[int, ...]] = [()] * self.n
        for a in np.unique(self.arity).tolist():
            if a == 0:
                continue
            nodes = np.flatnonzero(self.arity == a)
            at = self.start[nodes]
            if a <= 4:
                cols = [self.par[at + k].tolist() for k in range(a)]
                tuples = list(zip(*cols, strict=True))
            else:
                par = self.par.tolist()
                tuples = [tuple(par[s : s + a]) for s in at.tolist()]
            list(map(pt.__setitem__, nodes.tolist(), tuples))
        return pt


def _locate(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The index in ``ids`` of each id in ``wanted`` (the first, if it is there twice), or -1."""
    if not len(wanted):
        return np.zeros(0, np.intp)
    sorter = np.argsort(ids, kind="stable")
    at = np.searchsorted(ids, wanted, sorter=sorter).clip(max=len(ids) - 1)
    found = sorter[at]
    return np.where(ids[found] == wanted, found, -1)


class Known:
    """The parents of a trace's nodes, read by ``reached``, as the build reads them again:
    how many each node has, their ids, and where each is among the trace's nodes (-1: a leaf)."""

    def __init__(self, ids: np.ndarray, arity: np.ndarray, pids: np.ndarray, at: np.ndarray):
        self.ids, self.arity, self.pids, self.at = ids, arity, pids, at


def reached(
    ids: np.ndarray, plists: list[tuple[Node, ...]], outputs: tuple[Node, ...]
) -> tuple[np.ndarray | None, list[Node], Known | None]:
    """Of the nodes a trace made (their ids, in the order made, and their parents): which the
    outputs depend on (None: all of them); the nodes they read that the trace did not make, in
    the order first read (leaves: arguments, parameters, constants); and, when all of them
    are needed, what the build would read again of their parents."""
    n = len(plists)
    arity = np.fromiter(map(len, plists), np.intp, n)
    flat = list(chain.from_iterable(plists))
    pids = np.fromiter(map(id, flat), np.int64, len(flat))
    loc = _locate(ids, pids)
    made = loc >= 0
    used = np.bincount(loc[made], minlength=n) > 0
    out_at = _locate(ids, np.fromiter(map(id, outputs), np.int64, len(outputs)))
    used[out_at[out_at >= 0]] = True
    keep = None
    if not used.all():  # some node leads to no output: walk back from the outputs
        live = [False] * n
        for i in out_at.tolist():
            live[i] = True
        at, start = loc.tolist(), np.concatenate(([0], np.cumsum(arity))).tolist()
        for i in range(n - 1, -1, -1):
            if live[i]:
                for j in at[start[i] : start[i + 1]]:
                    if j >= 0:
                        live[j] = True
        keep = np.flatnonzero(live)
        read = np.repeat(np.array(live, bool), arity) & ~made
    else:
        read = ~made
    edges = np.flatnonzero(read)
    _, first = np.unique(pids[edges], return_index=True)
    known = None if keep is not None else Known(ids, arity, pids, loc)
    return keep, [flat[e] for e in edges[np.sort(first)].tolist()], known


def _check_floats(g: _Graph, values: list[Any]) -> None:
    if all(v.__class__ is float for v in values):
        return
    for i, v in enumerate(values):
        op = g.ops[i]
        if v.__class__ is not float and op is not None:
            raise TypeError(
                f"op {op.name} holds a {type(v).__name__}, not a float: a scalar "
                "program runs Value ops only"
            )


def _depths(g: _Graph, in_idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Each node's depth (one more than its deepest parent's; 0 for a leaf) and whether it
    depends on an input: one node after the other, as each needs its parents'."""
    depth = [0] * g.n
    req = [False] * g.n
    for i in in_idx:
        req[i] = True
    pt = g.pt
    # An op with no backward (a trace's detach()) stops the gradient: its node needs none.
    stops = [k for k, op in enumerate(g.op_of) if op is not None and not hasattr(op, "backward")]
    stop = np.isin(g.code, stops).tolist() if stops else []
    for i in np.flatnonzero(g.arity).tolist():
        ps = pt[i]
        if len(ps) == 2:  # the common arities spelled out: this loop sees every node
            j, k = ps
            dj, dk = depth[j], depth[k]
            depth[i] = (dj if dj > dk else dk) + 1
            req[i] = req[j] or req[k]
        elif len(ps) == 1:
            j = ps[0]
            depth[i] = depth[j] + 1
            req[i] = req[j]
        else:
            depth[i] = max([depth[j] for j in ps]) + 1
            req[i] = any([req[j] for j in ps])
        if stop and stop[i]:
            req[i] = False
    return np.array(depth, np.intp), np.array(req, bool)


def _uses(g: _Graph, req: np.ndarray, out_idx: list[int]) -> np.ndarray:
    """How many uses each node has on the way to an output, the seeds counted (as
    engine.toposort counts them): its edges into users that need a gradient, when every such
    user leads to an output (a trace's graph: all it holds does); else walked back from the
    outputs, node by node."""
    edge = req[g.par] & req[g.user]
    uses = np.bincount(g.par[edge], minlength=g.n)
    seeds = np.array([i for i in out_idx if req[i]], np.intp)
    np.add.at(uses, seeds, 1)
    if not ((uses == 0) & req & (g.arity > 0)).any():
        return uses
    count = [0] * g.n  # a node no output needs: walk back from the outputs
    pt, needs = g.pt, req.tolist()
    for i in seeds.tolist():
        count[i] += 1
    for i in range(g.n - 1, -1, -1):
        if count[i]:
            for j in pt[i]:
                if needs[j]:
                    count[j] += 1
    return np.array(count, np.intp)


def _engine_order(g: _Graph, req: np.ndarray, uses: np.ndarray, out_idx: list[int]) -> np.ndarray:
    """Each computed node's place in the order of the engine's backward pass (engine.toposort's
    Kahn order, from a root whose parents are the outputs): its gradients are added in that
    order, so the program adds them in it too. -1 for a node the pass does not visit."""
    # A leaf is pushed too when its uses are all met: it has no parents, so popping it changes
    # nothing in the order of the others (the engine's toposort leaves leaves out).
    left = uses.tolist()
    ready = []
    for i in out_idx:
        if req[i]:
            left[i] -= 1
            if not left[i]:
                ready.append(i)
    seen: list[int] = []
    pop, push, emit, pt = ready.pop, ready.append, seen.append, g.pt
    while ready:
        i = pop()
        emit(i)
        for p in pt[i]:
            c = left[p] = left[p] - 1
            if not c:
                push(p)
    rank = np.full(g.n, -1, np.intp)
    rank[np.array(seen, np.intp)] = np.arange(len(seen))
    return rank
