"""The graph engine Value and Tensor share: nodes, grad mode, the backward pass, anomaly checks."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "OPS",
    "AnomalyError",
    "Node",
    "Op",
    "detect_anomaly",
    "enable_grad",
    "gradients",
    "is_grad_enabled",
    "no_grad",
]

# Module globals rather than thread-locals: every op reads them, and a global read is the cheapest
# lookup Python has. The engine, like micrograd's, is meant for one thread at a time.
_grad_enabled = True
_anomaly = False


class AnomalyError(FloatingPointError):
    """Raised in `detect_anomaly()` by the first op whose output or gradient is NaN or infinite."""


# ---------------------------------------------------------------------------------------------
# Ops


OPS: dict[str, type[Op]] = {}
"""Every op class, by name: the table the tests walk so that no op goes unchecked."""


class Op:
    """One differentiable operation: its forward and its local derivative, written once as math.

    Subclasses define two static methods:

    - ``forward(m, *xs, *saved)`` returns the output from the inputs' data.
    - ``backward(m, need, g, out, *xs, *saved)`` returns one gradient per input, in input order.

    ``m`` is a small math namespace (exp, log, sum, ...) that matches what the arguments are: plain
    floats, NumPy arrays, or graph nodes when the backward pass is itself being recorded
    (``create_graph=True``). Written against ``m`` and the ordinary operators, one rule serves all
    three. ``saved`` holds the op's non-differentiable arguments (an exponent, an axis, an index).
    ``need[i]`` is False when input ``i`` needs no gradient. An op whose class sets ``skips = True``
    receives it and may return None for that input instead of doing the work; other ops get None.
    Broadcasting is undone by the engine, so a rule may return a gradient of the broadcast shape.
    """

    name: ClassVar[str] = "op"
    skips: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__
        cls.skips = cls.skips  # in the class's own dict: the backward loop reads it per node
        OPS[cls.name] = cls

    @staticmethod
    def forward(m: Any, *args: Any) -> Any:
        """Return the op's output computed from its inputs' data (and saved arguments)."""
        raise NotImplementedError

    @staticmethod
    def backward(m: Any, need: Any, g: Any, out: Any, *args: Any) -> tuple[Any, ...]:
        """Return one gradient per input, given the output's gradient ``g``."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Nodes


class Node:
    """A node of the computation graph; Value and Tensor are its two front ends.

    A node refers only to its parents, never to its children or to a closure, so a graph holds no
    reference cycles and is freed the moment its root is dropped.

    ``parents`` is the ordered tuple of the inputs, repeats kept. It is stored as the first two
    parents in slots of their own and the rest in a tuple: nearly every node has one or two
    parents, and a tuple of its own would cost each node 48 bytes (a million-node chain keeps
    136 bytes a node instead of 168).
    """

    __slots__ = ("_g", "data", "grad", "op", "p0", "p1", "pn", "requires_grad", "saved")

    data: Any
    grad: Any
    p0: Node | None  # the first parent, None for a leaf
    p1: Node | None  # the second parent, None when there are fewer than two
    pn: tuple[Node, ...]  # the third parent on
    op: type[Op] | None
    saved: tuple[Any, ...]
    requires_grad: bool
    _g: Any  # gradient being accumulated during one backward pass; None outside it

    # Set by each front end: the math namespace its first-order rules run on, and whether its
    # gradients can arrive broadcast and must be summed back to the input's shape.
    math: ClassVar[Any]
    broadcasts: ClassVar[bool] = False

    @property
    def parents(self) -> tuple[Node, ...]:
        """The nodes this one was computed from, in the op's input order, repeats kept."""
        if self.p0 is None:
            return ()
        if self.p1 is None:
            return (self.p0,)
        return (self.p0, self.p1, *self.pn)

    def _init_leaf(self, requires_grad: bool) -> None:
        """Set the fields every leaf shares: no parents, no op, nothing saved."""
        self.p0 = self.p1 = None
        self.pn = ()
        self.op = None
        self.saved = ()
        self.requires_grad = requires_grad
        self._g = None

    def _seed(
        self, grad: Any, create_graph: bool = False, shared: bool = False
    ) -> Any:  # pragma: no cover - overridden
        """The gradient backward starts from: ``grad``, or 1 for a single-element root.

        With ``shared`` an implied 1 may be a shared read-only constant: only when the pass
        keeps no gradient but the leaves', which copy what they cannot own.
        """
        raise NotImplementedError

    def zero_grad(self) -> None:  # pragma: no cover - each front end has its own
        """Reset the gradient before the next backward pass."""
        raise NotImplementedError

    def backward(
        self,
        grad: Any = None,
        *,
        create_graph: bool = False,
        retain_graph: bool = True,
        retain_grads: bool = True,
    ) -> None:
        """Accumulate d(self)/d(node) into ``.grad`` of every node that produced self.

        Calling it twice adds the second pass's gradients to the first's, on leaves and
        intermediate nodes alike: the graph is never freed by a backward pass, so there is nothing
        to retain (``retain_graph`` is accepted for PyTorch habits and has no effect). Call
        ``zero_grad`` (nn) or reset ``.grad`` between steps.
        With ``create_graph=True`` the pass itself is recorded: each ``.grad`` becomes a node that
        can be differentiated again. With ``retain_grads=False`` only leaves keep a ``.grad``, as in
        PyTorch: a training step then holds no gradient of any activation, which halves its
        memory and, for big arrays, spares the allocator's work.
        """
        del retain_graph
        seed = self._seed(grad, create_graph, not retain_grads)
        _run(self, seed, create_graph, None, retain_grads)


