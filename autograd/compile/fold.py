"""Folding: a scalar trace that repeats one block is written once, as a loop over a table."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine import Node
from .emit import _Emitter, _Line, _Sym
from .source import _Effect, _Loop, _tuple

if TYPE_CHECKING:
    from .program import _Program


# Scalar traces of at least this many ops are searched for a repeated block. Below it the
# straight-line code builds quickly, and runs a little faster than a loop's body.
FOLD_OPS = 4_000

# Fewest repetitions worth a loop.
FOLD_REPS = 3


class _NoFold(Exception):
    """The repetition found does not fold faithfully: the code is built straight-line instead."""


class _Column(_Sym):
    """A number that differs between repetitions (a row of the table, in the loop's code).

    A rule that takes a decision on it (``if p == 2``) would take it once for every row, so
    any comparison or truth test refuses the fold rather than answer."""

    __slots__ = ()

    def _refuse(self, *args: Any) -> Any:
        raise _NoFold("a rule takes a decision on a number that differs between repetitions")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __float__ = _refuse
    __hash__ = _Sym.__hash__


class _Fold:
    """ops[start : start + reps * period] are ``reps`` repetitions of one block of ``period``
    ops: the same ops, with the same params, on the same leaves, reading the block's own
    results or the previous repetition's; only some numbers differ (a float param, a constant
    made inside the function), and those are the table's columns."""

    def __init__(
        self, start: int, period: int, reps: int, ops: list[Node], index: dict[int, int]
    ) -> None:
        self.start, self.period, self.reps = start, period, reps
        self.end = start + reps * period
        self.index = index  # node id -> its place among the ops
        self.template = ops[start : start + period]  # the first repetition's nodes
        self.last = ops[self.end - period : self.end]
        # what the first repetition reads where the others read the one before (a running
        # sum's start), by the position read
        self.initial: dict[int, Node] = {}
        # per position: how each parent is read, and which params come from the table
        self.parents: list[list[tuple[str, Any]]] = []
        self.params: list[dict[int, int]] = []  # param index -> slot of the op's numbers
        self.columns: dict[tuple[int, int], int] = {}  # (position, slot) -> column
        self.table: tuple[tuple[float, ...], ...] = ()
        self.carried: list[int] = []  # positions of the previous repetition the block reads
        self.names: list[_Sym] = []  # the forward's value of each position, in the loop
        self.row: list[str] = []  # the names saved for the backward, per repetition
        self.rows = "R0"

    def locate(self, key: int) -> tuple[int, int] | None:
        """(repetition, position) of the node with this id, if it is in the run."""
        j = self.index.get(key, -1) - self.start
        if j < 0 or j >= self.end - self.start:
            return None
        return divmod(j, self.period)


def _plan_fold(
    rows: list[tuple[Node, Any, tuple[Node, ...], tuple[Any, ...]]],
    entries: dict[int, Any],
    constant: Callable[[Node], bool],
    extend: bool = True,
) -> _Fold | None:
    """The longest run of repetitions of one block among the ops (``rows``: each op's node,
    op, parents and params, in the order they ran), or None.

    Each op gets a signature: its op, whether it needs a gradient, its params (a float as
    "a number", anything else as itself) and its parents, each as "d ops back" for a computed
    one, "a number" for a constant made inside, and the leaf itself otherwise. A period of the
    signatures is a candidate block; it is then checked op by op (parents within one repetition
    back, numbers split into those every repetition shares and the table's columns).
    """
    ops = [row[0] for row in rows]
    m = len(ops)
    index = {id(n): j for j, n in enumerate(ops)}
    at = index.get
    ids: dict[Any, int] = {}
    sigs: list[int] = []
    leaf: dict[int, Any] = {}  # a leaf's part of a signature: itself, or "c" for a constant
    for j, (n, op, parents, params) in enumerate(rows):
        key = [op, n.requires_grad]
        for p in parents:
            i = at(id(p))
            if i is None:
                ref = leaf.get(id(p))
                if ref is None:
                    ref = leaf[id(p)] = "c" if constant(p) else p
                key.append(ref)
            else:
                key.append(j - i)
        for q in params:
            key.append("f" if q.__class__ is float else ("param", q))
        try:
            sigs.append(ids.setdefault(tuple(key), len(ids)))
        except TypeError:  # an unhashable param: not a scalar op this folds
            return None
    # The period: the commonest gap between two uses of one signature that occurs as often as
    # most signatures do (once per repetition, as a weight's product does).
    counts = collections.Counter(sigs)
    per_count = collections.Counter(c for c in counts.values() if c >= FOLD_REPS)
    if not per_count:
        return None
    often = per_count.most_common(1)[0][0]
    probe = next(s for s in sigs if counts[s] == often)
    uses = [j for j, s in enumerate(sigs) if s == probe]
    gaps = collections.Counter(b - a for a, b in itertools.pairwise(uses))
    period = gaps.most_common(1)[0][0]
    # The longest stretch in which each signature equals the one a period later.
    later = sigs[period:]
    breaks = [j for j, (a, b) in enumerate(zip(sigs, later, strict=False)) if a != b]
    before, after = max(itertools.pairwise([-1, *breaks, m - period]), key=lambda r: r[1] - r[0])
    best_start, best_len = before + 1, after - before - 1
    reps = (best_len + period) // period
    if reps < FOLD_REPS:
        return None
    return _check_fold(ops, index, entries, constant, (best_start, period, reps), extend)


