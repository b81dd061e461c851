"""From a trace to the generated forward."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import engine
from .. import tensor as _tensor_mod
from ..engine import Node
from ..tensor import Tensor
from .emit import _call, _Emitter, _Line, _Sym, _SymMath
from .errors import CompileError
from .program import _op_note, _Program
from .source import _define, _functions, _prune
from .trace import _COMPARE, _Derived, _same_array, _Trace

# The engine's view (one place to follow the engine's interface)


def _order(root: Node) -> list[Node]:
    """The eager backward pass's order (root first): the generated backward follows it exactly."""
    return engine.toposort(root)


def _build(
    outs: tuple[Node, ...],
    trace: _Trace,
    flat: list[Any],
    arrays: dict[int, bool],
) -> tuple[_Program, list[Node]]:
    """Emit the forward's lines (defined by _define_forward once the backwards show what they
    read again); return the program and the leaves it reads. ``flat``: the arguments' nodes as
    the trace saw them; ``arrays``: which of them stand in for a NumPy array (True where the
    stand-in holds it converted to float64)."""
    prog = _Program(Tensor)
    if not all(isinstance(o, Tensor) for o in outs):
        raise CompileError("a compiled function returns Values or Tensors, not both")
    prog.roots = list(outs)
    w = _ForwardWriter(prog, trace, flat)
    rows, outside, first_read = w.walk(outs)
    ops = [row[0] for row in rows]
    w.em.comment("arguments (x) and the leaves read on every call (p), in order of first use")
    # leaves numbered as the ops first read them, so that p0 is the first weight of the step
    first_use = sorted(outside, key=lambda n: first_read.get(id(n), (1, 0)))  # outputs last
    leaves = [n for n in first_use if w.bind(n, arrays)]
    w.em.comment("forward")
    for n in ops:
        w.straight(n)
    for k, root in enumerate(outs):
        if root.requires_grad:
            # the eager pass's order over the nodes that need a gradient (a node a trace
            # recorded without one has no place in it; nor has an argument's own graph, which
            # the engine walks on from the op's parents)
            entries = prog.entries
            prog.orders[k] = [n for n in _order(root) if n.requires_grad and id(n) in entries]
    # what a backward may read again: each computed value (and comparison) by its name
    sym = prog.fsym
    saveable = {s.name for s in sym.values() if s.name[:1] in "tx" and s.name[1:].isdigit()}
    prog.saveable = saveable | {s.name for _, s in prog.mask_syms}
    prog.returns = [sym[id(o)].name for o in outs]
    prog.forward_lines = w.em.lines
    return prog, leaves


