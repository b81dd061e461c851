"""grad and value_and_grad: derivatives as functions, nestable for higher orders."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .engine import Node, enable_grad, gradients
from .tensor import Tensor
from .value import Value

__all__ = ["as_leaf", "grad", "scalar_root", "value_and_grad"]


# How many grad() calls are evaluating their function right now, in this thread (or asyncio
# task). Inside one, a derivative must be recorded even for a plain float argument: the function
# may close over the outer variable. Another thread's grad() is no outer call of ours.
_depth = contextvars.ContextVar("grad_depth", default=0)


def grad(f: Callable[..., Any], argnum: int = 0) -> Callable[..., Any]:
    """Return a function computing df/dx, x being argument ``argnum`` of f.

    f must return a scalar: a Value, or a Tensor with one element. The derivative comes back in
    the kind of the argument: a float or an array for plain numbers, a Value or a Tensor for
    nodes. Called on a node, or inside another grad's function, the derivative is recorded (a
    node), so grads nest: ``grad(grad(f))(0.3)`` is f''(0.3), and mixed partials work.

    >>> grad(lambda x: x ** 3)(2.0)
    12.0
    >>> grad(grad(lambda x: x ** 3))(2.0)
    12.0
    """
    vg = value_and_grad(f, argnum)

    @functools.wraps(f)
    def df(*args: Any) -> Any:
        return vg(*args)[1]

    return df


def value_and_grad(f: Callable[..., Any], argnum: int = 0) -> Callable[..., tuple[Any, Any]]:
    """Return a function computing ``(f(*args), df/dx)``, x being argument ``argnum``.

    Takes and returns the same kinds as `grad`. Raises ValueError when f does not return a
    scalar, and IndexError when ``argnum`` is not one of the arguments.
    """

    @functools.wraps(f)
    def wrapped(*args: Any) -> tuple[Any, Any]:
        if not -len(args) <= argnum < len(args):
            raise IndexError(f"argnum {argnum} is out of range for {len(args)} argument(s)")
        i = argnum % len(args)
        x = args[i]
        leaf = as_leaf(x)
        # Record the derivative when someone may differentiate it again: an outer grad is
        # running, or the argument is a node from a graph of the caller's.
        depth = _depth.get()
        recorded = depth > 0 or isinstance(x, Node)
        _depth.set(depth + 1)
        try:
            with enable_grad():
                out = f(*args[:i], leaf, *args[i + 1 :])
                root = scalar_root(out, "grad(f)")
                if isinstance(root, Node) and root.requires_grad:
                    (d,) = gradients(root, [leaf], create_graph=recorded)
                else:  # f does not depend on x at all
                    d = leaf.zeros_like(leaf, recorded)  # type: ignore[arg-type]
        finally:
            _depth.set(depth)
        if recorded:
            return out, d
        return float(root.data if isinstance(root, Node) else root), d

    return wrapped


def as_leaf(x: Any) -> Value | Tensor:
    """Return x as a node to differentiate with respect to.

    Floats become a Value, arrays a float64 Tensor (float32 kept); a node that needs a gradient
    is used as it is, so an outer derivative can see through, and a constant node is copied into
    a fresh leaf. Raises TypeError for anything else.
    """
    if isinstance(x, Node):
        if x.requires_grad:
            return x  # type: ignore[return-value]
        return Value(x.data) if isinstance(x, Value) else Tensor(x.data, requires_grad=True)
    if isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool):
        return Value(float(x))
    if isinstance(x, (np.ndarray, list, tuple)):
        return Tensor(x, requires_grad=True)
    raise TypeError(f"cannot differentiate with respect to a {type(x).__name__}: {x!r:.60}")


def scalar_root(out: Any, who: str) -> Any:
    """Check that out is a scalar (a number, a Value or a one-element Tensor) and return it.

    Raises ValueError naming ``who`` and the shape when it is not.
    """
    if isinstance(out, Tensor):
        if out.size != 1:
            raise ValueError(f"{who} needs f to return a scalar, got a Tensor of shape {out.shape}")
        return out.reshape(()) if out.shape != () else out
    if isinstance(out, (Value, int, float, np.floating)):
        return out
    raise ValueError(f"{who} needs f to return a scalar Value or Tensor, got {type(out).__name__}")
