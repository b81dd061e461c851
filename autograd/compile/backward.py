"""The backward: the eager pass's loop, run once on symbols."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import engine
from ..engine import Node
from ..tensor import Tensor, unbroadcast_axes
from .emit import _Emitter, _Line, _reduce, _Sym, _SymMath
from .fold import _block_inputs, _Column, _Fold, _fold_order, _NoFold
from .program import _op_note, _Program
from .source import _define, _Effect, _functions, _Loop, _name_key, _prune, _Unpack
from .trace import _same_array

# ---------------------------------------------------------------------------------------------
# The backward: the eager pass's loop, run once on symbols


def _seed_kind(k: int, seed: Any, implied: bool) -> tuple[Any, ...]:
    """What a backward is generated for: output k, a seed of this class, shape and dtype."""
    return (k, implied, seed.__class__, getattr(seed, "shape", None), getattr(seed, "dtype", None))


def _build_backward(prog: _Program, k: int, seed: Any, implied: bool) -> Callable[..., Any]:
    """The backward of output k for a seed like ``seed``, generated on its first use (a call
    with another kind of gradient than those built at the trace, see _program)."""
    kind = _seed_kind(k, seed, implied)
    fn = prog.backwards.get(kind)
    if fn is not None:
        return fn
    return _define_backward(prog, kind, _backward_lines(prog, k, seed, implied))


def _backward_lines(
    prog: _Program, k: int, seed: Any, implied: bool
) -> tuple[list[_Line | str], list[str]]:
    """The lines of the backward of output k for a seed like ``seed``, following the engine's
    loop, and what it returns. The names of forward values they read are left to
    _define_backward to bind.

    ``implied``: the seed is the implied 1 of ``backward()`` with no grad, the same on every
    call, so what follows from it alone is computed here once.
    """
    bw = _Pass(prog, k, seed, implied)
    order = prog.orders[k]
    run = _fold_order(prog.fold, order) if prog.fold is not None else None
    if run is None:
        bw.visit_all(order)
    else:
        first, pattern = run
        bw.visit_all(order[:first])
        bw.loop(pattern)
        bw.visit_all(order[first + len(pattern) * prog.fold.reps :])  # type: ignore[union-attr]
    return _returns(prog, bw.em, bw.grads, bw.root)


class _Pass:
    """engine.backward_pass, run once on symbols: the gradients summed in a dict in the order
    they arrive, each node's rule once all its uses have sent theirs."""

    def __init__(self, prog: _Program, k: int, seed: Any, implied: bool) -> None:
        self.prog = prog
        self.em = em = _Emitter(prog, "g")
        if implied:
            em.fixed = {"G"}
        self.xp = _SymMath(em, prog.real_math)
        self.again: dict[str, _Sym] = {}  # forward values, as the backward reads them
        self.root = root = prog.roots[k]
        self.grads: dict[int, Any] = {id(root): _Sym(em, "G", seed)}
        self.nodes: dict[int, Node] = {id(root): root}
        # While the loop's block is written: the sums it carries from one repetition to the
        # next (a leaf's gradient: "a0 = a0 + d" on every pass), by node id.
        self.sums: dict[int, str] = {}
        self.before_loop: list[_Line | str] = []
        self.looping: _Fold | None = None

    def fwd_name(self, s: _Sym) -> _Sym:
        b = self.again.get(s.name)
        if b is None:
            b = self.again[s.name] = _Sym(self.em, s.name, s.val)
        return b

    def fwd(self, n: Node) -> _Sym:
        return self.fwd_name(self.prog.fsym[id(n)])

    def param(self, p: Any) -> Any:
        if isinstance(p, tuple):
            return tuple(self.param(v) for v in p)
        if isinstance(p, np.ndarray):  # a comparison or an index, made again on every call
            for m, s in self.prog.mask_syms:
                if _same_array(p, m):
                    return self.fwd_name(s)
            arg = self.prog.arg_sym(p)  # an argument's array: the forward saves what it read
            if arg is not p:
                return self.fwd_name(arg)
        return p

    def add(self, p: Node, d: _Sym) -> None:
        key, em, grads = id(p), self.em, self.grads
        if self.looping is None or self.looping.locate(key) is not None:
            grads[key] = grads[key] + d if key in grads else d
            return
        name = self.sums.get(key)
        if name is None:  # the first sum over repetitions into p: from what p has, or from -0.0,
            # which adds to any float giving it back to the bit, as the eager pass's first d
            name = self.sums[key] = f"a{len(self.sums)}"
            old = grads.get(key)
            self.before_loop.append(
                _Line(name, old.name, (old.name,)) if old is not None else _Line(name, "-0.0", ())
            )
        grads[key] = em.emit(f"{name} + {d.name}", d.val, (_Sym(em, name, d.val), d), target=name)

    def visit(self, n: Node, out: _Sym, ins: list[Any], params: tuple[Any, ...]) -> None:
        prog, em = self.prog, self.em
        g = self.grads.pop(id(n), None)
        if g is None:  # no use of n sent a gradient (every rule skipped it)
            z = prog.kind.zeros_like(n, False)  # type: ignore[attr-defined]
            g = _Sym(em, em.fmt(z), z)
        op, parents, _ = prog.entries[id(n)]
        em.comment(f"{_op_note(op)}: {out.name}")
        input_grads = engine.call_backward(op, self.xp, g, out, ins, params, parents)
        for i, (p, d) in enumerate(zip(parents, input_grads)):  # noqa: B905 - call_backward
            if d is None or not p.requires_grad:
                continue
            if not isinstance(d, _Sym):
                d = _Sym(em, em.fmt(d), d)
            if prog.kind is Tensor:
                d = _fit(em, d, p._data)
            elif not (d.val.__class__ is float or isinstance(d.val, (int, float))):
                p.fit_gradient(d.val, op, i)  # raises, naming the op
            self.add(p, d)
            self.nodes[id(p)] = p

    def visit_all(self, order: list[Node]) -> None:
        entries = self.prog.entries
        for n in order:
            _, parents, params = entries[id(n)]
            self.visit(n, self.fwd(n), [self.fwd(p) for p in parents], self.param(params))

    def loop(self, pattern: list[Node]) -> None:
        """The run of repetitions as one loop over R0, the last repetition first, as the eager
        pass visits them; ``pattern``: the last repetition's nodes in the order visited."""
        fold, em = self.prog.fold, self.em
        assert fold is not None
        em.comment(
            f"the {fold.reps} repetitions, the last first as the eager pass visits them: "
            f"{fold.rows}[i] holds repetition i's values"
        )
        slots, unsent = self._loop_slots(fold)
        outer, body = em.lines, list[_Line | str]()
        em.lines = body
        cols = [_Column(em, f"c{i}", x) for i, x in enumerate(fold.table[-1])]
        col_of = {qs: cols[c] for qs, c in fold.columns.items()}
        names = [self.fwd_name(s) for s in fold.names]
        carried = {q: _Sym(em, f"u{i}", fold.names[q].val) for i, q in enumerate(fold.carried)}
        body.append(_Unpack(fold.row, f"{fold.rows}[i]", (fold.rows,)))
        if cols:
            body.append(_Unpack([c.name for c in cols], f"{self.prog.constant(fold.table)}[i]", ()))
        self.looping = fold
        position = {id(n): q for q, n in enumerate(fold.last)}
        for n in pattern:
            q = position[id(n)]
            if id(n) in unsent and self.grads[id(n)].name == slots[q]:
                # the eager pass starts this one from zero, not from what the block adds to it
                raise _NoFold("a value the next repetition reads gets no gradient of its own")
            ins, sparams = _block_inputs(self.prog, n, q, names, carried, col_of, self.fwd)
            self.visit(n, names[q], ins, sparams)
        self.looping = None
        em.lines = outer
        self._loop_close(fold, slots, body)

    def _loop_slots(self, fold: _Fold) -> tuple[dict[int, str], set[int]]:
        """The gradients carried into the loop (h0 ...), by position in the block: what the last
        repetition has been sent so far (the seed, the code after the run), and -0.0 for a value
        the next repetition reads (the last has no next; -0.0 adds to any float to the bit)."""
        em, grads = self.em, self.grads
        slots: dict[int, str] = {}
        for key in list(grads):
            loc = fold.locate(key)
            if loc is None:
                continue
            if loc[0] != fold.reps - 1:
                raise _NoFold("a gradient reaches an earlier repetition before the loop")
            name = slots[loc[1]] = f"h{len(slots)}"
            em.lines.append(_Line(name, grads[key].name, (grads[key].name,)))
            grads[key] = _Sym(em, name, grads[key].val)
        unsent: set[int] = set()
        for q in fold.carried:
            n = fold.last[q]
            if q not in slots and n.requires_grad:
                name = slots[q] = f"h{len(slots)}"
                em.lines.append(_Line(name, "-0.0", ()))
                grads[id(n)] = _Sym(em, name, n._data)
                unsent.add(id(n))
        return slots, unsent

    def _loop_close(self, fold: _Fold, slots: dict[int, str], body: list[_Line | str]) -> None:
        """What the block sent to the repetition before it (the same places, on every pass)
        moves into the slots; after the loop, the first repetition's go to what it read."""
        em = self.em
        ends: dict[int, _Sym] = {}
        for key in list(self.grads):
            loc = fold.locate(key)
            if loc is not None:
                if loc[0] != fold.reps - 2:
                    raise _NoFold("the block sends a gradient further than one repetition back")
                ends[loc[1]] = self.grads.pop(key)
        if set(ends) != set(slots):
            raise _NoFold("the gradients the block sends back differ from those it receives")
        moves = [(slots[q], ends[q].name) for q in sorted(slots) if ends[q].name != slots[q]]
        if moves:
            news = tuple(b for _, b in moves)
            body.append(_Effect("", f"{', '.join(a for a, _ in moves)} = {', '.join(news)}", news))
        carry = set(slots.values()) | set(self.sums.values())
        em.lines += self.before_loop
        header = f"for i in range({fold.reps - 1}, -1, -1):"
        em.lines.append(_Loop(header, ["i"], _prune(body, carry), carry))
        for q, name in slots.items():
            n = fold.initial[q]
            if n.requires_grad:
                self.add(n, _Sym(em, name, ends[q].val))
                self.nodes[id(n)] = n


