"""A compiled call as one op of the graph: its forward is the generated forward, its backward
the generated backward, its parents the arguments and the parameters the trace read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine import OPS, NodeMath, Op, backward_pass

if TYPE_CHECKING:
    from .api import _Entry


class CompiledCall(Op):
    """out = output k of the generated forward;  d(parents) = the generated backward of output k.

    Its one param is the call (``_Call``): what the forward saved, and the arguments. When the
    pass is recorded (``create_graph``), the function runs again eagerly on the parents and the
    engine differentiates that graph, so a gradient of a compiled result has a graph of its own.
    """

    name = "compiled"
    makes_new_arrays = True  # the generated backward copies any gradient a parent may not own

    @staticmethod
    def forward(xp: Any, *args: Any) -> Any:
        raise TypeError("a compiled op runs through its Compiled function, not on its own")

    @staticmethod
    def backward(xp: Any, g: Any, out: Any, *inputs: Any) -> tuple[Any, ...]:
        call: _Call = inputs[-1]
        if xp is NodeMath:
            return call.recorded_backward(g)
        return call.backward(g)


# Not a primitive of the table (its rule is generated per trace, and the self-check compares it
# with the eager engine's), so the op-table tests do not walk it.
OPS.pop(CompiledCall.name)


class _Call:
    """One call of a compiled function: what its k-th output's backward needs."""

    __slots__ = ("args", "check", "entry", "flat", "k", "kwargs", "parents", "saved")

    def __init__(
        self,
        entry: _Entry,
        saved: list[Any],
        k: int,
        flat: Any,
        args: Any,
        kwargs: Any,
        parents: tuple[Any, ...],
    ) -> None:
        self.entry, self.saved, self.k, self.flat = entry, saved, k, flat
        self.args, self.kwargs, self.parents = args, kwargs, parents
        self.check: Any = None  # the eager run's output k, while the gradients are unchecked

    def backward(self, g: Any) -> tuple[Any, ...]:
        entry = self.entry
        fns = entry.backwards[self.k]
        if fns is None:  # the output did not depend on anything that needed a gradient
            return (None,) * len(self.parents)
        implied, general = fns
        fn = implied if implied is not None and _is_one(g, entry.seeds[self.k]) else general
        grads = fn(g, self.saved, self.flat, entry.leaves)
        if self.check is not None:
            return self.check_gradients(g, grads)
        return grads  # type: ignore[no-any-return]

    def recorded_backward(self, g: Any) -> tuple[Any, ...]:
        """The function again, eagerly, on the parents, and the engine's recorded pass."""
        self.check_arrays_unwritten()
        outs = self.entry.compiled.fn(*self.args, **self.kwargs)
        root = outs if self.entry.structure is None else outs[self.k]
        grads = backward_pass(root, g, create_graph=True)
        return tuple(grads.get(p) for p in self.parents)

    def check_arrays_unwritten(self) -> None:
        """Refuse to run the function again on an array argument written since the call: its
        graph would be of the new numbers, not of those the call's result was computed from."""
        program = self.entry.program
        for i, k in getattr(program, "arg_slots", {}).items():
            now = np.asarray(self.flat[i], dtype=self.saved[k].dtype)
            if now.shape != self.saved[k].shape or not np.array_equal(
                now, self.saved[k], equal_nan=True
            ):
                raise RuntimeError(
                    f"argument {i} of the compiled call (a NumPy array) was written after the "
                    "call: a backward with create_graph=True runs the function again on it and "
                    "would differentiate the new numbers. Call the compiled function again, or "
                    "write into a copy"
                )

    def check_gradients(self, g: Any, grads: tuple[Any, ...]) -> tuple[Any, ...]:
        """The self-check's second half: the eager pass's gradients, to the bit."""
        eager, self.check = self.check, None
        want = backward_pass(eager, g)
        entry = self.entry
        for i, p in enumerate(self.parents):
            if not p.requires_grad:
                continue
            got, expect = grads[i], want.get(p)
            if not entry.same(got, expect):
                entry.fail(
                    f"the gradient of {_describe(p, i)} from the generated backward differs from "
                    f"the eager engine's ({_difference(got, expect)})"
                )
                return tuple(want.get(p) for p in self.parents)  # fallback="eager" chosen
        entry.unchecked = False
        return grads


def _is_one(g: Any, seed: Any) -> bool:
    """Whether g is the implied seed 1 that ``backward()`` starts from (the implied backward
    computed what follows from it alone once, at the trace)."""
    if g.__class__ is float:
        return g == 1.0  # type: ignore[no-any-return]
    return bool(
        g.__class__ is np.ndarray
        and g.shape == seed.shape
        and g.dtype == seed.dtype
        and g.size == 1
        and g.item() == 1.0
    )


def _describe(p: Any, i: int) -> str:
    label = f" {p.label!r}" if p.label else ""
    shape = f" of shape {p._data.shape}" if isinstance(p._data, np.ndarray) else ""
    return f"parent {i} of the compiled op (a {type(p).__name__}{label}{shape})"


def _difference(got: Any, expect: Any) -> str:
    if got is None or expect is None:
        return f"{'none' if got is None else 'one'} against {'none' if expect is None else 'one'}"
    diff = np.max(np.abs(np.asarray(got, dtype=np.float64) - np.asarray(expect, np.float64)))
    return f"largest difference {diff!r}"
