"""One seeding rule: ``backproplab.manual_seed(s)`` seeds every initialiser and the trainer, and
``seed=`` on a model overrides it."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import backproplab.nn as nn
import numpy as np
import pytest
from backproplab.nn.datasets import two_moons

import backproplab

MAKERS: dict[str, Callable[..., Any]] = {
    "nn.MLP": lambda **kw: nn.MLP(2, 3, [4], "tanh", **kw),
    "nn.Linear": lambda **kw: nn.Linear(3, 2, "tanh", **kw),
    "nn.scalar.MLP": lambda **kw: nn.scalar.MLP(2, [3, 1], **kw),
    "nn.scalar.Neuron": lambda **kw: nn.scalar.Neuron(3, **kw),
    "nn.Sequential": lambda **kw: nn.Sequential(
        nn.Linear(2, 3, "none", **kw), nn.Tanh(), nn.Linear(3, 1, "none", **kw)
    ),
}


def _weights(model: Any) -> list[np.ndarray]:
    return [np.array(p.data, dtype=float) for p in model.parameters()]


def _same(a: Any, b: Any) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(_weights(a), _weights(b), strict=True))


@pytest.mark.parametrize("kind", MAKERS)
def test_two_models_built_in_a_row_differ(kind: str) -> None:
    make = MAKERS[kind]
    assert not _same(make(), make())


@pytest.mark.parametrize("kind", MAKERS)
def test_manual_seed_makes_a_run_repeat(kind: str) -> None:
    make = MAKERS[kind]
    backproplab.manual_seed(123)
    first = [make(), make()]
    backproplab.manual_seed(123)
    again = [make(), make()]
    assert all(_same(a, b) for a, b in zip(first, again, strict=True))
    backproplab.manual_seed(124)
    assert not _same(make(), first[0])


@pytest.mark.parametrize("kind", MAKERS)
def test_seed_overrides_manual_seed_and_draws_nothing(kind: str) -> None:
    make = MAKERS[kind]
    backproplab.manual_seed(1)
    a = make(seed=7)
    after_a = make()
    backproplab.manual_seed(2)
    b = make(seed=7)
    assert _same(a, b)
    backproplab.manual_seed(1)
    assert _same(make(), after_a)  # seed=7 took nothing from the shared generator


def test_an_mlp_keeps_the_seed_it_drew() -> None:
    model = nn.MLP(2, 2, [5], "relu")
    assert isinstance(model.seed, int)
    assert _same(model, nn.MLP(2, 2, [5], "relu", seed=model.seed))


def test_the_scalar_modules_leave_pythons_global_random_alone() -> None:
    random.seed(5)
    expected = random.random()
    random.seed(5)
    nn.scalar.MLP(3, [4, 4, 1])
    nn.scalar.MLP(3, [4, 1], seed=3)
    assert random.random() == expected


def _batches(trainer: nn.MLPTrainer, x: np.ndarray, y: np.ndarray) -> list[list[int]]:
    return [yb.tolist() for _, yb in trainer.data_loader((x, y))]


def test_the_trainer_follows_the_same_rule() -> None:
    x, y = two_moons(40, seed=0)
    model = nn.MLP(2, 2, [4], "tanh", True, seed=0)

    def trainer(**kw: Any) -> nn.MLPTrainer:
        return nn.MLPTrainer(model, 0.1, 8, "cross-entropy", verbose=False, **kw)

    assert _batches(trainer(), x, y) != _batches(trainer(), x, y)  # two trainers differ
    backproplab.manual_seed(9)
    first = _batches(trainer(), x, y)
    backproplab.manual_seed(9)
    assert _batches(trainer(), x, y) == first
    backproplab.manual_seed(10)
    assert _batches(trainer(seed=4), x, y) == _batches(trainer(seed=4), x, y)


def test_a_whole_training_run_repeats_after_manual_seed() -> None:
    x, y = two_moons(60, seed=1)

    def run() -> list[float]:
        backproplab.manual_seed(2024)
        model = nn.MLP(2, 2, [8], "tanh", True)
        trainer = nn.MLPTrainer(model, 0.05, 16, "cross-entropy", "adam", verbose=False)
        return [row["train_loss"] for row in trainer.train(x, y, epochs=3)]

    assert run() == run()


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "0", None])
def test_manual_seed_refuses_what_is_not_a_seed(seed: object) -> None:
    with pytest.raises(ValueError, match=r"manual_seed takes an int in \[0, 2\*\*32\), got"):
        backproplab.manual_seed(seed)  # type: ignore[arg-type]


def test_initial_seed_reports_the_last_manual_seed() -> None:
    from backproplab.autograd.seeding import initial_seed

    backproplab.manual_seed(77)
    assert initial_seed() == 77
