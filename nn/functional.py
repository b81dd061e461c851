"""Activations by name, for scalar Values and Tensors alike."""

from __future__ import annotations

from typing import overload

from backproplab.autograd import Tensor, Value

__all__ = ["ACTIVATIONS", "activate", "check_activation"]

ACTIVATIONS: tuple[str, ...] = ("relu", "sigmoid", "tanh", "none")
"""The activation names ``activate`` takes ("linear" is accepted as another name for "none")."""

_ALIASES = {"linear": "none"}


def check_activation(name: object, argument: str = "activation") -> str:
    """Return the canonical activation name for ``name`` ("linear" becomes "none").

    ``argument`` is the parameter name used in the error message. Raises ValueError naming the
    value and listing the choices when ``name`` is not one of ``ACTIVATIONS`` or "linear".
    """
    if isinstance(name, str):
        canonical = _ALIASES.get(name, name)
        if canonical in ACTIVATIONS:
            return canonical
    choices = ", ".join(repr(a) for a in (*ACTIVATIONS, *_ALIASES))
    raise ValueError(f"unknown {argument} {name!r}: choose one of {choices}")


@overload
def activate(x: Value, name: str) -> Value: ...
@overload
def activate(x: Tensor, name: str) -> Tensor: ...
def activate(x: Value | Tensor, name: str) -> Value | Tensor:
    """Apply the activation called ``name`` to ``x`` (a Value or a Tensor) and return the result.

    "none" (or "linear") returns ``x`` itself. Raises ValueError for an unknown name (listing
    the choices) and TypeError when ``x`` is neither a Value nor a Tensor.
    """
    canonical = check_activation(name)
    if not isinstance(x, (Value, Tensor)):
        raise TypeError(f"activate() needs a Value or a Tensor, got {type(x).__name__}")
    if canonical == "relu":
        return x.relu()
    if canonical == "sigmoid":
        return x.sigmoid()
    if canonical == "tanh":
        return x.tanh()
    return x