def gradients(
    root: Node, inputs: Sequence[Node], grad: Any = None, *, create_graph: bool = False
) -> list[Any]:
    """Return d(root)/d(input) for each input, leaving every ``.grad`` untouched.

    An input that root does not depend on gets a zero gradient of its own shape.
    With ``create_graph=True`` the results are nodes with graphs of their own.
    """
    return _run(root, root._seed(grad, create_graph), create_graph, list(inputs), False)


# Markers a node's scratch slot ``_g`` holds while the order is being found: on the stack with
# its parents still open, or placed in the order with no gradient arrived yet.
_OPEN = object()
_PLACED = object()


def _order(root: Node) -> list[Node]:
    """Every computed node root depends on that needs a gradient, each before the nodes it feeds.

    The root comes last: the backward pass pops nodes off the end, so the list shrinks while
    the gradients it creates grow, and the pass's peak memory stays that of the graph.
    Leaves are left out (the root aside): a leaf's gradient is added in where it arrives, so a
    leaf needs no place in the order, and a network's parameters cost the search nothing.

    An iterative depth-first search (an explicit stack), so a chain a million nodes deep needs no
    recursion; it marks nodes in their ``_g`` slot rather than in a set, which is faster.
    """
    order: list[Node] = []
    place = order.append
    stack = [root]
    push, pop = stack.append, stack.pop
    try:
        while stack:
            n = stack[-1]
            mark = n._g
            if mark is None:
                n._g = _OPEN
                p = n.p0
                # A run of one-input nodes (a chain) is opened in one go: each is on top of the
                # stack as soon as it is pushed, so it is opened here rather than a round later.
                while p is not None and n.p1 is None:
                    if p._g is None and p.op is not None and p.requires_grad:
                        push(p)
                        p._g = _OPEN
                        n = p
                        p = n.p0
                    else:
                        p = None
                if p is not None:
                    if p._g is None and p.op is not None and p.requires_grad:
                        push(p)
                    p = n.p1
                    if p is not None:
                        if p._g is None and p.op is not None and p.requires_grad:
                            push(p)
                        for p in n.pn:
                            if p._g is None and p.op is not None and p.requires_grad:
                                push(p)
            else:
                pop()
                if mark is _OPEN:
                    n._g = _PLACED
                    place(n)
                    # and every open node below it whose inputs are now all placed: the chain
                    # opened in one go above is placed in one go here
                    while stack and stack[-1]._g is _OPEN:
                        n = pop()
                        n._g = _PLACED
                        place(n)
    except BaseException:  # KeyboardInterrupt included: stale marks would corrupt the next pass
        for n in (*order, *stack):
            n._g = None
        raise
    return order


