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


def _backward_lines(prog: _Program, k: int, seed: Any, implied: bool) -> list[_Line | str]:
    """The lines of the backward of output k for a seed like ``seed``, following the engine's
    loop. The names of forward values they read are left to _define_backward to bind.

    ``implied``: the seed is the implied 1 of ``backward()`` with no grad, the same on every
    call, so what follows from it alone is computed here once.
    """
    em = _Emitter(prog, "g")
    if implied:
        em.fixed = {"G"}
    xp = _SymMath(em, prog.real_math)
    tensor = prog.kind is Tensor
    again: dict[str, _Sym] = {}

    def fwd_name(s: _Sym) -> _Sym:
        b = again.get(s.name)
        if b is None:
            b = again[s.name] = _Sym(em, s.name, s.val)
        return b

    def fwd(n: Node) -> _Sym:
        return fwd_name(prog.fsym[id(n)])

    def param(p: Any) -> Any:
        if isinstance(p, tuple):
            return tuple(param(v) for v in p)
        if isinstance(p, np.ndarray) and p.dtype == bool:
            for m, s in prog.mask_syms:
                if _same_array(p, m):
                    b = again.get(s.name)
                    if b is None:
                        b = again[s.name] = _Sym(em, s.name, s.val)
                    return b
        return p

    root = prog.roots[k]
    value_grad = prog.helper("value_grad", Node._accumulate)  # as the eager pass hands it over
    # engine.backward_pass, run once on symbols: the gradients summed in a dict in the order
    # they arrive, each node's rule once all its uses have sent theirs
    grads: dict[int, Any] = {id(root): _Sym(em, "G", seed)}
    nodes: dict[int, Node] = {id(root): root}

    # While the loop's block is written: the sums it carries from one repetition to the next
    # (a leaf's gradient: "a0 = a0 + d" on every pass), by node id.
    sums: dict[int, str] = {}
    before_loop: list[_Line | str] = []
    looping: list[_Fold] = []

    def add(p: Node, d: _Sym) -> None:
        key = id(p)
        if not looping or looping[0].locate(key) is not None:
            grads[key] = grads[key] + d if key in grads else d
            return
        name = sums.get(key)
        if name is None:  # the first sum over repetitions into p: from what p has, or from -0.0,
            # which adds to any float giving it back to the bit, as the eager pass's first d
            name = sums[key] = f"a{len(sums)}"
            old = grads.get(key)
            before_loop.append(
                _Line(name, old.name, (old.name,)) if old is not None else _Line(name, "-0.0", ())
            )
        grads[key] = em.emit(f"{name} + {d.name}", d.val, (_Sym(em, name, d.val), d), target=name)

    def visit(n: Node, out: _Sym, ins: list[Any], params: tuple[Any, ...]) -> None:
        g = grads.pop(id(n), None)
        if g is None:  # no use of n sent a gradient (every rule skipped it)
            z = prog.kind.zeros_like(n, False)  # type: ignore[attr-defined]
            g = _Sym(em, em.fmt(z), z)
        op, parents, _ = prog.entries[id(n)]
        em.comment(f"{_op_note(op)}: {out.name}")
        input_grads = engine.call_backward(op, xp, g, out, ins, params, parents)
        for i, (p, d) in enumerate(zip(parents, input_grads)):  # noqa: B905 - call_backward
            if d is None or not p.requires_grad:
                continue
            if not isinstance(d, _Sym):
                d = _Sym(em, em.fmt(d), d)
            if tensor:
                d = _fit(em, d, p._data)
            elif not (d.val.__class__ is float or isinstance(d.val, (int, float))):
                p.fit_gradient(d.val, op, i)  # raises, naming the op
            add(p, d)
            nodes[id(p)] = p

    def visit_all(order: list[Node]) -> None:
        for n in order:
            params = prog.entries[id(n)][2]
            visit(n, fwd(n), [fwd(p) for p in prog.entries[id(n)][1]], param(params))

    order = prog.orders[k]
    run = _fold_order(prog.fold, order) if prog.fold is not None else None
    if run is None:
        visit_all(order)
    else:
        first, pattern = run
        fold = prog.fold
        assert fold is not None
        visit_all(order[:first])
        reps = fold.reps
        em.comment(
            f"the {reps} repetitions, the last first as the eager pass visits them: "
            f"{fold.rows}[i] holds repetition i's values"
        )
        # what the last repetition has been sent so far (the seed, the code after the run)
        slots: dict[int, str] = {}
        for key in list(grads):
            loc = fold.locate(key)
            if loc is None:
                continue
            if loc[0] != reps - 1:
                raise _NoFold("a gradient reaches an earlier repetition before the loop")
            name = slots[loc[1]] = f"h{len(slots)}"
            em.lines.append(_Line(name, grads[key].name, (grads[key].name,)))
            grads[key] = _Sym(em, name, grads[key].val)
        # A value the next repetition reads gets a gradient back from it; the last one has no
        # next, so it starts from -0.0, which adds to the first gradient it gets to the bit.
        unsent: set[int] = set()
        for q in fold.carried:
            n = fold.last[q]
            if q not in slots and n.requires_grad:
                name = slots[q] = f"h{len(slots)}"
                em.lines.append(_Line(name, "-0.0", ()))
                grads[id(n)] = _Sym(em, name, n._data)
                unsent.add(id(n))
        outer, body = em.lines, list[_Line | str]()
        em.lines = body
        cols = [_Column(em, f"c{i}", x) for i, x in enumerate(fold.table[-1])]
        col_of = {qs: cols[c] for qs, c in fold.columns.items()}
        names = [fwd_name(s) for s in fold.names]
        carried = {q: _Sym(em, f"u{i}", fold.names[q].val) for i, q in enumerate(fold.carried)}
        body.append(_Unpack(fold.row, f"{fold.rows}[i]", (fold.rows,)))
        if cols:
            body.append(_Unpack([c.name for c in cols], f"{prog.constant(fold.table)}[i]", ()))
        looping.append(fold)
        position = {id(n): q for q, n in enumerate(fold.last)}
        for n in pattern:
            q = position[id(n)]
            if id(n) in unsent and grads[id(n)].name == slots[q]:
                # the eager pass starts this one from zero, not from what the block adds to it
                raise _NoFold("a value the next repetition reads gets no gradient of its own")
            ins, sparams = _block_inputs(prog, n, q, names, carried, col_of, fwd)
            visit(n, names[q], ins, sparams)
        looping.clear()
        em.lines = outer
        # what the block sent to the repetition before it: the same places, on every pass
        ends: dict[int, _Sym] = {}
        for key in list(grads):
            loc = fold.locate(key)
            if loc is not None:
                if loc[0] != reps - 2:
                    raise _NoFold("the block sends a gradient further than one repetition back")
                ends[loc[1]] = grads.pop(key)
        if set(ends) != set(slots):
            raise _NoFold("the gradients the block sends back differ from those it receives")
        moves = [(slots[q], ends[q].name) for q in sorted(slots) if ends[q].name != slots[q]]
        if moves:
            news = tuple(b for _, b in moves)
            body.append(_Effect("", f"{', '.join(a for a, _ in moves)} = {', '.join(news)}", news))
        carry = set(slots.values()) | set(sums.values())
        em.lines += before_loop
        em.lines.append(
            _Loop(f"for i in range({reps - 1}, -1, -1):", ["i"], _prune(body, carry), carry)
        )
        # after the loop: what the first repetition sent to what it read before it
        for q, name in slots.items():
            n = fold.initial[q]
            if n.requires_grad:
                add(n, _Sym(em, name, ends[q].val))
                nodes[id(n)] = n
        visit_all(order[first + len(pattern) * reps :])
    em.comment("each leaf takes its gradient, in the order the eager pass hands them over")
    # A gradient a leaf may own: a new array made by a line here, read by no other line, sent
    # to one leaf. Any other (a view, a kept constant, the seed) is copied, as Tensor's own
    # _accumulate copies; a gradient the leaf already has is added to, as there.
    made = {ln.target for ln in em.lines if isinstance(ln, _Line) and ln.fresh}
    reads = collections.Counter(u for ln in em.lines if isinstance(ln, _Line) for u in ln.uses)
    reads.update(g.name for g in grads.values())
    for key, g in grads.items():
        n = nodes[key]
        ref = prog.leaf_refs.get(key)
        if ref is None or n is root:  # a constant made inside that requires grad: unreadable
            continue
        if tensor:
            kept = prog.helper("kept", prog.kept)
            j = len(prog.kept)
            # the array is also kept (kept[j]) until the leaf takes its next gradient, as NumPy
            # written by hand keeps d_w1 until the next step replaces it, rather than handing
            # a parameter-sized array back to the system every step
            prog.kept.append(None)
            owned = g.name in made and reads[g.name] == 1 and g.val.__class__ is np.ndarray
            mine = g.name if owned else f"{prog.helper('array', np.array)}({g.name})"
            grad = f"{ref}.grad"
            expr = f"{grad} = {kept}[{j}] = {mine} if {grad} is None else {grad} + {g.name}"
        else:
            expr = f"{value_grad}({ref}, {g.name})"
        em.lines.append(_Effect("", expr, (g.name,)))
    return _prune(em.lines, set())


def _define_backward(
    prog: _Program, kind: tuple[Any, ...], lines: list[_Line | str]
) -> Callable[..., Any]:
    """Define a backward from its lines, each forward value it reads bound where it is kept
    (S[i], a leaf, an argument). A value the forward did not save raises KeyError here, which
    sends the step to its eager rerun; the rules read the same values whatever the seed, so
    the backwards built at the trace have asked for all that any later one reads."""
    used = {u for ln in lines if isinstance(ln, _Line) for u in ln.uses}
    wanted = used & (set(prog.where) | prog.saveable)
    head = [_Line(name, prog.where[name], ()) for name in sorted(wanted, key=_name_key)]
    name = f"backward{len(prog.backwards)}"
    src, _ = _functions(name, ["G", "S", "A", "L"], [*head, *lines], [], set())
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
