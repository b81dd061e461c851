"""The backward: the eager pass's loop, run once on symbols."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import engine
from ..engine import Node
from ..tensor import unbroadcast_axes
from .emit import _Emitter, _Line, _reduce, _Sym, _SymMath
from .program import _op_note, _Program
from .source import _define, _functions, _name_key, _prune
from .trace import _same_array

# ---------------------------------------------------------------------------------------------
# The backward: the eager pass's loop, run once on symbols


def _seed_kind(k: int, seed: Any, implied: bool) -> tuple[Any, ...]:
    """What a backward is generated for: output k, a seed of this class, shape and dtype."""
    return (k, implied, seed.__class__, getattr(seed, "shape", None), getattr(seed, "dtype", None))


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
    bw.visit_all(prog.orders[k])
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
        key, grads = id(p), self.grads
        grads[key] = grads[key] + d if key in grads else d

    def visit(self, n: Node, out: _Sym, ins: list[Any], params: tuple[Any, ...]) -> None:
        prog, em = self.prog, self.em
        g = self.grads.pop(id(n), None)
        if g is None:  # no use of n sent a gradient (every rule skipped it)
            z = prog.kind.zeros_like(n, False)  # type: ignore[attr-defined]
            g = _Sym(em, em.fmt(z), z)
        op, parents, _ = prog.entries[id(n)]
        em.comment(f"{_op_note(op)}: {out.name}")
        input_grads = engine.call_backward(op, self.xp, g, out, ins, params, parents)
        for p, d in zip(parents, input_grads):  # noqa: B905 - call_backward
            if d is None or not p.requires_grad:
                continue
            if not isinstance(d, _Sym):
                d = _Sym(em, em.fmt(d), d)
            self.add(p, _fit(em, d, p._data))

    def visit_all(self, order: list[Node]) -> None:
        entries = self.prog.entries
        for n in order:
            _, parents, params = entries[id(n)]
            self.visit(n, self.fwd(n), [self.fwd(p) for p in parents], self.param(params))


def _returns(
    prog: _Program, em: _Emitter, grads: dict[int, Any], root: Node
) -> tuple[list[_Line | str], list[str]]:
    """The backward's lines and what it returns: one gradient per parent of the compiled op
    (None for a parent it sends none), which the engine's pass hands on as any op's. A
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
        owned = name in made and reads[name] == 1 and g.val.__class__ is np.ndarray
        if not owned:
            name = f"r{at}"
            em.lines.append(_Line(name, f"{prog.helper('array', np.array)}({g.name})", (g.name,)))
        returns[at] = name
    live = {r for r in returns if r != "None"}
    return _prune(em.lines, live), returns


def _define_backward(
    prog: _Program, kind: tuple[Any, ...], built: tuple[list[_Line | str], list[str]]
) -> Callable[..., Any]:
    """Define a backward from its lines, each forward value it reads bound where it is kept
    (S[i], a leaf, an argument). Every backward is built at the trace, before the forward is
    defined, and the forward saves what they read."""
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
