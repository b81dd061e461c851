"""The graph Value and Tensor share: nodes, the order, the backward pass (ops: ops.py, modes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

# The math namespaces (xp) the pass hands to rules: FloatMath for Values, ArrayMath for Tensors,
# NodeMath when the pass is recorded. Exported so that other code runs rules as the pass does.
from .maths import ArrayMath, FloatMath, NodeMath  # noqa: F401
from .modes import (  # noqa: F401
    AnomalyError,
    GradMode,
    anomaly,
    check_finite,
    cycle_collector_paused,
    detect_anomaly,
    enable_grad,
    grad_enabled,
    is_grad_enabled,
    no_grad,
    short,
    tracing,
)
from .ops import OPS, Op  # noqa: F401

# How many times any node's data has been set: the clock of nodes' ``_made`` and ``_version``.
_data_writes = 0


class Node:
    """A node of the computation graph; Value and Tensor are its two front ends.

    It refers to its parents only, never to its children or to a closure, so a graph holds no
    reference cycles and is freed the moment its root is dropped.
    """

    __slots__ = (
        *("_data", "_made", "_version", "grad", "label"),
        *("op", "params", "parents", "requires_grad"),
    )

    grad: Any
    label: str
    op: type[Op] | None  # None for a leaf
    params: tuple[Any, ...]  # the op's arguments that are not differentiated
    parents: tuple[Node, ...]  # the op's inputs in order, repeats kept; () for a leaf
    requires_grad: bool
    xp: ClassVar[Any]  # the math namespace of a first-order pass over this kind of node

    def _leaf(self, data: Any, label: str, requires_grad: bool) -> None:
        self._data, self.label, self.requires_grad = data, label, requires_grad
        self.parents, self.op, self.params = (), None, ()
        self._version = self._made = _data_writes

    def _set_data(self, value: Any) -> None:
        # A new version: a backward pass through a graph recorded before it refuses to run
        # (PyTorch's version counter), rather than compute gradients from the new data.
        global _data_writes
        _data_writes += 1
        self._data, self._version = value, _data_writes

    def _get_data(self) -> Any:  # in a compile trace, a number read here would be frozen
        trace = tracing.get()
        return self._data if trace is None else trace.read_data(self)

    data = property(_get_data, _set_data, doc="The value: a float, or an ndarray.")

    def backward(
        self,
        grad: Any = None,
        *,
        create_graph: bool = False,
        retain_grads: bool = True,
        retain_graph: bool = True,
    ) -> None:
        """Add d(self)/d(node) into ``.grad`` of self and every node it was computed from.

        A second call adds to the first's gradients (the graph is kept: ``retain_graph`` changes
        nothing). With ``create_graph=True`` each ``.grad`` is a node that can be differentiated
        again; with ``retain_grads=False`` only leaves get one. A pass that raises writes no
        ``.grad``. Raises RuntimeError when self does not require grad, or when a node's data
        was set after the graph was recorded."""
        seed = self._seed(grad, create_graph)
        for node, g in backward_pass(self, seed, create_graph, retain_grads).items():
            node._accumulate(g)

    def _accumulate(self, g: Any) -> None:
        # A Value's grad starts at 0.0: replaced, so that a recorded gradient is g, not 0 + g.
        empty = self.grad is None or (self.grad.__class__ is float and self.grad == 0.0)
        self.grad = g if empty else self.grad + g

    # Each front end defines these: the gradient a pass starts from, what it accepts as an
    # input's gradient (or the error naming the op, the input and both shapes), the reset.
    def _seed(self, grad: Any, create_graph: bool) -> Any:  # pragma: no cover
        raise NotImplementedError

    def fit_gradient(self, g: Any, op: type[Op], i: int) -> Any:  # pragma: no cover
        """Return ``g`` as this node's gradient from input ``i`` of ``op``, or raise."""
        raise NotImplementedError

    def zero_grad(self) -> None:  # pragma: no cover
        """Reset the gradient before the next backward pass."""
        raise NotImplementedError


def record(cls: type[Node], data: Any, op: type[Op], parents: tuple, params: tuple = ()) -> Any:
    """A new ``cls`` node holding ``op``'s output: recorded in the graph when grad mode is on
    and some input requires grad, otherwise a constant with no parents."""
    node = cls.__new__(cls)
    node._data, node.grad, node.label = data, cls.empty_grad, ""  # type: ignore[attr-defined]
    node._version = node._made = _data_writes
    needed = False
    if grad_enabled.get():
        for p in parents:
            if p.requires_grad:
                needed = True
                break
    node.parents, node.op, node.params = (parents, op, params) if needed else ((), None, ())
    node.requires_grad = needed
    if anomaly.get():
        check_finite(data, f"op {op.name} (forward)")
    if (trace := tracing.get()) is not None:  # compile is tracing: constants' ops too
        trace.node(node, op, parents, params)
    return node


