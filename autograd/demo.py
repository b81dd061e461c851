"""A short tour of the engine, printed: ``python -m backproplab.autograd.demo``."""

from __future__ import annotations

import numpy as np

from . import Tensor, Value, compare_gradients, grad, gradcheck


def main() -> None:
    """Print the classic neuron's gradients, a Tensor layer's, a second derivative and a check."""
    print("1. A neuron on scalar Values: o = tanh(x1*w1 + x2*w2 + b)")
    x1, x2 = Value(2.0, "x1"), Value(0.0, "x2")
    w1, w2 = Value(-3.0, "w1"), Value(1.0, "w2")
    b = Value(6.8813735870195432, "b")
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.backward()
    print(f"   o = {o.data:.4f}")
    for v in (x1, w1, x2, w2, b):
        print(f"   d o / d {v.label:<2} = {v.grad:+.4f}")

    print("\n2. A layer on Tensors: loss = sum(relu(X @ W + bias) ** 2)")
    rng = np.random.default_rng(0)
    X = Tensor(rng.standard_normal((4, 3)))
    W = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    bias = Tensor(np.zeros(2), requires_grad=True)
    loss = ((X @ W + bias).relu() ** 2).sum()
    loss.backward()
    print(f"   loss = {loss.item():.4f}")
    print(
        f"   W.grad has shape {W.grad.shape}; bias.grad = {np.array2string(bias.grad, precision=4)}"
    )

    print("\n3. Derivatives as functions: f(x) = x**3 * tanh(x)")

    def f(x: Value) -> Value:
        return x**3 * x.tanh()

    print(f"   f'(0.5)  = {grad(f)(0.5):.6f}")
    print(f"   f''(0.5) = {grad(grad(f))(0.5):.6f}")
    print(f"   gradcheck(f, 0.5) -> {gradcheck(f, 0.5)}")

    print("\n4. Your hand-derived gradient beside the engine's and the numeric one")
    x = rng.standard_normal(3)
    weights = rng.standard_normal((2, 3))

    def loss_fn(w: Tensor, v: Tensor) -> Tensor:
        return ((w @ v).tanh() ** 2).sum()

    def by_hand(w: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = np.tanh(w @ v)
        dz = 2 * y * (1 - y**2)  # d/dz of tanh(z)**2
        return np.outer(dz, v), w.T @ dz

    print(compare_gradients(loss_fn, by_hand, weights, x, names=["W", "x"]))


if __name__ == "__main__":
    main()
