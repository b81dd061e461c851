"""The circle classifier: a 2-4-1 sigmoid network learns the unit disc, on Values or Tensors.

Its write-up ("a neural network from scratch in pure Python", seed 001 in the code's names) samples
o(x, y) = [x² + y² < 1] on an 11 × 11 grid over [-2, 2]², builds ``MyNet(2, [4])`` after
``random.seed(0)`` and trains it with hand-derived backprop: 2000 full-batch gradient steps at
learning rate 10 on the mean squared error. Here the same network is built on ``autograd.Value``
(``CircleNet``, the scalar MLP) and on ``autograd.Tensor`` (``CircleTensorNet``, two matrices),
with the same weights, and both print the write-up's lines::

    untrained f(0, 0) = 0.5588
    1 0.2919
    100 0.1420
    ...
    2000 0.0035

Run ``python -m backproplab.nn.seed_circle [value|tensor] [steps]`` to see them.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Union

import numpy as np
from backproplab.autograd import Tensor, Value, dense, no_grad, squared_error, sum_values
from backproplab.autograd import compile as compile_step

from .module import Module
from .scalar import MLP

__all__ = [
    "ENGINES",
    "CircleNet",
    "CircleTensorNet",
    "circle_dataset",
    "circle_lines",
    "circle_model",
    "circle_target",
    "predict_grid",
    "train_circle",
]

ENGINES = ("value", "tensor")
CircleModel = Union["CircleNet", "CircleTensorNet"]


def circle_target(x: float, y: float) -> float:
    """The circle classifier's objective o(x, y): 1.0 inside the unit circle (x² + y² < 1), else
    0.0."""
    return 1.0 if x * x + y * y < 1 else 0.0


def circle_dataset(sample_density: int = 10) -> list[tuple[float, float, float]]:
    """Return the circle classifier's samples (x, y, o(x, y)), x the outer loop, in its write-up's
    order.

    The grid is x, y = -2 + 4 i / sample_density for i = 0 .. sample_density, computed with the
    write-up's exact expression so every float matches: 121 points for the default 10, starting
    (-2.0, -2.0, 0.0), (-2.0, -1.6, 0.0). Raises ValueError when sample_density < 1.
    """
    if (
        isinstance(sample_density, bool)
        or not isinstance(sample_density, int)
        or sample_density < 1
    ):
        raise ValueError(f"sample_density must be a positive int, got {sample_density!r}")
    d = sample_density
    xs = [[-2.0 + 4 * x / d, -2.0 + 4 * y / d] for x in range(d + 1) for y in range(d + 1)]
    return [(x, y, circle_target(x, y)) for x, y in xs]


def _seed001_draws(seed: int, n: int) -> list[float]:
    # The circle classifier's write-up calls seed(0) on the global generator and draws
    # random() - 0.5 per weight; a random.Random(seed) of its own gives the same draws and leaves
    # the global state alone.
    rng = random.Random(seed)
    return [rng.random() - 0.5 for _ in range(n)]


class _CircleClassifier:
    """predict and predict_proba for both circle networks, as scikit-learn's classifiers have."""

    def _inside(self, points: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return, for points X of shape (n, 2), an (n, 2) array: column 0 the probability of
        class 0 (outside the unit circle, 1 - f), column 1 of class 1 (inside, f).

        Raises ValueError when X is not of shape (n, 2).
        """
        inside = self._inside(_points(X))
        return np.column_stack([1.0 - inside, inside])

    def predict(self, X: Any) -> np.ndarray:
        """Return the class of each point of X (n, 2): 1 inside (f > 1/2), else 0, as int64."""
        return (self._inside(_points(X)) > 0.5).astype(np.int64)


def _points(X: Any) -> np.ndarray:
    points = np.asarray(X.data if isinstance(X, Tensor) else X, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"the circle classifier takes points of shape (n, 2), got {points.shape}")
    return points


class CircleNet(_CircleClassifier, MLP):
    """The circle classifier on Values: its write-up's ``MyNet(2, [4])`` as a scalar MLP.

    2 inputs, 4 sigmoid neurons, 1 sigmoid output. The weights are the write-up's: from
    ``random.Random(seed)`` (the draws ``random.seed(seed)`` gives), each neuron in turn (the hidden
    four, then the output) draws ``random() - 0.5`` per input; every bias is 0.0. Python's global
    random state is not touched. Untrained, ``CircleNet()([0, 0])`` is 0.5588.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__(2, [4, 1], activation=["sigmoid", "sigmoid"], init="seed001", seed=seed)
        self.seed = seed

    def _inside(self, points: np.ndarray) -> np.ndarray:
        with no_grad():
            return np.array([_data(self(list(p))) for p in points.tolist()], dtype=np.float64)


class CircleTensorNet(_CircleClassifier, Module):
    """The same network as Tensors: ``sigmoid(sigmoid(X @ W1 + b1) @ W2 + b2)``.

    ``W1`` (2, 4) holds hidden neuron j's two weights in column j, ``W2`` (4, 1) the output
    neuron's; ``b1`` (4,) and ``b2`` (1,) start at zero. The weights come from the same draws, in
    the same order, as ``CircleNet(seed)``'s, so the two start equal.
    """

    def __init__(self, seed: int = 0) -> None:
        draws = _seed001_draws(seed, 2 * 4 + 4)
        self.W1 = Tensor(np.array(draws[:8]).reshape(4, 2).T.copy(), requires_grad=True, name="W1")
        self.b1 = Tensor(np.zeros(4), requires_grad=True, name="b1")
        self.W2 = Tensor(np.array(draws[8:]).reshape(4, 1), requires_grad=True, name="W2")
        self.b2 = Tensor(np.zeros(1), requires_grad=True, name="b2")
        self.seed = seed

    def forward(self, X: Tensor) -> Tensor:
        """Return the network's output, shape (n, 1), for points X of shape (n, 2)."""
        h = dense(X, self.W1, self.b1, "sigmoid")
        return dense(h, self.W2, self.b2, "sigmoid")

    def _inside(self, points: np.ndarray) -> np.ndarray:
        with no_grad():
            return np.asarray(self(Tensor(points)).data, dtype=np.float64).reshape(-1)


def circle_model(engine: str = "value", seed: int = 0) -> CircleModel:
    """Return a fresh, untrained circle classifier for ``engine`` ("value" or "tensor").

    Raises ValueError for any other engine.
    """
    return CircleNet(seed) if _check_engine(engine) == "value" else CircleTensorNet(seed)


def train_circle(
    steps: int = 2000,
    learning_rate: float = 10.0,
    engine: str = "value",
    seed: int = 0,
    model: CircleModel | None = None,
    compile: bool = True,
) -> Iterator[tuple[int, float]]:
    """Train the circle classifier on ``circle_dataset()``, yielding (step, loss) for each step.

    Each step is the write-up's ``one_step``: the mean squared error over all 121 points, one
    backward pass, then ``p -= learning_rate * p.grad`` for every parameter. The loss yielded
    for step k (1-based) is the one computed before step k's update, as the write-up prints it.

    Args:
        steps: how many steps to run (>= 0).
        learning_rate: the step size (the write-up uses 10).
        engine: "value" (the scalar CircleNet, one graph node per operation on one point) or
            "tensor" (CircleTensorNet, the whole batch in each node).
        seed: the seed of a fresh model's weights, when ``model`` is None.
        model: a network to train in place (from ``circle_model(engine)``); pass one to keep
            the trained network.
        compile: run each step as generated code (``autograd.compile``): the same losses to
            the bit, several times faster on Values; False runs the eager engine.

    Returns:
        A generator: training advances as it is iterated.

    Raises:
        ValueError: for an unknown engine, negative steps, or a model of the other engine;
            raised at the call, not at the first iteration.
    """
    _check_engine(engine)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if model is None:
        model = circle_model(engine, seed)
    expected = CircleNet if engine == "value" else CircleTensorNet
    if not isinstance(model, expected):
        raise ValueError(
            f"engine={engine!r} trains a {expected.__name__}, got {type(model).__name__}"
        )
    data = circle_dataset()
    if isinstance(model, CircleNet):
        return _train_values(model, data, steps, float(learning_rate), compile)
    return _train_tensors(model, data, steps, float(learning_rate), compile)


def _train_values(
    model: CircleNet, data: list[tuple[float, float, float]], steps: int, lr: float, compile: bool
) -> Iterator[tuple[int, float]]:
    params = model.parameters()
    # The samples as constant Values made once: otherwise every step would wrap each float
    # afresh in every op that reads it (about 10% of a step).
    points = [[Value.constant(x), Value.constant(y)] for x, y, _ in data]
    targets = [Value.constant(z) for _, _, z in data]
    n = len(data)

    def mean_squared_error() -> Value:
        # One Sum node over the 121 squared errors, rather than a chain of 120 additions.
        preds: list[Value] = [model(p) for p in points]
        return sum_values([(y - z) ** 2 for y, z in zip(preds, targets, strict=True)]) / n

    loss_fn = compile_step(mean_squared_error) if compile else mean_squared_error
    for step in range(1, steps + 1):
        loss = loss_fn()
        loss.backward(retain_grads=False)
        for p in params:
            p.data -= lr * p.grad
            p.grad = 0.0
        yield step, loss.data


def _train_tensors(
    model: CircleTensorNet,
    data: list[tuple[float, float, float]],
    steps: int,
    lr: float,
    compile: bool,
) -> Iterator[tuple[int, float]]:
    params = model.parameters()
    X = Tensor([[x, y] for x, y, _ in data])
    Z = Tensor([[z] for _, _, z in data])

    def mean_squared_error(X: Tensor, Z: Tensor) -> Tensor:
        return squared_error(model(X), Z)

    loss_fn = compile_step(mean_squared_error) if compile else mean_squared_error
    for step in range(1, steps + 1):
        loss = loss_fn(X, Z)
        loss.backward(retain_grads=False)
        for p in params:
            p.data -= lr * p.grad
            p.zero_grad()
        yield step, loss.item()


def circle_lines(
    engine: str = "value", steps: int = 2000, learning_rate: float = 10.0, seed: int = 0
) -> tuple[list[str], CircleModel]:
    """Train a fresh circle classifier as its write-up does: return (printed lines, trained model).

    The lines are ``untrained f(0, 0) = 0.5588``, then ``f"{step} {loss:.4f}"`` at step 1 and every
    100th step, the write-up's schedule. Both engines give the same lines. Raises ValueError as
    ``train_circle`` does.
    """
    model = circle_model(engine, seed)
    lines = [f"untrained f(0, 0) = {_at_origin(model):.4f}"]
    for step, loss in train_circle(steps, learning_rate, engine, seed, model):
        if step == 1 or step % 100 == 0:
            lines.append(f"{step} {loss:.4f}")
    return lines, model


def predict_grid(
    model_or_weights: Module | Mapping[str, Any],
    engine: str,
    xs: Sequence[float] | np.ndarray,
    ys: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Evaluate the network over the grid xs × ys, for a picture of its function on the plane.

    Args:
        model_or_weights: a network (for "value" any 2-input, 1-output scalar MLP, such as a
            CircleNet; for "tensor" a module mapping (n, 2) Tensors to n outputs, such as a
            CircleTensorNet), or a state dict of a CircleNet / CircleTensorNet
            (``model.state_dict()``, or the arrays of a file ``model.save`` wrote).
        engine: "value" or "tensor": how to evaluate, and which layout a state dict has.
        xs, ys: the grid's coordinates along x and along y.

    Returns:
        An array of shape (len(ys), len(xs)) with ``out[i, j] = f(xs[j], ys[i])``: the layout
        of ``np.meshgrid(xs, ys)``, which matplotlib's contour and imshow take.

    Raises:
        ValueError: for an unknown engine or a model of the other engine.
        nn.StateError: when a state dict does not fit the network.
    """
    _check_engine(engine)
    if isinstance(model_or_weights, Module):
        model = model_or_weights
    else:
        model = circle_model(engine)
        model.load_state_dict(model_or_weights)
    gx, gy = np.meshgrid(np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64))
    with no_grad():
        if engine == "value":
            if not isinstance(model, MLP):
                raise ValueError(
                    f"engine='value' evaluates a scalar MLP, got {type(model).__name__}"
                )
            flat = [
                _data(model([x, y]))
                for x, y in zip(gx.ravel().tolist(), gy.ravel().tolist(), strict=True)
            ]
            out = np.array(flat, dtype=np.float64)
        else:
            if isinstance(model, MLP):
                raise ValueError("engine='tensor' evaluates a Tensor module, got a scalar MLP")
            pred = model(Tensor(np.stack([gx.ravel(), gy.ravel()], axis=1)))
            out = np.asarray(pred.data, dtype=np.float64)
    return out.reshape(gx.shape)


def _data(out: Value | list[Value]) -> float:
    if isinstance(out, list):
        raise ValueError(f"predict_grid needs a network with one output, this one has {len(out)}")
    return out.data


def _at_origin(model: CircleModel) -> float:
    with no_grad():
        if isinstance(model, CircleNet):
            return _data(model([0.0, 0.0]))
        return model(Tensor([[0.0, 0.0]])).item()


def _check_engine(engine: object) -> str:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: expected one of {list(ENGINES)}")
    return engine  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the circle classifier's training lines.

    ``python -m backproplab.nn.seed_circle [value|tensor] [steps]``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    engine = args[0] if args else "value"
    steps = int(args[1]) if len(args) > 1 else 2000
    lines, _ = circle_lines(engine, steps)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