class _ForwardWriter:
    """Writes the forward of one trace: its inputs bound, then each op by its own rule."""

    def __init__(self, prog: _Program, trace: _Trace, flat: list[Any]) -> None:
        self.prog, self.trace = prog, trace
        self.em = _Emitter(prog, "t")
        self.xp = _SymMath(self.em, prog.real_math)
        prog.helper("asarray", np.asarray)
        self.n_leaves = 0
        self.arg_index: dict[int, int] = {}
        self.arg_nodes: list[Node] = []  # arguments holding arrays, which a param may be
        for i, a in enumerate(flat):
            self.arg_index.setdefault(id(a), i)
            if isinstance(a._data, np.ndarray):
                prog.arg_arrays.append((a._data, f"x{i}"))
                self.arg_nodes.append(a)

    def walk(self, outs: tuple[Node, ...]) -> tuple[list[Any], list[Node], dict[int, Any]]:
        """Every op the outputs depend on (through parents, and through traced masks in params),
        in the order they ran; the nodes read from outside; where each is first read. One pass
        over the trace from its end, as an op's inputs were all made before it."""
        entries, made, mask_of = self.prog.entries, self.trace.made, self.trace.mask_of
        reached = {id(o) for o in outs}
        outside = [o for o in outs if id(o) not in made]  # leaves, arguments, nodes made before
        rows: list[tuple[Node, Any, tuple[Node, ...], tuple[Any, ...]]] = []
        # a leaf's id -> where the first op reading it reads it: (-ops after it, its input)
        first_read: dict[int, tuple[int, int]] = {}
        for row in reversed(made.values()):
            if id(row[0]) not in reached:
                continue
            entries[id(row[0])] = row[1:]
            rows.append(row)
            here = -len(rows)
            reads: Any = row[2]
            if self.trace.masks or self.arg_nodes:  # params made from the arguments are read too
                reads = [*reads, *_mask_reads(row[3], mask_of), *self.arg_reads(row[3])]
            for i, p in enumerate(reads):
                key = id(p)
                if key in made:
                    reached.add(key)
                    continue
                if key not in reached:
                    reached.add(key)
                    outside.append(p)
                was = first_read.get(key)
                if was is None or was[0] != here:  # its first input here, not a later one
                    first_read[key] = (here, i)
        rows.reverse()
        for n in outside:
            if n.op is not None and id(n) not in self.arg_index:
                raise CompileError(
                    "the function reads a node computed outside it that has a graph of its own "
                    "(its gradient would flow back through that graph): compute it inside the "
                    "function, pass it as an argument, or detach() it"
                )
        return rows, outside, first_read

    def arg_reads(self, params: tuple[Any, ...]) -> list[Node]:
        """The arguments whose very arrays are among an op's params (a where's condition or an
        index passed in as an array): the forward binds them, and each replay reads them anew."""
        return [
            a
            for p in _flat_params(params)
            if isinstance(p, np.ndarray)
            for a in self.arg_nodes
            if _same_array(p, a._data)
        ]

    def bind(self, n: Node, arrays: dict[int, bool]) -> bool:
        """Bind a node read from outside: an argument (x0 ...), a constant made inside (kept),
        or a leaf read on every call (p0 ...: returns True, a parent of the op)."""
        prog, em, sym = self.prog, self.em, self.prog.fsym
        if id(n) in sym:
            return False
        data = n._data
        if id(n) in self.arg_index:
            i = self.arg_index[id(n)]
            expr = f"A[{i}]._data"
            if i in arrays:  # a NumPy array, copied (or made float64) as Tensor() does: a
                # write into the caller's array before the backward must not reach its gradient
                to_array = prog.helper("to_array", _tensor_mod._to_array)
                expr = f"{to_array}(A[{i}])" if arrays[i] else f"A[{i}].copy()"
                prog.arg_copies[i] = f"x{i}"
            sym[id(n)] = em.bind(f"x{i}", expr, data)
            prog.where[f"x{i}"] = expr
            return False
        if isinstance(data, np.ndarray) and prog.array_name(data, em) is not None:
            raise CompileError(
                "the function made a leaf that shares an argument's memory in a way compile "
                "cannot follow: make Tensors from the argument itself"
            )
        # A leaf made inside is a constant, kept: each eager run makes a new one, so even one
        # that requires grad has a gradient no caller can read (not a parent of the op)
        if id(n) in self.trace.inside:
            sym[id(n)] = _Sym(em, em.fmt(data), data)
            return False
        j = self.n_leaves
        self.n_leaves += 1
        sym[id(n)] = em.bind(f"p{j}", f"L[{j}]._data", data)
        prog.where[f"p{j}"] = f"L[{j}]._data"
        return True

    def op(self, n: Node, ins: list[Any], sparams: tuple[Any, ...]) -> _Sym:
        """The forward of node n's op, by its rule, on the symbols of its inputs."""
        em, prog = self.em, self.prog
        op = prog.entries[id(n)][0]
        before = len(em.lines)
        out = op.forward(self.xp, *ins, *sparams)
        if not isinstance(out, _Sym):  # a rule that returned a constant
            out = _Sym(em, em.fmt(out), out)
        if out.val.__class__ is not np.ndarray:
            out = em.emit(f"asarray({out.name})", np.asarray(out.val), (out,))
        if not _identical(out.val, n._data):
            raise CompileError(
                f"internal: the generated forward of {_op_note(op)} differs from the eager "
                "engine's, so compile refuses the step: call the function without @compile"
            )
        last = em.lines[-1]
        if len(em.lines) > before and isinstance(last, _Line) and last.target == out.name:
            last.expr += f"  # {_op_note(op)}"
        return out

    def straight(self, n: Node) -> None:
        prog = self.prog
        _, parents, params = prog.entries[id(n)]
        sparams = tuple(_param_sym(prog, self.em, p, self.trace.mask_of) for p in params)
        prog.fsym[id(n)] = self.op(n, [prog.fsym[id(p)] for p in parents], sparams)


