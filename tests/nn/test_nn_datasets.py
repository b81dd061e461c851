"""nn.datasets: the seeds' data and the toy classification sets."""

from __future__ import annotations

import numpy as np
import pytest
from backproplab.nn.datasets import (
    circle_grid,
    relu_regression,
    spirals,
    train_val_split,
    two_moons,
)

from bench.seed001_writeup import make_dataset


def test_circle_grid_is_seed_001s() -> None:
    X, z = circle_grid()
    assert X.shape == (121, 2) and z.shape == (121,)
    assert X.dtype == z.dtype == np.float64
    assert [*X[0], z[0]] == [-2.0, -2.0, 0.0]
    assert [*X[1], z[1]] == [-2.0, -1.6, 0.0]
    assert list(X[11]) == [-1.6, -2.0]  # x is the outer loop
    assert list(X[60]) == [0.0, 0.0] and z[60] == 1.0
    assert z.sum() == 21  # the grid points strictly inside the unit circle
    expected = make_dataset()  # the write-up's own code
    assert [
        (a, b, c) for (a, b), c in zip(X.tolist(), z.tolist(), strict=True)
    ] == expected  # bit for bit


def test_circle_grid_agrees_with_seed_circle() -> None:
    from backproplab.nn.seed_circle import circle_dataset

    X, z = circle_grid()
    assert np.column_stack([X, z]).tolist() == [list(p) for p in circle_dataset()]


def test_relu_regression_draws_in_the_write_ups_order() -> None:
    np.random.seed(4)
    expected = [
        np.random.randn(128, 1000),
        np.random.randn(128, 1),
        np.random.randn(1000, 100),
        np.random.randn(100, 1),
    ]
    for got, want in zip(relu_regression(4), expected, strict=True):
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_relu_regression_restores_the_global_generator() -> None:
    np.random.seed(99)
    expected = np.random.randn(4)
    np.random.seed(99)
    relu_regression(0)
    np.testing.assert_array_equal(np.random.randn(4), expected)


def test_two_moons_shapes_and_labels() -> None:
    X, y = two_moons(201, noise=0.1, seed=3)
    assert X.shape == (201, 2) and y.shape == (201,)
    assert y.dtype.kind == "i"
    assert np.bincount(y).tolist() == [101, 100]


def test_two_moons_without_noise_lies_on_the_two_half_circles() -> None:
    X, y = two_moons(50, noise=0.0)
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)
    assert np.all(upper[:, 1] >= -1e-12)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0)
    assert np.all(lower[:, 1] <= 0.5 + 1e-12)


def test_spirals_shapes_and_labels() -> None:
    X, y = spirals(40, classes=4, noise=0.2, seed=1)
    assert X.shape == (160, 2) and y.shape == (160,)
    assert np.bincount(y).tolist() == [40, 40, 40, 40]


def test_spirals_without_noise_are_cs231ns_arms() -> None:
    n = 30
    X, y = spirals(n, classes=3, noise=0.0)
    r = np.linspace(0.0, 1.0, n)
    for j in range(3):
        arm = X[y == j]
        t = np.linspace(4.0 * j, 4.0 * (j + 1), n)
        np.testing.assert_allclose(arm, np.column_stack([r * np.sin(t), r * np.cos(t)]))


@pytest.mark.parametrize(
    "make", [lambda s: two_moons(seed=s), lambda s: spirals(seed=s)], ids=["moons", "spirals"]
)
def test_reproducible_by_seed(make: object) -> None:
    a, b, c = make(0), make(0), make(1)  # type: ignore[operator]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_train_val_split() -> None:
    X, y = two_moons(100)
    x_tr, y_tr, x_val, y_val = train_val_split(X, y, 0.2, seed=1)
    assert len(x_tr) == len(y_tr) == 80 and len(x_val) == len(y_val) == 20
    rows = {tuple(r) for r in np.concatenate([x_tr, x_val]).tolist()}
    assert rows == {tuple(r) for r in X.tolist()}
    # Rows keep their labels.
    lookup = {tuple(r): label for r, label in zip(X.tolist(), y.tolist(), strict=True)}
    assert [lookup[tuple(r)] for r in x_val.tolist()] == y_val.tolist()
    again = train_val_split(X, y, 0.2, seed=1)
    np.testing.assert_array_equal(again[2], x_val)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: circle_grid(0), "sample_density"),
        (lambda: relu_regression(-1), "seed"),
        (lambda: relu_regression(2**32), "seed"),
        (lambda: relu_regression(1.5), "seed"),  # type: ignore[arg-type]
        (lambda: two_moons(1), "n"),
        (lambda: two_moons(True), "n"),  # type: ignore[arg-type]
        (lambda: two_moons(10, noise=-0.1), "noise"),
        (lambda: two_moons(10, noise=float("nan")), "noise"),
        (lambda: two_moons(10, seed=-2), "seed"),
        (lambda: spirals(0), "n_per_class"),
        (lambda: spirals(10, classes=0), "classes"),
        (lambda: spirals(10, noise=float("inf")), "noise"),
        (lambda: spirals(10, seed="0"), "seed"),  # type: ignore[arg-type]
        (lambda: train_val_split(np.zeros((4, 2)), np.zeros(3)), "differ in length"),
        (lambda: train_val_split(np.zeros((4, 2)), np.zeros(4), 1.0), "val_fraction"),
    ],
)
def test_bad_arguments_name_themselves(call: object, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        call()  # type: ignore[operator]
