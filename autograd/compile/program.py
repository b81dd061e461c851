"""One traced graph's program: the globals its generated code reads, and its source."""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import engine
from ..engine import Node
from .emit import _Emitter, _Line, _Sym
from .errors import CompileError
from .trace import _Derived, _same_array


class _Program:
    """One traced graph: the generated forward, the backward(s), and what they read."""

    def __init__(self, kind: type[Node]) -> None:
        self.kind = kind  # Tensor: a Value trace has a program of its own (scalar.py)
        self.real_math = kind.xp
        self.globals: dict[str, Any] = {"__builtins__": builtins}
        self.fn_names: dict[int, str] = {}
        self.constants: dict[int, str] = {}
        self.const_notes: list[str] = []
        self.arg_arrays: list[tuple[np.ndarray, str]] = []
        self.mask_syms: list[tuple[_Derived, _Sym]] = []
        self.roots: list[Node] = []
        self.orders: dict[int, list[Node]] = {}
        self.entries: dict[int, tuple[Any, tuple[Node, ...], tuple[Any, ...]]] = {}
        self.fsym: dict[int, _Sym] = {}  # forward value of each node, by node id
        self.where: dict[str, str] = {}  # a forward name -> how the backward reads it again
        self.saveable: set[str] = set()  # the forward values a backward could read again
        # argument i (a NumPy array) -> the name of the copy the forward binds, and where S
        # keeps it: a recorded backward checks the caller's array still holds those numbers
        self.arg_copies: dict[int, str] = {}
        self.arg_slots: dict[int, int] = {}
        self.forward_lines: list[_Line | str] = []  # the forward, until it is defined
        self.returns: list[str] = []
        self.forward: Callable[..., Any] | None = None
        self.forward_source = ""
        self.backward_sources: dict[Any, str] = {}
        self.backwards: dict[Any, Callable[..., Any]] = {}
        self.parent_index: dict[int, int] = {}  # node id -> its place among the op's parents
        self.n_parents = 0

    def function(self, name: str, fn: Any) -> str:
        """A global for a math namespace's function, under that namespace's own attribute name."""
        ref = self.fn_names.get(id(fn))
        if ref is None:
            if not (name.isidentifier() and getattr(self.real_math, name, None) is fn):
                raise CompileError("an op called a function compile cannot name")
            ref = name if name not in self.globals else f"{name}_{len(self.fn_names)}"
            self.globals[ref] = fn
            self.fn_names[id(fn)] = ref
        return ref

    def helper(self, name: str, fn: Any) -> str:
        self.globals[name] = fn
        return name

    def constant(self, x: Any) -> str:
        ref = self.constants.get(id(x))
        if ref is None:
            ref = f"k{len(self.constants)}"
            self.constants[id(x)] = ref
            self.globals[ref] = x
            self.const_notes.append(f"{ref}: {_describe(x)}")
        return ref

    def arg_sym(self, p: Any) -> Any:
        """An argument's very array among an op's params (a where's condition passed in) as
        the argument's symbol, read anew on every call; any other param as it is."""
        if isinstance(p, np.ndarray):
            for arr, name in self.arg_arrays:
                if _same_array(p, arr):
                    return next(s for s in self.fsym.values() if s.name == name)
        return p

    def array_name(self, a: np.ndarray, em: _Emitter) -> str | None:
        """The name of an array that is an argument's data or a traced comparison, else None."""
        for arr, name in self.arg_arrays:
            if _same_array(a, arr):
                return name
        for mask, s in self.mask_syms:
            if _same_array(a, mask):
                return s.name
        for arr, _ in self.arg_arrays:
            if np.shares_memory(a, arr):
                raise CompileError(
                    f"the function uses part of an argument's array (shape {a.shape}) taken "
                    "outside the graph (through .data or NumPy), which compile would freeze: "
                    "index or reshape the Tensor itself instead"
                )
        return None

    def release(self) -> None:
        """Drop the traced graph once the code is built: a scalar graph's thousands of nodes
        would otherwise stay alive for the collector to walk at every collection."""
        self.fsym.clear()
        self.entries.clear()
        self.orders.clear()
        self.mask_syms.clear()
        self.roots = []

    @property
    def source(self) -> str:
        head = [f"# {note}" for note in self.const_notes]
        parts = [_LEGEND, *head, self.forward_source, *self.backward_sources.values()]
        return "\n".join(parts)


_LEGEND = """\
# The names of this code:
#   A  the call's arguments (x0, x1 ... their arrays),
#   L  the leaves it reads on every call, the op's other parents (p0, p1 ... their arrays),
#   S  what the forward saves for a backward
#   t0 ... values of the forward, k0 ... constants kept from the trace (listed below)
#   G  the gradient of the output, g0 ... gradients, r0 ... a gradient copied for its parent
#   forward and backward0 ... return what the compiled op's forward and backward return"""


def _describe(x: Any) -> str:
    """What a kept constant is, for a comment: its kind and shape, never its text."""
    if isinstance(x, np.ndarray):
        return f"an array {x.shape} {x.dtype.name}, kept from the trace"
    if isinstance(x, np.generic):
        return f"a NumPy {x.dtype.name} scalar, kept from the trace"
    if isinstance(x, np.dtype):
        return f"the dtype {x.name}"
    if isinstance(x, type) and issubclass(x, engine.Op):
        return "an op of ops.py" if x.__module__ == _OPS_MODULE else "an op class"
    if isinstance(x, float):
        return "a float" if math.isfinite(x) else "a float that is not finite"
    return f"a {type(x).__name__}"


_OPS_MODULE = engine.__name__.rsplit(".", 1)[0] + ".ops"


def _op_note(op: Any) -> str:
    """The op's class name for a comment, when the op is one of ours (ops.py)."""
    name = getattr(op, "__name__", "")
    return name if op.__module__ == _OPS_MODULE and name.isidentifier() else "an op"
