"""Small datasets: the circle classifier's, the random ReLU regression's, two moons, spirals.

The two networks' write-ups are seed 001 and seed 002 in the code's names. Every function is
reproducible from its ``seed``. All draw from their own ``np.random.default_rng(seed)`` except
``relu_regression``, which reproduces the random ReLU regression's write-up's draws from NumPy's
legacy global generator (and puts that generator's state back afterwards).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

__all__ = [
    "circle_grid",
    "relu_regression",
    "spirals",
    "train_val_split",
    "two_moons",
]

# The random ReLU regression's sizes: 128 inputs of 1000 features, 100 hidden units, one output.
RELU_BATCH, RELU_INPUT, RELU_HIDDEN, RELU_OUTPUT = 128, 1000, 100, 1


def circle_grid(sample_density: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The circle classifier's data: o(x, y) = 1.0 inside the unit circle, else 0.0, on a grid over
    [-2, 2]².

    Point k = i * (sample_density + 1) + j is (x, y) = (-2 + 4i/d, -2 + 4j/d), x the outer loop,
    exactly as the write-up builds its list (the default d = 10 gives its 121 points, starting
    [-2.0, -2.0], [-2.0, -1.6], ...).

    Returns (X, z): X of shape (n, 2) and z of shape (n,), float64, n = (d + 1)².
    Raises ValueError if sample_density is not a positive integer.
    """
    d = _int_at_least("sample_density", sample_density, 1)
    # Python floats, computed as the write-up does, so every coordinate is bit-identical to it.
    xs = [[-2.0 + 4 * x / d, -2.0 + 4 * y / d] for x in range(d + 1) for y in range(d + 1)]
    z = [1.0 if x * x + y * y < 1 else 0.0 for x, y in xs]
    return np.array(xs, dtype=np.float64), np.array(z, dtype=np.float64)


def relu_regression(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The random ReLU regression's data and initial weights, drawn as its write-up draws them.

    ``np.random.seed(seed)``, then ``np.random.randn`` for the inputs (128, 1000), the targets
    (128, 1), W1 (1000, 100) and W2 (100, 1), in that order. The legacy global generator's state
    is saved first and restored afterwards, so calling this does not change what other code
    drawing from ``np.random`` gets.

    Returns (inputs, targets, W1, W2), float64 arrays.
    Raises ValueError if seed is not an integer in [0, 2**32).
    """
    seed = _int_at_least("seed", seed, 0)
    if seed >= 2**32:
        raise ValueError(f"seed must be below 2**32 for np.random.seed, got {seed}")
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        inputs = np.random.randn(RELU_BATCH, RELU_INPUT)
        targets = np.random.randn(RELU_BATCH, RELU_OUTPUT)
        w1 = np.random.randn(RELU_INPUT, RELU_HIDDEN)
        w2 = np.random.randn(RELU_HIDDEN, RELU_OUTPUT)
    finally:
        np.random.set_state(state)
    return inputs, targets, w1, w2


def two_moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, as scikit-learn's ``make_moons``.

    The first ``n - n // 2`` points lie on the upper moon (label 0), the rest on the lower one
    (label 1), each point moved by Gaussian noise of standard deviation ``noise``. The points
    are in class order, not shuffled (see ``train_val_split``).

    Returns (X, y): X float64 of shape (n, 2), y int64 labels of shape (n,).
    Raises ValueError if n < 2 or not an integer, if noise is negative or not finite, or if
    seed is not a non-negative integer.
    """
    n = _int_at_least("n", n, 2)
    noise = _non_negative("noise", noise)
    rng = np.random.default_rng(_int_at_least("seed", seed, 0))
    n_upper = n - n // 2
    n_lower = n // 2
    t_upper = np.linspace(0.0, np.pi, n_upper)
    t_lower = np.linspace(0.0, np.pi, n_lower)
    upper = np.column_stack([np.cos(t_upper), np.sin(t_upper)])
    lower = np.column_stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)])
    x = np.concatenate([upper, lower]) + rng.normal(scale=noise, size=(n, 2))
    y = np.concatenate([np.zeros(n_upper, np.int64), np.ones(n_lower, np.int64)])
    return x, y


def spirals(
    n_per_class: int = 100, classes: int = 3, noise: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The CS231n spiral: ``classes`` arms of ``n_per_class`` points, one class per arm.

    Arm j has radius r = linspace(0, 1) and angle t = linspace(4j, 4(j + 1)) + noise · N(0, 1),
    and its points are (r sin t, r cos t). The points are in class order, not shuffled.

    Returns (X, y): X float64 of shape (n_per_class * classes, 2), y int64 labels in
    [0, classes).
    Raises ValueError if n_per_class < 1 or classes < 1 (or either is not an integer), if noise
    is negative or not finite, or if seed is not a non-negative integer.
    """
    n_per_class = _int_at_least("n_per_class", n_per_class, 1)
    classes = _int_at_least("classes", classes, 1)
    noise = _non_negative("noise", noise)
    rng = np.random.default_rng(_int_at_least("seed", seed, 0))
    x = np.zeros((n_per_class * classes, 2))
    y = np.zeros(n_per_class * classes, dtype=np.int64)
    r = np.linspace(0.0, 1.0, n_per_class)
    for j in range(classes):
        ix = slice(n_per_class * j, n_per_class * (j + 1))
        t = (
            np.linspace(j * 4.0, (j + 1) * 4.0, n_per_class)
            + rng.standard_normal(n_per_class) * noise
        )
        x[ix] = np.column_stack([r * np.sin(t), r * np.cos(t)])
        y[ix] = j
    return x, y


def train_val_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle (x, y) together with ``np.random.default_rng(seed)`` and split off a validation set.

    The validation set gets round(len(x) * val_fraction) rows, at least one, and the training
    set keeps at least one.

    Returns (x_train, y_train, x_val, y_val).
    Raises ValueError if x and y differ in length, if there are fewer than 2 rows, or if
    val_fraction is not strictly between 0 and 1.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}")
    if len(x) < 2:
        raise ValueError(f"need at least 2 rows to split, got {len(x)}")
    fraction = _non_negative("val_fraction", val_fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction must be strictly between 0 and 1, got {val_fraction!r}")
    n_val = min(max(1, round(len(x) * fraction)), len(x) - 1)
    order = np.random.default_rng(_int_at_least("seed", seed, 0)).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


# -- argument checks --------------------------------------------------------------------------


def _int_at_least(name: str, value: object, low: int) -> int:
    # bool is an Integral, but two_moons(True) is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return int(value)


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and non-negative, got {value!r}")
    return v