def _run(
    root: Node, seed: Any, create_graph: bool, inputs: list[Node] | None, retain: bool
) -> list[Any]:
    """The one backward driver: every node's rule runs once, after all its uses sent their gradient.

    Gradients of a node used twice (``a + a``) are summed before they travel on.
    """
    global _grad_enabled
    if not root.requires_grad:
        raise RuntimeError(
            "backward() on a node that does not require grad: it was made from constants "
            "only, or under no_grad()"
        )
    cls = type(root)
    broadcasts = cls.broadcasts
    anomaly = _anomaly
    plain = not broadcasts and not anomaly  # gradients pass on untouched: the scalar fast path
    owns = broadcasts and not create_graph  # leaves keep arrays of their own (Tensor._accumulate)
    zeros = cls.zeros_like  # type: ignore[attr-defined]
    ndarray = np.ndarray
    # Rules see plain data in a first-order pass and nodes in a recorded one (create_graph).
    m = cls.node_math if create_graph else cls.math  # type: ignore[attr-defined]
    wanted = None if inputs is None else set(inputs)
    found: dict[Node, Any] = {}
    # Leaves sum their gradient in ``_g`` like any node, but have no place in the order: they
    # are listed here as they are first reached and handed their sums when the pass is done,
    # so that a pass that fails halfway leaves no partial gradient in any .grad.
    leaves: list[Node] = []
    order = _order(root)
    previous = _grad_enabled
    _grad_enabled = create_graph  # a first-order pass records nothing, whatever a custom op does
    pop = order.pop
    try:
        root._g = seed
        if root.op is None:  # backward() on a leaf: its gradient is the seed
            leaves.append(order.pop())
        while order:
            n = pop()
            g = n._g
            n._g = None
            if g is _PLACED:  # every rule that reached n skipped it
                g = zeros(n, create_graph)
            if wanted is not None:
                if n in wanted:
                    found[n] = g
            elif retain:
                cur = n.grad
                n.grad = g if cur is None or (cur.__class__ is float and cur == 0.0) else cur + g
            op: Any = n.op  # never None: leaves have no place in the order
            p0: Any = n.p0
            p1: Any = n.p1
            saved = n.saved
            skips = op.skips
            # Arity by arity, with no argument list or comprehension built per node: most nodes
            # are unary or binary, and this loop is the engine's hot path.
            try:
                if p1 is None:
                    ps: tuple[Any, ...] = (p0,)
                    need: tuple[bool, ...] | None = (p0.requires_grad,) if skips else None
                    if create_graph:
                        grads = op.backward(m, need, g, n, p0, *saved)
                    elif saved:
                        grads = op.backward(m, need, g, n.data, p0.data, *saved)
                    else:
                        grads = op.backward(m, need, g, n.data, p0.data)
                elif not n.pn:
                    ps = (p0, p1)
                    need = (p0.requires_grad, p1.requires_grad) if skips else None
                    if create_graph:
                        grads = op.backward(m, need, g, n, p0, p1, *saved)
                    elif saved:
                        grads = op.backward(m, need, g, n.data, p0.data, p1.data, *saved)
                    else:
                        grads = op.backward(m, need, g, n.data, p0.data, p1.data)
                elif len(n.pn) == 1:  # a dense layer: x, W, b
                    p2 = n.pn[0]
                    ps = (p0, p1, p2)
                    need = (p0.requires_grad, p1.requires_grad, p2.requires_grad) if skips else None
                    if create_graph:
                        grads = op.backward(m, need, g, n, p0, p1, p2, *saved)
                    else:
                        grads = op.backward(m, need, g, n.data, p0.data, p1.data, p2.data, *saved)
                else:
                    ps = (p0, p1, *n.pn)
                    need = tuple([p.requires_grad for p in ps]) if skips else None
                    if create_graph:
                        grads = op.backward(m, need, g, n, *ps, *saved)
                    else:
                        grads = op.backward(m, need, g, n.data, *[p.data for p in ps], *saved)
            except (ZeroDivisionError, OverflowError) as e:  # floats raise where NumPy gives inf
                at = ", ".join(repr(p.data) for p in ps)
                message = f"the backward of {op.name} at ({at}) is infinite: {e}"
                raise (AnomalyError if anomaly else ArithmeticError)(message) from None
            # Checked here rather than by zip(strict=True), which costs 283 ns a node to 156 for
            # a plain zip.
            if grads.__class__ is not tuple or len(grads) != len(ps):
                grads = _one_per_input(op, grads, len(ps))
            # A one-pair tuple iterates in half the time of a zip, and most nodes have one input.
            pairs = ((p0, grads[0]),) if p1 is None else zip(ps, grads)  # noqa: B905 - checked
            for p, gp in pairs:
                if gp is None or not p.requires_grad:
                    continue
                if not plain:
                    like = p.data
                    if broadcasts and (
                        gp.__class__ is not ndarray
                        or gp.shape != like.shape
                        or (gp.dtype is not like.dtype and gp.dtype != like.dtype)
                    ):
                        gp = _fit(gp, like)
                    if anomaly:
                        _check_finite(gp, f"the backward of {op.name}")
                cur = p._g
                if cur is None:  # a leaf, reached for the first time in this pass
                    leaves.append(p)
                    p._g = gp
                else:
                    p._g = gp if cur is _PLACED else cur + gp
            # Tensor._accumulate counts references: nothing of this node may keep its gradients
            grads = gp = g = pairs = None  # type: ignore[assignment]
        while leaves:
            n = leaves.pop()
            g = n._g
            n._g = None
            if wanted is not None:
                if n in wanted:
                    found[n] = g
            elif owns:
                n._accumulate(g)  # type: ignore[attr-defined]
            else:
                cur = n.grad
                n.grad = g if cur is None or (cur.__class__ is float and cur == 0.0) else cur + g
            g = None
    finally:
        _grad_enabled = previous
        # An error mid-pass leaves partial sums and marks behind; clear them for the next pass.
        for n in order:
            n._g = None
        for n in leaves:
            n._g = None
    if inputs is None:
        return []
    return [found[x] if x in found else zeros(x, create_graph) for x in inputs]