def _returns(
    prog: _Program, em: _Emitter, grads: dict[int, Any], root: Node
) -> tuple[list[_Line | str], list[str]]:
    """The backward's lines and what it returns: one gradient per parent of the compiled op
    (None for a parent it sends none), which the engine's pass hands on as any op's. A Tensor's
    gradient is an array that parent may own: a new array made by a line here and read by no
    other line; any other (a view, a kept constant, the seed) is copied, as the engine copies
    the gradients of an op whose rule may share them."""
    returns = ["None"] * prog.n_parents
    made = {ln.target for ln in em.lines if isinstance(ln, _Line) and ln.fresh}
    reads = collections.Counter(u for ln in em.lines if isinstance(ln, _Line) for u in ln.uses)
    reads.update(g.name for g in grads.values())
    for key, g in grads.items():
        at = prog.parent_index.get(key)
        if at is None or key == id(root):  # a constant made inside that requires grad
            continue
        name = g.name
        if prog.kind is Tensor:
            owned = name in made and reads[name] == 1 and g.val.__class__ is np.ndarray
            if not owned:
                name = f"r{at}"
                em.lines.append(
                    _Line(name, f"{prog.helper('array', np.array)}({g.name})", (g.name,))
                )
        returns[at] = name
    live = {r for r in returns if r != "None"}
    return _prune(em.lines, live), returns


