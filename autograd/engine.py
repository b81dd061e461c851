"""The graph engine Value and Tensor share: nodes, ops, the order, the backward pass, grad mode."""

from __future__ import annotations

import contextlib
import gc
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from .maths import ArrayMath, FloatMath, NodeMath

__all__ = [
    "OPS",
    "AnomalyError",
    "ArrayMath",
    "FloatMath",
    "Node",
    "NodeMath",
    "Op",
    "backward_pass",
    "call_backward",
    "detect_anomaly",
    "enable_grad",
    "gradients",
    "is_grad_enabled",
    "no_grad",
    "record",
    "toposort",
]


class AnomalyError(FloatingPointError):
    """Raised in `detect_anomaly()` by the first op whose output or gradient is NaN or infinite."""


class _Mode(threading.local):
    """Grad mode and anomaly mode, one pair per thread: a no_grad() in one thread is its own."""

    grad_enabled = True
    anomaly = False


_mode = _Mode()

# How many times any node's data has been set: the clock that tells a change made after a node
# was recorded (``_version`` greater than the node's ``_made``) from one made before.
_data_writes = 0


# --- ops ------------------------------------------------------------------------------------------

OPS: dict[str, type[Op]] = {}
"""Every op class, by name: the table the tests walk so that no op goes unchecked."""