def _check_fold(
    ops: list[Node],
    index: dict[int, int],
    entries: dict[int, Any],
    constant: Callable[[Node], bool],
    run: tuple[int, int, int],
    extend: bool,
) -> _Fold | None:
    """The run (start, period, repetitions) as a _Fold, its reads and its table worked out.

    How the block reads each parent is taken from its second repetition: an op of its own, an
    op of the previous repetition ("prev"), a constant made inside ("number") or a leaf. The
    first repetition may read something else where the others read the previous repetition
    (the running sum's start, ``Value(0.0)``): with ``extend``, a repetition before the run that
    differs only so joins it. None where the block reads further back than one repetition, or
    code after the run reads anything but the last repetition.
    """
    start, period, reps = run
    second = start + period
    refs: list[list[tuple[str, Any]]] = []
    for q in range(period):
        row: list[tuple[str, Any]] = []
        for p in entries[id(ops[second + q])][1]:
            i = index.get(id(p))
            if i is None:
                row.append(("number", None) if constant(p) else ("leaf", p))
            elif i >= second:
                row.append(("op", i - second))
            elif i >= start:
                row.append(("prev", i - start))
            else:
                return None  # two repetitions back, or a value from before the run
        refs.append(row)

    def first_reads(base: int) -> dict[int, Node] | None:
        """What the repetition at ``base`` reads where the others read the one before, if it
        is the block otherwise."""
        initial: dict[int, Node] = {}
        leaves = {id(x) for row in refs for kind, x in row if kind == "leaf"}
        for q in range(period):
            op, parents, params = entries[id(ops[base + q])]
            like, parents_like, params_like = entries[id(ops[second + q])]
            if (
                op is not like
                or ops[base + q].requires_grad != ops[second + q].requires_grad
                or len(parents) != len(parents_like)
                or len(params) != len(params_like)
                or any(
                    (a.__class__ is float) != (b.__class__ is float)
                    or (a.__class__ is not float and a != b)
                    for a, b in zip(params, params_like, strict=True)
                )
            ):
                return None
            for (kind, x), p in zip(refs[q], parents, strict=True):
                i = index.get(id(p))
                if kind == "op":
                    ok = i == base + x
                elif kind == "number":
                    ok = i is None and constant(p)
                elif kind == "leaf":
                    ok = p is x
                else:  # read once, before the loop: it must need a gradient as the value does
                    was = initial.setdefault(x, p)
                    ok = (
                        was is p
                        and (i is None or i < base)
                        and id(p) not in leaves
                        and p.requires_grad == ops[start + x].requires_grad
                    )
                if not ok:
                    return None
        if len({id(p) for p in initial.values()}) != len(initial):
            return None
        return initial

    initial = first_reads(start)
    if extend and start >= period:
        before = first_reads(start - period)
        if before is not None:
            start, reps, initial = start - period, reps + 1, before
    if initial is None:
        return None
    fold = _Fold(start, period, reps, ops, index)
    fold.initial = initial
    end = fold.end
    columns: dict[tuple[str, ...], int] = {}  # a column's numbers (as hex) -> its index
    table: list[list[float]] = []
    for q in range(period):
        slot = 0
        kinds = []
        for kind, x in refs[q]:
            if kind == "number":
                kinds.append(("number", slot))
                slot += 1
            else:
                kinds.append((kind, x))
        floats = {}
        for k, v in enumerate(entries[id(ops[second + q])][2]):
            if v.__class__ is float:
                floats[k] = slot
                slot += 1
        fold.parents.append(kinds)
        fold.params.append(floats)
        if not slot:
            continue
        # a number every repetition shares stays a literal; each other one is read from a
        # column of the table, one column per distinct sequence (x0 of a sample, used 16 times)
        rows = []
        for r in range(reps):
            _, parents, params = entries[id(ops[start + r * period + q])]
            numbers = [
                p._data for (kind, _), p in zip(refs[q], parents, strict=True) if kind == "number"
            ]
            rows.append(numbers + [v for v in params if v.__class__ is float])
        for s in range(slot):
            seq = tuple(row[s].hex() for row in rows)
            if all(h == seq[0] for h in seq):
                continue
            c = columns.get(seq)
            if c is None:
                c = columns[seq] = len(table)
                table.append([row[s] for row in rows])
            fold.columns[(q, s)] = c
    for j in range(end, len(ops)):
        for p in entries[id(ops[j])][1]:
            i = index.get(id(p))
            if i is not None and start <= i < end - period:
                return None  # code after the run reads an earlier repetition
    fold.carried = sorted(initial)
    fold.table = tuple(zip(*table, strict=True)) if table else ()
    return fold