def _define_backward(
    prog: _Program, kind: tuple[Any, ...], built: tuple[list[_Line | str], list[str]]
) -> Callable[..., Any]:
    """Define a backward from its lines, each forward value it reads bound where it is kept
    (S[i], a leaf, an argument). A value the forward did not save raises KeyError here, which
    sends the step to its eager rerun; the rules read the same values whatever the seed, so
    the backwards built at the trace have asked for all that any later one reads."""
    lines, returns = built
    used = {*returns} | {u for ln in lines if isinstance(ln, _Line) for u in ln.uses}
    wanted = used & (set(prog.where) | prog.saveable)
    head = [_Line(name, prog.where[name], ()) for name in sorted(wanted, key=_name_key)]
    name = f"backward{len(prog.backwards)}"
    src, _ = _functions(name, ["G", "S", "A", "L"], [*head, *lines], returns, set())
    prog.backward_sources[kind] = "\n".join(src)
    fn = prog.backwards[kind] = _define(prog, src, name)
    return fn


def _fit(em: _Emitter, g: _Sym, like: Any) -> _Sym:
    """Tensor.fit_gradient, emitted: undo broadcasting (tensor.unbroadcast, its axes worked
    out now) and give the input's dtype."""
    v = g.val
    shape = like.shape
    if getattr(v, "shape", ()) != shape:
        axes = unbroadcast_axes(v.shape, shape)
        if axes == tuple(range(v.ndim - len(shape))):
            # only the leading axes broadcasting added (a bias): the same sum, without the
            # keepdims and reshape, whose view the leaf would have to copy
            g = _reduce(em, "sum", g, axes, False)
        else:
            g = _reduce(em, "sum", g, axes, True)
            if v.ndim != len(shape):
                g = em.emit(f"{g.name}.reshape({em.fmt(shape)})", g.val.reshape(shape), (g,))
    v = g.val
    if v.__class__ is np.ndarray and v.dtype == like.dtype:
        return g
    asarray = em.program.helper("asarray", np.asarray)
    return em.emit(
        f"{asarray}({g.name}, dtype={em.fmt(like.dtype)})",
        np.asarray(v, dtype=like.dtype),
        (g,),
    )