def _define_forward(prog: _Program, reads: set[str]) -> None:
    """Define the forward function, saving for the backward (in the list S) only the values in
    ``reads``, the names the backwards read again: the others are let go of when the forward
    returns, as a hand-written step lets go of what its backward does not use."""
    # the copies of the array arguments too: a recorded backward (create_graph) runs the
    # function again on the caller's arrays, and must first see that they were not written
    saved = (reads | set(prog.arg_copies.values())) & prog.saveable
    lines = _prune(prog.forward_lines, set(prog.returns) | saved)
    src, saved_order = _functions("forward", ["A", "L", "S"], lines, prog.returns, saved)
    for i, name in enumerate(saved_order):
        prog.where[name] = f"S[{i}]"
    slot = {name: k for k, name in enumerate(saved_order)}
    prog.arg_slots = {i: slot[n] for i, n in prog.arg_copies.items() if n in slot}
    prog.forward_source = "\n".join(src)
    prog.forward = _define(prog, src, "forward")
    prog.forward_lines = []


def _mask_reads(params: tuple[Any, ...], mask_of: Callable[[Any], Any]) -> list[Node]:
    """The nodes an op reads through the traced comparisons among its params (a where's mask)."""
    out: list[Node] = []
    for p in _flat_params(params):
        masks = [mask_of(p)]
        while masks:
            m = masks.pop()
            if m is None:
                continue
            for x in m.src[1:]:
                if isinstance(x, Node):
                    out.append(x)
                elif isinstance(x, _Derived):
                    masks.append(x)
    return out


def _flat_params(params: tuple[Any, ...]) -> Iterator[Any]:
    for p in params:
        if isinstance(p, tuple):
            yield from _flat_params(p)
        else:
            yield p


def _param_sym(prog: _Program, em: _Emitter, p: Any, mask_of: Callable[[Any], Any]) -> Any:
    """A param as the rules should see it: a traced comparison becomes its recomputation."""
    if isinstance(p, tuple):
        return tuple(_param_sym(prog, em, v, mask_of) for v in p)
    m = mask_of(p)
    if m is None:
        return prog.arg_sym(p)
    for known, s in prog.mask_syms:
        if known is m:
            return s
    op_sym, a, b = m.src

    def operand(x: Any) -> Any:
        if isinstance(x, Node):
            return prog.fsym[id(x)]
        if isinstance(x, _Derived):
            return _param_sym(prog, em, x, mask_of)
        return x

    if op_sym == "call":  # an index (or labels) computed from a traced Tensor: a, the function
        s = _call(em, f"computed{len(prog.mask_syms)}", a, operand(b))
    elif op_sym == "~":
        s = ~operand(a)
    else:
        s = em.binary(op_sym, _COMPARE[op_sym], operand(a), operand(b))
    prog.mask_syms.append((m, s))
    return s


def _identical(a: Any, b: Any) -> bool:
    """The same array: class, shape, dtype and values (a NaN where the other has a NaN)."""
    return (
        isinstance(a, np.ndarray)
        and isinstance(b, np.ndarray)
        and a.shape == b.shape
        and a.dtype == b.dtype
        and bool(np.array_equal(a, b, equal_nan=True))
    )
