"""compare(): your hand-derived gradient of any node beside the engine's, as the makemore
lecture's ``cmp(name, dt, t)`` prints it."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np

from .diagnose import Diagnosis, diagnose
from .engine import Node

__all__ = ["NodeComparison", "compare"]


@dataclass(frozen=True)
class NodeComparison:
    """How a hand-derived gradient compares with the engine's ``.grad`` of one node.

    ``exact``: every element is equal. ``approximate``: every element satisfies
    |manual - engine| <= atol + rtol * |engine| (``torch.allclose``'s test, with its defaults
    atol 1e-8 and rtol 1e-5). ``maxdiff``: the largest |manual - engine|.
    ``str()`` is the lecture's line; in Jupyter it shows as a one-row table.
    """

    name: str
    exact: bool
    approximate: bool
    maxdiff: float
    shape: tuple[int, ...]
    diagnosis: Diagnosis | None = None
    """What is wrong, in the words every checker uses (autograd.diagnose); None when right."""

    @property
    def ok(self) -> bool:
        """True when the gradients agree approximately (exact agreement included)."""
        return self.approximate

    def __str__(self) -> str:
        line = (
            f"{self.name:15s} | exact: {self.exact!s:5s} | approximate: {self.approximate!s:5s} "
            f"| maxdiff: {self.maxdiff}"
        )
        return line if self.diagnosis is None else f"{line}\n  {self.diagnosis.message}"

    def _repr_html_(self) -> str:
        def mark(flag: bool) -> str:
            colour = "#1a7f37" if flag else "#cf222e"
            return f'<td style="color:{colour};font-weight:bold">{flag}</td>'

        shape = "×".join(map(str, self.shape)) if self.shape else "scalar"
        # A column for what is wrong only when something is.
        why = self.diagnosis
        return (
            "<table><thead><tr><th>gradient</th><th>shape</th><th>exact</th>"
            "<th>approximate</th><th>max difference</th>"
            f"{'' if why is None else '<th>what is wrong</th>'}</tr></thead>"
            f"<tbody><tr><td><code>{html.escape(self.name)}</code></td><td>{shape}</td>"
            f"{mark(self.exact)}{mark(self.approximate)}<td>{self.maxdiff:.3g}</td>"
            f"{'' if why is None else '<td>' + html.escape(why.message) + '</td>'}"
            "</tr></tbody></table>"
        )


def compare(
    name: str,
    manual: Any,
    node: Node,
    *,
    atol: float = 1e-8,
    rtol: float = 1e-5,
    batch: int | None = None,
    show: bool = True,
) -> NodeComparison:
    """Compare your gradient ``manual`` with the engine's gradient of ``node``, and print it.

    The makemore lecture's ``cmp(name, dt, t)``, for any node: a leaf, or an intermediate
    such as the logits or a batch-norm's output. After ``loss.backward()`` every node the loss
    was computed from keeps its ``.grad``, intermediates too (PyTorch keeps only the leaves'
    unless you call ``retain_grad()``; here keeping them is the default, ``retain_grads=True``).

    >>> import numpy as np
    >>> from backproplab import Tensor, compare
    >>> x = Tensor([[0.5, -2.0]], requires_grad=True)
    >>> h = (x * 3.0).tanh()
    >>> loss = h.sum()
    >>> loss.backward()
    >>> dh = np.ones((1, 2))  # d loss / d h, by hand
    >>> result = compare("h", dh, h)
    h               | exact: True  | approximate: True  | maxdiff: 0.0
    >>> result = compare("x", dh * (1 - h.data**2) * 3.0, x)
    x               | exact: True  | approximate: True  | maxdiff: 0.0
    >>> result = compare("x", dh * (1 - h.data**2), x)  # forgot the chain rule's factor 3
    x               | exact: False | approximate: False | maxdiff: 0.3614132778472967
      x: your gradient is exactly 0.333333 times the engine's everywhere: a constant factor is off

    Args:
        name: what the row is called.
        manual: your gradient: an array, a number, a Tensor or a Value, in ``node``'s shape.
        node: the Tensor or Value whose ``.grad`` the engine computed.
        atol, rtol: the "approximate" tolerance (``torch.allclose``'s defaults).
        batch: the batch size, if the node's gradient is summed over one: a gradient off by
            it, or not summed over it, is then named so.
        show: print the lecture's line (False: only return the result).

    Returns:
        A NodeComparison (``.exact``, ``.approximate``, ``.maxdiff``, ``.ok``, and when it is
        not ok ``.diagnosis``: what is wrong, in the words every checker uses). A gradient of
        another shape is a failed comparison, named (nothing is broadcast: a (32, 1) gradient
        is not a (32, 27) one), with maxdiff nan.

    Raises:
        TypeError: when ``node`` is not a Tensor or Value, or ``manual`` is not numbers.
        ValueError: when ``node`` has no gradient (naming why: it needs no gradient, or no
            backward pass reached it).
    """
    engine = _engine_grad(name, node)
    mine = _as_array(manual)
    if mine.shape != engine.shape:
        exact = approximate = False
        maxdiff = float("nan")
    else:
        with np.errstate(invalid="ignore"):
            diff = np.abs(mine - engine)
        exact = bool(np.all(mine == engine))
        approximate = bool(np.all(diff <= atol + rtol * np.abs(engine)))
        maxdiff = float(diff.max()) if diff.size else 0.0
    # The diagnosis judges with this comparison's tolerance, so it never calls a failed row right.
    why = None if approximate else diagnose(name, mine, engine, batch=batch, atol=atol, rtol=rtol)
    result = NodeComparison(name, exact, approximate, maxdiff, engine.shape, why)
    if show:
        print(result)
    return result


def _engine_grad(name: str, node: Any) -> np.ndarray:
    if not isinstance(node, Node):
        raise TypeError(
            f"compare {name!r}: the third argument must be the Tensor or Value whose gradient "
            f"you derived, got a {type(node).__name__}"
        )
    if not node.requires_grad:
        raise ValueError(
            f"compare {name!r}: the node needs no gradient, so the engine computed none: it was "
            "made from constants only (a Tensor requires_grad=False by default) or under no_grad()"
        )
    grad = node.grad
    if grad is None:
        raise ValueError(
            f"compare {name!r}: the node has no .grad yet: call loss.backward() first (with "
            "retain_grads=True, the default, for an intermediate); if you did, the loss does "
            "not depend on this node"
        )
    return _as_array(grad)


def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, Node):
        x = x.data
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"a gradient must be numbers, got {type(x).__name__} of {array.dtype}")
    return array