class Op:
    """One differentiable operation: its forward and its local derivative, written once as math.

    ``forward(xp, *inputs, *params)`` returns the output;
    ``backward(xp, g, out, *inputs, *params)`` returns one gradient (or None) per input.
    ``xp`` is the math namespace for what the arguments are (floats, arrays, or nodes when the
    pass is recorded), so one rule serves all three. ``params`` are the op's non-differentiable
    arguments (a number operand, an exponent, an axis). An op that sets ``takes_needs_grad``
    is also given ``needs_grad=`` (a bool per input) and may skip the work for the others.
    """

    name: ClassVar[str] = "Op"
    takes_needs_grad: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__
        OPS[cls.name] = cls

    @staticmethod
    def forward(xp: Any, *args: Any) -> Any:
        """Return the op's output computed from its inputs' data (and params)."""
        raise NotImplementedError

    @staticmethod
    def backward(xp: Any, g: Any, out: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Return one gradient per input, given the output's gradient ``g``."""
        raise NotImplementedError


# --- nodes ----------------------------------------------------------------------------------------


class Node:
    """A node of the computation graph; Value and Tensor are its two front ends.

    A node refers only to its parents, never to its children or to a closure, so a graph holds
    no reference cycles and is freed the moment its root is dropped.
    """

    __slots__ = (
        "_data",
        "_made",
        "_version",
        "grad",
        "label",
        "op",
        "params",
        "parents",
        "requires_grad",
    )

    grad: Any
    label: str
    op: type[Op] | None  # None for a leaf
    params: tuple[Any, ...]  # the op's non-differentiable arguments
    parents: tuple[Node, ...]  # the op's inputs in order, repeats kept; () for a leaf
    requires_grad: bool
    xp: ClassVar[Any]  # the math namespace of a first-order pass over this kind of node

    def _leaf(self, data: Any, label: str, requires_grad: bool) -> None:
        self._data, self.label, self.requires_grad = data, label, requires_grad
        self.parents, self.op, self.params = (), None, ()
        self._version = self._made = _data_writes

    @property
    def data(self) -> Any:
        """The node's value: a float for a Value, an ndarray for a Tensor."""
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        # Setting data marks the node changed, so a backward pass through a graph recorded
        # before the change refuses to run (PyTorch's version counter).
        global _data_writes
        _data_writes += 1
        self._data, self._version = value, _data_writes

    def fit_gradient(self, g: Any, op: type[Op], i: int) -> Any:  # pragma: no cover
        """Return ``g`` as this node's gradient, or raise naming ``op``, input ``i`` and shapes."""
        raise NotImplementedError

    def backward(
        self,
        grad: Any = None,
        *,
        create_graph: bool = False,
        retain_grads: bool = True,
        retain_graph: bool = True,
    ) -> None:
        """Add d(self)/d(node) into ``.grad`` of self and every node it was computed from.

        Calling it twice adds the second pass's gradients to the first's: the graph is never
        freed by a pass (``retain_graph`` is accepted for PyTorch habits and changes nothing).
        With ``create_graph=True`` the pass itself is recorded: each ``.grad`` becomes a node
        that can be differentiated again. With ``retain_grads=False`` only leaves get a
        ``.grad``, as in PyTorch. A pass that raises writes no ``.grad`` anywhere.
        Raises RuntimeError when self does not require grad, or when a node's data was set
        after the graph was recorded.
        """
        del retain_graph
        grads = backward_pass(self, self._seed(grad, create_graph), create_graph, retain_grads)
        for node, g in grads.items():
            node._accumulate(g)

    def _accumulate(self, g: Any) -> None:
        """Add one pass's gradient into ``.grad``."""
        self.grad = g if _is_zero(self.grad) else self.grad + g

    def _seed(self, grad: Any, create_graph: bool) -> Any:  # pragma: no cover - front ends
        raise NotImplementedError

    def zero_grad(self) -> None:  # pragma: no cover - each front end has its own
        """Reset the gradient before the next backward pass."""
        raise NotImplementedError


def _is_zero(grad: Any) -> bool:
    return grad is None or (grad.__class__ is float and grad == 0.0)


def record(cls: type[Node], data: Any, op: type[Op], parents: tuple, params: tuple = ()) -> Any:
    """Return a new ``cls`` node holding ``op``'s output, recorded in the graph when grad mode
    is on and some input requires grad; otherwise a constant with no parents.
    """
    node = cls.__new__(cls)
    node._data, node.grad, node.label = data, cls.empty_grad, ""  # type: ignore[attr-defined]
    node._version = node._made = _data_writes
    node.requires_grad = _mode.grad_enabled and any(p.requires_grad for p in parents)
    if node.requires_grad:
        node.parents, node.op, node.params = parents, op, params
    else:
        node.parents, node.op, node.params = (), None, ()
    if _mode.anomaly:
        _check_finite(data, f"op {op.name} (forward)")
    return node


# --- the backward pass ----------------------------------------------------------------------------


def toposort(root: Node) -> list[Node]:
    """Root and every computed node it depends on, each after all the nodes that use it.

    Leaves are left out: their gradient is complete as soon as it arrives. Iterative (Kahn's
    counts, as autodidact's toposort), so a chain a million nodes deep needs no recursion.
    """
    child_counts: dict[Node, int] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if node in child_counts:
            child_counts[node] += 1
        else:
            child_counts[node] = 1
            stack.extend([p for p in node.parents if p.op is not None])
    order = []
    childless = [root] if root.op is not None else []
    while childless:
        node = childless.pop()
        order.append(node)
        for parent in node.parents:
            if parent.op is None:
                continue
            if child_counts[parent] == 1:
                childless.append(parent)
            else:
                child_counts[parent] -= 1
    return order


def backward_pass(
    root: Node, seed: Any, create_graph: bool = False, keep_computed: bool = True
) -> dict[Node, Any]:
    """Return d(root)/d(node) for every node root depends on that requires grad (root included;
    with ``keep_computed=False`` the leaves only, each computed node's dropped once used).

    Nothing is written into any node: the gradients are summed in a dict local to the pass,
    so a pass that raises leaves no trace, and a rule may itself run a backward pass.
    """
    if not root.requires_grad:
        raise RuntimeError(
            "backward() on a node that does not require grad: it was made from constants "
            "only, or under no_grad()"
        )
    xp = NodeMath if create_graph else type(root).xp
    grads = {root: seed}
    gc_was_on = gc.isenabled()
    gc.disable()  # the pass makes no reference cycles: the collector would only walk the graph
    try:
        with _GradMode(create_graph):  # a first-order pass records nothing
            for node in toposort(root):
                _check_unchanged(node)
                op: Any = node.op  # never None: leaves have no place in the order
                parents = node.parents
                inputs = parents if create_graph else [p._data for p in parents]
                out = node if create_graph else node._data
                g = grads[node] if keep_computed else grads.pop(node)
                input_grads = call_backward(op, xp, g, out, inputs, node.params, parents)
                for i, (parent, d) in enumerate(zip(parents, input_grads, strict=True)):
                    if d is None or not parent.requires_grad:
                        continue
                    d = parent.fit_gradient(d, op, i)
                    grads[parent] = grads[parent] + d if parent in grads else d
    finally:
        if gc_was_on:
            gc.enable()
    return grads


def call_backward(
    op: Any, xp: Any, g: Any, out: Any, inputs: Sequence, params: tuple, parents: Sequence[Node]
) -> Sequence[Any]:
    """Run ``op``'s rule as the backward pass does; return one gradient (or None) per input.

    ``inputs`` are what the rule computes on (the parents' data, or the parents themselves in
    a recorded pass); ``parents`` say which inputs need a gradient.

    Raises TypeError when the rule does not return one per input, ArithmeticError when a
    float rule divides by zero or overflows, and AnomalyError inside detect_anomaly() for a
    non-finite gradient.
    """
    try:
        if op.takes_needs_grad:
            needs_grad = tuple([p.requires_grad for p in parents])
            grads = op.backward(xp, g, out, *inputs, *params, needs_grad=needs_grad)
        else:
            grads = op.backward(xp, g, out, *inputs, *params)
    except (ZeroDivisionError, OverflowError) as e:  # floats raise where NumPy gives inf
        at = ", ".join(repr(getattr(x, "data", x)) for x in inputs)
        message = f"the backward of {op.name} at ({at}) is infinite: {e}"
        raise (AnomalyError if _mode.anomaly else ArithmeticError)(message) from None
    if not isinstance(grads, (tuple, list)) or len(grads) != len(inputs):
        got = (
            f"{len(grads)} gradients"
            if isinstance(grads, (tuple, list))
            else f"a {type(grads).__name__}, not a tuple"
        )
        raise TypeError(
            f"the backward of {op.name} returned {got}: it must return a tuple of one gradient "
            f"(or None) per input, and the op has {len(inputs)} input(s)"
        )
    if _mode.anomaly:
        for x in grads:
            if x is not None:
                _check_finite(x, f"the backward of {op.name}")
    return grads


def _check_unchanged(node: Node) -> None:
    """Raise when the node's data, or an input's, was set after the node was recorded."""
    for x in (node, *node.parents):
        if x._version > node._made:
            name = f" {x.label!r}" if x.label else ""
            raise RuntimeError(
                f"the data of a {type(x).__name__}{name} (now {_short(x._data)}) was changed "
                f"after {node.op.name if node.op else 'it'} used it in the forward pass: the "
                "gradient would be computed from the new data. Run the forward pass again."
            )


def gradients(
    root: Node, inputs: Sequence[Node], grad: Any = None, *, create_graph: bool = False
) -> list[Any]:
    """Return d(root)/d(input) for each input, leaving every ``.grad`` untouched.

    An input that root does not depend on gets a zero gradient of its own kind and shape.
    With ``create_graph=True`` the results are nodes with graphs of their own.
    """
    grads = backward_pass(root, root._seed(grad, create_graph), create_graph)
    return [grads[x] if x in grads else x.zeros_like(x, create_graph) for x in inputs]  # type: ignore[attr-defined]


# --- grad mode and anomaly detection --------------------------------------------------------------


def is_grad_enabled() -> bool:
    """Return True when new operations are being recorded for backward (in this thread)."""
    return _mode.grad_enabled


class _GradMode(contextlib.ContextDecorator):
    """Context manager and decorator that sets this thread's grad mode, restoring it on exit."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(_mode.grad_enabled)
        _mode.grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        _mode.grad_enabled = self._previous.pop()


def no_grad() -> _GradMode:
    """Record nothing inside: results are constants with no parents and cost no backward work.

    Use as ``with no_grad(): ...`` or as a decorator ``@no_grad()``. Affects this thread only.
    """
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Turn recording back on inside a ``no_grad()`` block (context manager or decorator)."""
    return _GradMode(True)


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise AnomalyError at the first op whose output or gradient is NaN or infinite.

    The check costs one pass over each result, so it is off unless asked for (in this thread).
    """
    previous = _mode.anomaly
    _mode.anomaly = True
    try:
        yield
    finally:
        _mode.anomaly = previous


def _check_finite(x: Any, where: str) -> None:
    data = x._data if isinstance(x, Node) else x
    if not (math.isfinite(data) if isinstance(data, float) else np.all(np.isfinite(data))):
        raise AnomalyError(f"{where} produced a non-finite value: {_short(data)}")


def _short(x: Any) -> str:
    text = (
        repr(x)
        if isinstance(x, float)
        else np.array2string(np.asarray(x), precision=4, threshold=8)
    )
    return text if len(text) < 120 else text[:117] + "..."