def _one_per_input(op: type[Op], grads: Any, count: int) -> tuple[Any, ...]:
    """A rule's result as a tuple of one gradient per input, or TypeError saying what came back."""
    if isinstance(grads, (tuple, list)) and len(grads) == count:
        return tuple(grads)
    got = (
        f"{len(grads)} gradients"
        if isinstance(grads, (tuple, list))
        else f"a {type(grads).__name__}, not a tuple"
    )
    plural = "s" if count != 1 else ""
    raise TypeError(
        f"the backward of {op.name} returned {got}: it must return a tuple of one gradient "
        f"(or None) per input, and the op has {count} input{plural}"
    )


def record(out: Node, op: type[Op], parents: tuple[Node, ...], saved: tuple[Any, ...]) -> None:
    """Attach a new node to the graph, or leave it a constant when nothing needs a gradient.

    It is recorded when grad mode is on and some parent requires grad; otherwise it has no
    parents and costs no backward work. Inside detect_anomaly() its data is checked here.
    """
    needed = False
    if _grad_enabled:
        for p in parents:
            if p.requires_grad:
                needed = True
                break
    if needed:
        n = len(parents)
        out.p0 = parents[0]
        out.p1 = parents[1] if n > 1 else None
        out.pn = parents[2:] if n > 2 else ()
        out.op = op
        out.saved = saved
    else:
        out.p0 = out.p1 = None
        out.pn = ()
        out.op = None
        out.saved = ()
    out.requires_grad = needed
    if _anomaly:
        check_forward(op, out.data)


def _fit(g: Any, like: np.ndarray) -> Any:
    """Give a Tensor gradient its input's shape, dtype and type, whatever the rule returned.

    The one place broadcasting is undone; also where a float64 mask or a NumPy scalar from a
    0-d result is turned back into the input's kind of array.
    """
    if g.shape != like.shape:
        g = sum_to(g, like.shape)
    if g.__class__ is np.ndarray:
        if g.dtype != like.dtype:
            g = g.astype(like.dtype)
    elif not isinstance(g, Node):
        g = np.asarray(g, dtype=like.dtype)
    return g


def sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum a broadcast gradient back to ``shape`` (arrays and Tensors alike)."""
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and g.shape[extra + i] != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if extra:
        g = g.reshape(shape)
    return g


# ---------------------------------------------------------------------------------------------
# Grad mode and anomaly detection


def is_grad_enabled() -> bool:
    """Return True when new operations are being recorded for backward."""
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    """Context manager and decorator that sets grad mode and restores the previous one on exit."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous.pop()


def no_grad() -> _GradMode:
    """Record nothing inside: results are constants with no parents and cost no backward work.

    Use as ``with no_grad(): ...`` or as a decorator ``@no_grad()``.
    """
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Turn recording back on inside a ``no_grad()`` block (context manager or decorator)."""
    return _GradMode(True)


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise AnomalyError at the first op whose output or gradient is NaN or infinite.

    The check costs one pass over each result, so it is off unless asked for.
    """
    global _anomaly
    previous = _anomaly
    _anomaly = True
    try:
        yield
    finally:
        _anomaly = previous


def _check_finite(x: Any, where: str) -> None:
    data = x.data if isinstance(x, Node) else x
    if not (math.isfinite(data) if isinstance(data, float) else np.all(np.isfinite(data))):
        raise AnomalyError(f"{where} produced a non-finite value: {_short(data)}")


def _short(x: Any) -> str:
    text = (
        repr(x)
        if isinstance(x, float)
        else np.array2string(np.asarray(x), precision=4, threshold=8)
    )
    return text if len(text) < 120 else text[:117] + "..."


def check_forward(op: type[Op], out: Any) -> None:
    """Anomaly check on a forward result; the front ends call it only inside detect_anomaly()."""
    _check_finite(out, f"op {op.name} (forward)")
