"""Optimizers: SGD (with momentum) and Adam, over Values and Tensors alike."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from backproplab.autograd import Node, Tensor, Value
from backproplab.autograd.modes import tracing

__all__ = ["SGD", "Adam", "Optimizer"]


class Optimizer:
    """Base class: holds the parameters and updates them from their ``.grad``.

    ``params`` is any iterable of Values and Tensors, e.g. ``model.parameters()``; a parameter
    listed twice (a weight shared by two layers) is kept once, so it is updated once.
    Tensors are updated in place (``p.data`` stays the same array, so references to it stay
    valid); Values get a new float. A Tensor whose ``.grad`` is None (untouched by the last
    backward pass, or zeroed) is skipped; a Value's gradient is always a number, so it is never
    skipped. Subclasses define ``_update``.

    Raises ValueError when there are no parameters, TypeError for anything not a Value or Tensor.
    """

    def __init__(self, params: Iterable[Node]) -> None:
        if isinstance(params, (Value, Tensor)):
            raise TypeError("params must be an iterable of parameters, e.g. model.parameters()")
        unique: dict[int, Value | Tensor] = {}
        for i, p in enumerate(params):
            if not isinstance(p, (Value, Tensor)):
                raise TypeError(f"parameter {i} is a {type(p).__name__}, not a Value or Tensor")
            unique.setdefault(id(p), p)  # by identity: a Tensor's == is elementwise
        if not unique:
            raise ValueError(f"{type(self).__name__} got no parameters to optimize")
        self.params: list[Value | Tensor] = list(unique.values())
        # Per-parameter state (momentum buffers, moments) by position in self.params.
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Reset every parameter's gradient (each one's own ``zero_grad()``)."""
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        """Update every parameter that has a gradient, once.

        Raises CompileError inside a compiled function's trace: a replay would never step.
        """
        if (trace := tracing.get()) is not None:
            raise trace.side_effect(f"{type(self).__name__}.step()")
        for p, state in zip(self.params, self.state, strict=True):
            g = p.grad
            if g is None:
                continue
            if isinstance(g, Node):  # a gradient recorded with create_graph=True
                g = g.data
            if isinstance(p, Tensor):
                g = np.asarray(g, dtype=p.data.dtype)
                data = p.data
                new = self._update(data, g, state)
                if new is not data:
                    data[...] = new
                p.data = data  # the same array, set again: marks the change for backward's check
            else:
                p.data = float(self._update(p.data, float(g), state))

    def _update(self, x: Any, g: Any, state: dict[str, Any]) -> Any:
        """Return the new value of parameter data ``x`` (updating an array in place is
        allowed) given its gradient ``g``; ``state`` is this parameter's own dict."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and weight decay.

    The update is PyTorch's ``torch.optim.SGD`` (dampening 0, no Nesterov): with
    g = grad + weight_decay * p, the momentum buffer is b = momentum * b + g (b = g at the first
    step), and p = p - lr * b; without momentum, p = p - lr * g.

    Raises ValueError for lr <= 0, momentum outside [0, 1), or weight_decay < 0 (and for
    non-finite values).
    """

    def __init__(
        self,
        params: Iterable[Node],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params)
        self.lr = _check(lr, "lr", low=0.0, low_open=True)
        self.momentum = _check(momentum, "momentum", low=0.0, high=1.0)
        self.weight_decay = _check(weight_decay, "weight_decay", low=0.0)

    def _update(self, x: Any, g: Any, state: dict[str, Any]) -> Any:
        if self.weight_decay:
            g = g + self.weight_decay * x
        if self.momentum:
            buf = state.get("momentum")
            if buf is None:
                buf = np.array(g, copy=True) if isinstance(g, np.ndarray) else g
            elif isinstance(buf, np.ndarray):
                buf *= self.momentum
                buf += g
            else:
                buf = self.momentum * buf + g
            state["momentum"] = buf
            g = buf
        if isinstance(x, np.ndarray):
            x -= self.lr * g
            return x
        return x - self.lr * g

    def __repr__(self) -> str:
        return (
            f"SGD({len(self.params)} parameters, lr={self.lr:g}, momentum={self.momentum:g}, "
            f"weight_decay={self.weight_decay:g})"
        )


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), with bias correction and optional L2 weight decay.

    The update is PyTorch's ``torch.optim.Adam`` (amsgrad off): with g = grad + weight_decay * p
    and t this parameter's step count, m = β1 m + (1 - β1) g, v = β2 v + (1 - β2) g²,
    m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t), and p = p - lr * m̂ / (sqrt(v̂) + eps).
    A parameter skipped for lack of a gradient does not advance its t.

    Raises ValueError for lr <= 0, a beta outside [0, 1), eps < 0 or weight_decay < 0 (and for
    non-finite values).
    """

    def __init__(
        self,
        params: Iterable[Node],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params)
        self.lr = _check(lr, "lr", low=0.0, low_open=True)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair of numbers, got {betas!r}") from None
        self.betas = (
            _check(b1, "betas[0]", low=0.0, high=1.0),
            _check(b2, "betas[1]", low=0.0, high=1.0),
        )
        self.eps = _check(eps, "eps", low=0.0)
        self.weight_decay = _check(weight_decay, "weight_decay", low=0.0)

    def _update(self, x: Any, g: Any, state: dict[str, Any]) -> Any:
        b1, b2 = self.betas
        if self.weight_decay:
            g = g + self.weight_decay * x
        t = state.get("step", 0) + 1
        state["step"] = t
        m = b1 * state["m"] + (1.0 - b1) * g if t > 1 else (1.0 - b1) * g
        v = b2 * state["v"] + (1.0 - b2) * (g * g) if t > 1 else (1.0 - b2) * (g * g)
        state["m"], state["v"] = m, v
        m_hat = m / (1.0 - b1**t)
        v_hat = v / (1.0 - b2**t)
        step = self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        if isinstance(x, np.ndarray):
            x -= step
            return x
        return x - float(step)

    def __repr__(self) -> str:
        return (
            f"Adam({len(self.params)} parameters, lr={self.lr:g}, betas={self.betas}, "
            f"eps={self.eps:g}, weight_decay={self.weight_decay:g})"
        )


def _check(
    value: object,
    name: str,
    low: float,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """Return value as a float in [low, high) ((low, high) with low_open); else ValueError."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        v = float(value)
        above = v > low if low_open else v >= low
        if math.isfinite(v) and above and (high is None or v < high):
            return v
    bound = f"{'(' if low_open else '['}{low:g}, {'inf' if high is None else f'{high:g}'})"
    raise ValueError(f"{name} must be a finite number in {bound}, got {value!r}")