def _forward_loop(prog: _Program, fwd: _Emitter, forward_op: Callable[..., _Sym]) -> None:
    """The run of repetitions as one loop, its block emitted once from the first repetition.

    Each pass appends the block's values to the list ``R0`` (the backward reads them again);
    ``u0``... carry what the next repetition reads of this one (a running sum), and each row of
    the table holds the numbers that differ (a sample's inputs and target).
    """
    fold = prog.fold
    assert fold is not None
    sym = prog.fsym
    cols = [_Column(fwd, f"c{i}", x) for i, x in enumerate(fold.table[0])]
    col_of = {qs: cols[c] for qs, c in fold.columns.items()}
    carried = {q: _Sym(fwd, f"u{i}", fold.initial[q]._data) for i, q in enumerate(fold.carried)}
    fwd.comment(
        f"{fold.reps} repetitions of one block of {fold.period} ops, written once"
        + (f": row r of {prog.constant(fold.table)} holds repetition r's numbers" if cols else "")
    )
    fwd.lines.append(_Line(fold.rows, "[]", ()))
    for q, u in carried.items():
        first = sym[id(fold.initial[q])]
        fwd.lines.append(_Line(u.name, first.name, (first.name,)))
    outer, body = fwd.lines, list[_Line | str]()
    fwd.lines = body
    names: list[_Sym] = []
    for q, n in enumerate(fold.template):
        ins, sparams = _block_inputs(prog, n, q, names, carried, col_of, sym)
        names.append(forward_op(n, ins, sparams))
    fwd.lines = outer
    made = [ln.target for ln in body if isinstance(ln, _Line) and not isinstance(ln, _Effect)]
    fold.names = names
    fold.row = [u.name for u in carried.values()] + made
    body.append(_Effect("", f"{fold.rows}.append({_tuple(fold.row)})", (fold.rows, *fold.row)))
    if carried:
        us = ", ".join(u.name for u in carried.values())
        news = [names[q].name for q in carried]
        body.append(_Effect("", f"{us} = {', '.join(news)}", tuple(news)))
    if not cols:
        header = f"for _ in range({fold.reps}):"
    else:
        row = ", ".join(c.name for c in cols)
        header = f"for {row if len(cols) > 1 else f'({row},)'} in {prog.constant(fold.table)}:"
    binds = [c.name for c in cols]
    fwd.lines.append(_Loop(header, binds, body, {u.name for u in carried.values()} | set(made)))
    # after the loop its names hold the last repetition's values, which code after it reads
    for n, s in zip(fold.last, names, strict=True):
        sym[id(n)] = _Sym(fwd, s.name, n._data)


def _block_inputs(
    prog: _Program,
    n: Node,
    q: int,
    names: list[_Sym],
    carried: dict[int, _Sym],
    col_of: dict[tuple[int, int], _Column],
    known: Callable[[Node], _Sym] | dict[int, _Sym],
) -> tuple[list[_Sym], tuple[Any, ...]]:
    """The inputs and params of n, the block's op at position q, as the loop's code reads them
    (in the forward loop and in the backward's alike): a parent made in the block by its name
    there, one of the repetition before by what is carried, a number that differs between
    repetitions by its column of the table, anything else as ``known`` has it."""
    fold = prog.fold
    assert fold is not None
    _, parents, params = prog.entries[id(n)]
    ins = []
    for (kind, x), p in zip(fold.parents[q], parents, strict=True):
        if kind == "op":
            ins.append(names[x])
        elif kind == "prev":
            ins.append(carried[x])
        elif kind == "number" and (q, x) in col_of:
            ins.append(col_of[(q, x)])
        else:
            ins.append(known(p) if callable(known) else known[id(p)])
    floats = fold.params[q]
    sparams = tuple(
        col_of.get((q, floats[i]), v) if i in floats else v for i, v in enumerate(params)
    )
    return ins, sparams


def _fold_order(fold: _Fold, order: list[Node]) -> tuple[int, list[Node]] | None:
    """Where the run's repetitions sit in the backward's order: (the index of the first, the
    last repetition's nodes in the order they are visited), or None when the root does not
    depend on the run. Raises _NoFold unless the pass visits the repetitions one after the
    other, the last first, each in the same order."""
    get, start, end = fold.index.get, fold.start, fold.end
    at = [get(id(n), -1) for n in order]  # each node's place among the ops
    inside = [start <= j < end for j in at]
    if True not in inside:
        return None
    first = inside.index(True)
    size, extra = divmod(inside.count(True), fold.reps)
    base = end - fold.period  # the last repetition's first op
    pattern = [j - base for j in at[first : first + size]]
    if not all(0 <= q < fold.period for q in pattern):
        raise _NoFold("the backward pass visits other nodes among the repetitions")
    for r in range(fold.reps):
        expect = [base - r * fold.period + q for q in pattern]
        if extra or at[first + r * size : first + (r + 1) * size] != expect:
            raise _NoFold("the backward pass does not visit the repetitions one by one, alike")
    return first, order[first : first + size]
