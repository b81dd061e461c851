"""Seed 002 on the Tensor engine against the write-up's hand-derived NumPy loop."""

from __future__ import annotations

import itertools

import backproplab.nn.seed_relu as seed_relu
import numpy as np
import pytest
from backproplab.nn.datasets import relu_regression
from backproplab.nn.seed_relu import ReluRun, is_printed, relu_lines, relu_numpy_reference, relu_run

SCHEDULE = [*range(0, 101, 10), *range(200, 1000, 100)]


@pytest.fixture(scope="module")
def engine_run() -> ReluRun:
    return relu_run(0)


@pytest.fixture(scope="module")
def numpy_run() -> ReluRun:
    return relu_numpy_reference(0)


def test_schedule_is_the_write_ups() -> None:
    # The write-up's condition, with its NumPy-style operators: & binds tighter than |.
    expected = [i for i in range(1000) if (i <= 100) & (i % 10 == 0) | (i % 100 == 0)]
    assert expected == SCHEDULE
    assert [i for i in range(1000) if is_printed(i)] == SCHEDULE


@pytest.mark.slow
def test_engine_follows_the_hand_derived_gradients(engine_run: ReluRun, numpy_run: ReluRun) -> None:
    assert [i for i, _ in engine_run.losses] == SCHEDULE
    assert [i for i, _ in numpy_run.losses] == SCHEDULE
    ours = np.array([loss for _, loss in engine_run.losses])
    reference = np.array([loss for _, loss in numpy_run.losses])
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=0)
    assert engine_run.errors.shape == numpy_run.errors.shape == (5, 1)
    np.testing.assert_allclose(engine_run.errors, numpy_run.errors, rtol=1e-9, atol=1e-15)


def test_reference_starts_where_the_data_says(numpy_run: ReluRun) -> None:
    # The loss before any update, computed straight from the seeded draws.
    np.random.seed(0)
    x, y = np.random.randn(128, 1000), np.random.randn(128, 1)
    w1, w2 = np.random.randn(1000, 100), np.random.randn(100, 1)
    first = float(np.sum((np.maximum(x @ w1, 0) @ w2 - y) ** 2))
    assert numpy_run.losses[0] == (0, pytest.approx(first, rel=1e-12))


@pytest.mark.slow
def test_training_converges(engine_run: ReluRun) -> None:
    losses = [loss for _, loss in engine_run.losses]
    # As in the write-up: millions at first, then down by more than four orders of magnitude.
    assert losses[0] > 1e6
    assert losses[-1] < 1e-4 * losses[0]
    assert all(b < a for a, b in itertools.pairwise(losses[2:]))  # down from step 20 on
    assert np.all(np.abs(engine_run.errors) < 0.05)


def test_relu_lines_format(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = ReluRun([(0, 3107119.8819272295), (10, 0.1)], np.array([[8.12997038e-05], [-0.25]]))
    monkeypatch.setattr(seed_relu, "relu_run", lambda seed: fake)
    assert relu_lines(7) == ["0 3107119.8819272295", "10 0.1", "8.12997038e-05", "-0.25"]


def test_a_short_run_matches_too() -> None:
    ours = relu_run(3, iterations=25, learning_rate=5e-7)
    ref = relu_numpy_reference(3, iterations=25, learning_rate=5e-7)
    assert [i for i, _ in ours.losses] == [0, 10, 20]
    np.testing.assert_allclose(
        [v for _, v in ours.losses], [v for _, v in ref.losses], rtol=1e-9, atol=0
    )
    np.testing.assert_allclose(ours.errors, ref.errors, rtol=1e-9)


def test_data_comes_from_relu_regression() -> None:
    # Zero iterations: the errors are those of the untrained network on relu_regression(5).
    x, y, w1, w2 = relu_regression(5)
    run = relu_run(5, iterations=0)
    assert run.losses == []
    np.testing.assert_allclose(run.errors, (np.maximum(x @ w1, 0) @ w2 - y)[:5], rtol=1e-12)


def test_reference_leaves_the_global_generator_alone() -> None:
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    relu_numpy_reference(0, iterations=1)
    np.testing.assert_array_equal(np.random.random(3), expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iterations": -1}, "iterations"),
        ({"iterations": 2.5}, "iterations"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        relu_run(**kwargs)  # type: ignore[arg-type]
