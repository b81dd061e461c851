"""Seed 001 on the engine against seed 001's pure-Python code, line for line, weight for weight.

The reference is the write-up's code (bench/seed001_writeup.py). It does its own hand-derived
backprop with no engine at all, so agreement is evidence, not an echo.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import pytest
from backproplab.autograd import Tensor, Value
from backproplab.nn.module import StateError
from backproplab.nn.scalar import MLP
from backproplab.nn.seed_circle import (
    CircleNet,
    CircleTensorNet,
    circle_dataset,
    circle_lines,
    circle_model,
    circle_target,
    predict_grid,
    train_circle,
)

from bench.seed001_writeup import MyNet, make_dataset, one_step

# --- running the reference once -----------------------------------------------------------------


def flat_params(net):
    """The reference's parameters in the engine's order: per neuron, its weights then its bias."""
    return [p for layer in net.layers for n in layer for p in (*n.weights, n.bias)]


@dataclass
class Reference:
    initial: list[float]
    untrained: float
    lines: list[str]
    losses: list[float]
    params_at: dict[int, list[float]] = field(default_factory=dict)


SNAPSHOTS = (300, 2000)


@pytest.fixture(scope="module")
def ref() -> Reference:
    state = random.getstate()
    try:
        random.seed(0)  # as the write-up, at import time, before MyNet(2, [4])
        net = MyNet(2, [4])
    finally:
        random.setstate(state)
    dataset = make_dataset()
    untrained = net.forward([0, 0])
    out = Reference(flat_params(net), untrained, [f"untrained f(0, 0) = {untrained:.4f}"], [])
    # seed 001's train(2000, learning_rate=10), its print turned into a list
    for i in range(2000):
        loss = one_step(net, dataset, 10)
        out.losses.append(loss)
        if i == 0 or (i + 1) % 100 == 0:
            out.lines.append(f"{i + 1} {loss:.4f}")
        if i + 1 in SNAPSHOTS:
            out.params_at[i + 1] = flat_params(net)
    return out


def engine_params(model: CircleNet | CircleTensorNet) -> list[float]:
    """A model's parameters in the reference's order (the tensor layout unpicked by hand)."""
    if isinstance(model, CircleNet):
        return [p.data for p in model.parameters()]
    W1, b1, W2, b2 = (model.W1.data, model.b1.data, model.W2.data, model.b2.data)
    hidden = [v for j in range(4) for v in (W1[0, j], W1[1, j], b1[j])]
    return [float(v) for v in (*hidden, *W2[:, 0], b2[0])]


def assert_close(actual: list[float], expected: list[float], rel: float = 1e-9) -> None:
    assert len(actual) == len(expected)
    for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert a == pytest.approx(e, rel=rel, abs=1e-12), f"parameter {k}: {a!r} vs {e!r}"


# --- the data and the untrained network ---------------------------------------------------------


def test_dataset_is_seed_001s() -> None:
    data = circle_dataset()
    assert len(data) == 121
    assert data[:2] == [(-2.0, -2.0, 0.0), (-2.0, -1.6, 0.0)]
    assert data == make_dataset()  # every float, in order
    assert data[60] == (0.0, 0.0, 1.0)
    assert sum(z for *_, z in data) == 21.0  # the grid points strictly inside the unit circle
    assert circle_target(0.6, 0.8) == 0.0  # on the circle is outside, as x² + y² < 1 says


def test_dataset_density() -> None:
    assert len(circle_dataset(4)) == 25
    with pytest.raises(ValueError, match="sample_density"):
        circle_dataset(0)


@pytest.mark.parametrize("engine", ["value", "tensor"])
def test_initial_weights_and_untrained_output(ref: Reference, engine: str) -> None:
    model = circle_model(engine)
    assert engine_params(model) == ref.initial  # the same draws, exactly
    assert ref.initial[0] == 0.8444218515250481 - 0.5  # random.seed(0); random()
    assert ref.initial[2] == 0.0  # biases start at zero
    assert f"{ref.untrained:.4f}" == "0.5588"
    lines, _ = circle_lines(engine, steps=0)
    assert lines == ["untrained f(0, 0) = 0.5588"]


def test_circle_net_leaves_the_global_random_state_alone() -> None:
    random.seed(123)
    expected = random.random()
    random.seed(123)
    CircleNet()
    CircleTensorNet(seed=5)
    assert random.random() == expected


def test_other_seeds_give_other_weights() -> None:
    a, b = CircleNet(0), CircleNet(1)
    assert engine_params(a) != engine_params(b)
    assert engine_params(CircleTensorNet(1)) == engine_params(b)


# --- training ------------------------------------------------------------------------------------


def test_tensor_engine_prints_seed_001s_lines_over_2000_steps(ref: Reference) -> None:
    lines, model = circle_lines("tensor", steps=2000)
    assert lines == ref.lines
    assert len(lines) == 22 and lines[1].startswith("1 ") and lines[-1].startswith("2000 ")
    assert isinstance(model, CircleTensorNet)
    assert_close(engine_params(model), ref.params_at[2000])


def test_value_engine_prints_seed_001s_lines(ref: Reference) -> None:
    lines, model = circle_lines("value", steps=300)
    assert lines == ref.lines[:5]  # untrained, 1, 100, 200, 300
    assert isinstance(model, CircleNet)
    assert_close(engine_params(model), ref.params_at[300])


@pytest.mark.parametrize("engine", ["value", "tensor"])
def test_every_steps_loss_is_the_one_before_its_update(ref: Reference, engine: str) -> None:
    losses = list(train_circle(steps=50, engine=engine))
    assert [s for s, _ in losses] == list(range(1, 51))
    assert_close([loss for _, loss in losses], ref.losses[:50])


def test_train_circle_trains_the_model_passed_in(ref: Reference) -> None:
    model = CircleNet()
    steps = train_circle(steps=3, model=model)
    assert engine_params(model) == ref.initial  # nothing happens until it is iterated
    assert len(list(steps)) == 3
    assert engine_params(model) != ref.initial
    assert model.parameters()[0].grad == 0.0  # gradients zeroed after each update


def test_train_circle_errors() -> None:
    with pytest.raises(ValueError, match="unknown engine 'torch'"):
        train_circle(engine="torch")  # at the call, before any iteration
    with pytest.raises(ValueError, match="steps must be"):
        train_circle(steps=-1)
    with pytest.raises(ValueError, match="CircleTensorNet, got CircleNet"):
        train_circle(engine="tensor", model=CircleNet())
    with pytest.raises(ValueError, match="unknown engine"):
        circle_lines("numpy")


# --- the trained function over the plane ---------------------------------------------------------


def reference_net_with(params: list[float]) -> MyNet:
    state = random.getstate()
    try:
        net = MyNet(2, [4])
    finally:
        random.setstate(state)
    it = iter(params)
    for layer in net.layers:
        for n in layer:
            n.weights = [next(it) for _ in n.weights]
            n.bias = next(it)
    return net


@pytest.mark.parametrize("engine", ["value", "tensor"])
def test_predict_grid_against_the_reference(ref: Reference, engine: str) -> None:
    net = reference_net_with(ref.params_at[300])
    xs, ys = [-2.0, -0.5, 0.0, 1.5], [-1.0, 0.25, 2.0]  # unequal lengths catch a transposition
    expected = np.array([[net.forward([x, y]) for x in xs] for y in ys])

    model = circle_model(engine)
    model.load_state_dict(_state_from_flat(engine, ref.params_at[300]))
    out = predict_grid(model, engine, xs, ys)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(
        predict_grid(model.state_dict(), engine, xs, ys), expected, rtol=1e-12
    )


def _state_from_flat(engine: str, params: list[float]) -> dict[str, np.ndarray]:
    if engine == "value":
        names = [name for name, _ in CircleNet().named_parameters()]
        return {name: np.array(v) for name, v in zip(names, params, strict=True)}
    p = np.array(params)
    hidden = p[:12].reshape(4, 3)  # per hidden neuron: w0, w1, b
    return {"W1": hidden[:, :2].T, "b1": hidden[:, 2], "W2": p[12:16].reshape(4, 1), "b2": p[16:]}


def test_predict_grid_of_the_trained_network_separates_the_disc() -> None:
    _, model = circle_lines("tensor", steps=2000)
    out = predict_grid(model, "tensor", [0.0, 1.9], [0.0])
    assert out[0, 0] > 0.9 and out[0, 1] < 0.1


def test_predict_grid_errors() -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        predict_grid(CircleNet(), "jax", [0.0], [0.0])
    with pytest.raises(ValueError, match="scalar MLP"):
        predict_grid(CircleTensorNet(), "value", [0.0], [0.0])
    with pytest.raises(ValueError, match="Tensor module"):
        predict_grid(CircleNet(), "tensor", [0.0], [0.0])
    with pytest.raises(ValueError, match="one output, this one has 2"):
        predict_grid(MLP(2, [2]), "value", [0.0], [0.0])
    with pytest.raises(StateError, match="missing"):
        predict_grid({"W1": np.zeros((2, 4))}, "tensor", [0.0], [0.0])


def test_value_and_tensor_models_are_what_their_names_say() -> None:
    assert isinstance(CircleNet()([0.0, 0.0]), Value)
    assert isinstance(CircleTensorNet()(Tensor(np.zeros((5, 2)))), Tensor)
    assert CircleTensorNet()(Tensor(np.zeros((5, 2)))).shape == (5, 1)


# -- predict and predict_proba ------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["value", "tensor"])
def test_the_trained_circle_classifier_predicts_classes_and_probabilities(engine: str) -> None:
    from backproplab.nn.datasets import circle_grid
    from backproplab.nn.seed_circle import circle_lines, predict_grid

    _, model = circle_lines(engine, 600)
    X, z = circle_grid()
    proba = model.predict_proba(X)
    assert proba.shape == (121, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    f = np.array([predict_grid(model, engine, [x], [y])[0, 0] for x, y in X])
    np.testing.assert_allclose(proba[:, 1], f, rtol=1e-12)  # column 1: inside, the output f
    labels = model.predict(X)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, (f > 0.5).astype(int))
    assert np.mean(labels == z) > 0.95  # trained, it separates the grid
    with pytest.raises(ValueError, match=r"points of shape \(n, 2\), got \(3,\)"):
        model.predict(np.zeros(3))