def toposort(root: Node) -> list[Node]:
    """Root and every computed node it depends on, each after all the nodes that use it.

    Leaves are left out: nothing comes after them. Iterative (Kahn's algorithm, counting each
    node's uses as autodidact's toposort does), so a million-deep chain needs no recursion.
    """
    uses: dict[Node, int] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if node in uses:
            uses[node] += 1
            continue
        uses[node] = 1
        for p in node.parents:
            if p.op is not None:
                stack.append(p)
    order = []
    ready = [root] if root.op is not None else []  # every use of these has been placed
    while ready:
        node = ready.pop()
        order.append(node)
        for p in node.parents:
            if p.op is not None:
                uses[p] -= 1
                if uses[p] == 0:
                    ready.append(p)
    return order


def backward_pass(
    root: Node, seed: Any, create_graph: bool = False, keep_computed: bool = True
) -> dict[Node, Any]:
    """Return d(root)/d(node) for root and each node it depends on that requires grad
    (leaves only with ``keep_computed=False``: a computed node's is dropped once used).

    Nothing is written into any node: gradients are summed in a dict local to the pass, so a
    pass that raises leaves no trace, and a rule may run a pass of its own.
    """
    if not root.requires_grad:
        raise RuntimeError(
            "backward() on a node that does not require grad: it was made from constants "
            "only, or under no_grad()"
        )
    xp = NodeMath if create_graph else type(root).xp
    grads = {root: seed}
    # The pass makes no reference cycles, and a first-order pass records nothing.
    with cycle_collector_paused(), GradMode(create_graph):
        for node in toposort(root):
            if node._made < _data_writes:  # some data was set since node was recorded
                _check_unchanged(node)
            op: Any = node.op
            parents = node.parents
            inputs = parents if create_graph else [p._data for p in parents]
            out = node if create_graph else node._data
            g = grads[node] if keep_computed else grads.pop(node)
            input_grads = call_backward(op, xp, g, out, inputs, node.params, parents)
            for i, parent in enumerate(parents):  # call_backward checked the count
                d = input_grads[i]
                if d is not None and parent.requires_grad:
                    d = parent.fit_gradient(d, op, i)
                    total = grads.get(parent)  # a node used twice sums both gradients
                    grads[parent] = d if total is None else total + d
    return grads


def call_backward(
    op: Any, xp: Any, g: Any, out: Any, inputs: Sequence, params: tuple, parents: Sequence[Node]
) -> Sequence[Any]:
    """Run ``op``'s rule as the pass does; ``inputs`` are what it computes on (the parents'
    data, or the parents in a recorded pass). Returns one gradient (or None) per input.

    Raises TypeError when the rule does not return that, ArithmeticError when a float rule
    divides by zero or overflows, AnomalyError in detect_anomaly() for a non-finite gradient.
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
        raise (AnomalyError if anomaly.get() else ArithmeticError)(message) from None
    if not isinstance(grads, (tuple, list)) or len(grads) != len(inputs):
        many = isinstance(grads, (tuple, list))
        got = f"{len(grads)} gradients" if many else f"a {type(grads).__name__}, not a tuple"
        raise TypeError(
            f"the backward of {op.name} returned {got}: it must return a tuple of one gradient "
            f"(or None) per input, and the op has {len(inputs)} input(s)"
        )
    if anomaly.get():
        for d in grads:
            if d is not None:
                check_finite(d, f"the backward of {op.name}")
    return grads


def _check_unchanged(node: Node) -> None:
    """Raise naming the node, or the input, whose data was set after the node was recorded."""
    for x in (node, *node.parents):
        if x._version > node._made:
            name = f" {x.label!r}" if x.label else ""
            raise RuntimeError(
                f"the data of a {type(x).__name__}{name} (now {short(x._data)}) was changed "
                f"after {node.op.name if node.op else '?'} used it in the forward pass: its "
                "gradient would come from the new data. Run the forward pass again."
            )


def gradients(
    root: Node, inputs: Sequence[Node], grad: Any = None, *, create_graph: bool = False
) -> list[Any]:
    """Return d(root)/d(input) for each input, leaving every ``.grad`` untouched.

    An input root does not depend on gets a zero gradient of its own kind and shape.
    With ``create_graph=True`` the results are nodes with graphs of their own.
    """
    grads = backward_pass(root, root._seed(grad, create_graph), create_graph)
    zero: Any = type(root).zeros_like  # type: ignore[attr-defined]
    return [grads[x] if x in grads else zero(x, create_graph) for x in inputs]
