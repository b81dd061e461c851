"""The random ReLU regression on the Tensor engine: 128 x 1000 -> 100 ReLU -> 1, no biases.

Its write-up ("Training a simple neural network in Numpy") is seed 002 in the code's names.

The write-up derives the gradients by hand in NumPy; here the engine derives them.
``relu_numpy_reference`` keeps the write-up's NumPy loop as it is, so the two can be compared
step for step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from backproplab.autograd import Tensor, no_grad
from backproplab.autograd import compile as compile_step

from .datasets import relu_regression

__all__ = [
    "ReluRun",
    "is_printed",
    "relu_lines",
    "relu_numpy_reference",
    "relu_run",
]


class ReluRun(NamedTuple):
    """A run of the random ReLU regression: the printed losses and the trained network's first five
    errors."""

    losses: list[tuple[int, float]]
    """(iteration, loss) at each printed iteration; the loss before that iteration's update."""
    errors: np.ndarray
    """predictions[:5] - targets[:5] after training, shape (5, 1)."""


def is_printed(i: int) -> bool:
    """The write-up's print schedule: 0, 10, ..., 100, then every 100th iteration."""
    return (i <= 100 and i % 10 == 0) or i % 100 == 0


def relu_run(
    seed: int = 0, iterations: int = 1000, learning_rate: float = 1e-6, compile: bool = True
) -> ReluRun:
    """Train the random ReLU regression with the engine's gradients and plain gradient descent.

    X and the targets are constant Tensors, W1 and W2 leaves with ``requires_grad``; the loss is
    the summed squared error ``((relu(X @ W1) @ W2 - y) ** 2).sum()``. Data and initial weights
    come from ``nn.datasets.relu_regression(seed)``. With ``compile`` (the default) each step
    runs as generated code (``autograd.compile``), with the same losses to the bit.

    Returns a ReluRun: the (iteration, loss) pairs on the write-up's print schedule and the
    trained network's first five errors.
    Raises ValueError for a bad seed (see ``relu_regression``), a negative iteration count, or a
    learning rate that is not a positive finite number.
    """
    iterations = _check_iterations(iterations)
    learning_rate = _check_learning_rate(learning_rate)
    x_np, y_np, w1_np, w2_np = relu_regression(seed)
    x, y = Tensor(x_np), Tensor(y_np)
    w1 = Tensor(w1_np, requires_grad=True)
    w2 = Tensor(w2_np, requires_grad=True)
    losses: list[tuple[int, float]] = []

    def summed_squared_error(x: Tensor, y: Tensor) -> Tensor:
        return (((x @ w1).relu() @ w2 - y) ** 2).sum()

    loss_fn = compile_step(summed_squared_error) if compile else summed_squared_error
    for i in range(iterations):
        loss = loss_fn(x, y)
        if is_printed(i):
            losses.append((i, loss.item()))
        # Only the leaves need a gradient in a training step; see the README's training idiom.
        loss.backward(retain_grads=False)
        w1.data -= learning_rate * w1.grad
        w2.data -= learning_rate * w2.grad
        # zero_grad, not `.grad = None`: it keeps the array for the next step (Tensor.zero_grad).
        w1.zero_grad()
        w2.zero_grad()
    with no_grad():
        predictions = (x @ w1).relu() @ w2
    return ReluRun(losses, predictions.data[:5] - y_np[:5])


def relu_lines(seed: int = 0) -> list[str]:
    """The lines the random ReLU regression's demo prints: ``"<iteration> <loss>"``, then the five
    errors.

    Each float is printed in full (``repr``), one per line; 1000 iterations, learning rate 1e-6.
    Raises ValueError for a bad seed.
    """
    run = relu_run(seed)
    lines = [f"{i} {loss!r}" for i, loss in run.losses]
    lines += [repr(float(e)) for e in run.errors.ravel()]
    return lines


def relu_numpy_reference(
    seed: int = 0, iterations: int = 1000, learning_rate: float = 1e-6
) -> ReluRun:
    """The write-up's NumPy code, its gradients derived by hand, as a reference for the engine.

    The body is the write-up's, with three changes: ``np.random.seed(seed)`` first (the write-up
    does not seed), the loss collected instead of printed, and the two typos of its web text
    fixed (``2.0, *`` and ``(i % 10, == 0)``, commas where none belong). The legacy global
    generator's state is restored afterwards. It does not share code with ``relu_run``: the two
    are only comparable if they are written independently.

    Returns a ReluRun, as ``relu_run`` does.
    """
    iterations = _check_iterations(iterations)
    learning_rate = _check_learning_rate(learning_rate)
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        batch_size = 128
        input_dim = 1000
        hidden_dim = 100
        output_dim = 1
        input_values = np.random.randn(batch_size, input_dim)
        output_values = np.random.randn(batch_size, output_dim)
        weights1 = np.random.randn(input_dim, hidden_dim)
        weights2 = np.random.randn(hidden_dim, output_dim)
    finally:
        np.random.set_state(state)

    def relu(x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    printed: list[tuple[int, float]] = []
    num_loops = iterations
    for i in range(num_loops):
        activations = input_values.dot(weights1)
        relu_activations = relu(activations)
        predictions = relu_activations.dot(weights2)

        loss = np.sum((predictions - output_values) ** 2)
        if (i <= 100) & (i % 10 == 0) | (i % 100 == 0):
            printed.append((i, float(loss)))

        # Gradients
        dloss_predictions = 2.0 * (predictions - output_values)
        dloss_weights2 = relu_activations.T.dot(dloss_predictions)
        dloss_relu_activations = dloss_predictions.dot(weights2.T)
        dloss_activations = dloss_relu_activations.copy()
        dloss_activations[activations < 0] = 0
        dloss_weights1 = input_values.T.dot(dloss_activations)

        # Gradient Descent
        weights1 -= learning_rate * dloss_weights1
        weights2 -= learning_rate * dloss_weights2

    layer1_activations = input_values.dot(weights1)
    layer1_relu = relu(layer1_activations)
    predictions = layer1_relu.dot(weights2)
    return ReluRun(printed, predictions[:5] - output_values[:5])


def _check_iterations(iterations: object) -> int:
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")
    return iterations


def _check_learning_rate(learning_rate: object) -> float:
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    lr = float(learning_rate)
    if not (lr > 0 and np.isfinite(lr)):
        raise ValueError(f"learning_rate must be a positive finite number, got {learning_rate!r}")
    return lr
