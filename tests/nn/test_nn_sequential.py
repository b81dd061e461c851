"""nn.Sequential and the activation modules against nn.MLP, NumPy and central differences; a
classifier's predict and predict_proba."""

from __future__ import annotations

import math

import backproplab.nn as nn
import numpy as np
import numpy.testing as npt
import pytest
from backproplab.autograd import Tensor, Value
from backproplab.nn.datasets import train_val_split, two_moons

X = np.random.default_rng(0).standard_normal((6, 3))


def _as_mlp(activation: str, seed: int = 3) -> tuple[nn.Sequential, nn.MLP]:
    """A Sequential and an MLP with the same weights: Linear, activation, Linear, activation."""
    mlp = nn.MLP(3, 2, [5], activation, seed=seed)
    act = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}[activation]
    seq = nn.Sequential(nn.Linear(3, 5, "none"), act(), nn.Linear(5, 2, "none"), act())
    rng = np.random.default_rng(seed)
    for layer, twin in zip(mlp.layers, (seq[0], seq[2]), strict=True):
        assert isinstance(twin, nn.Linear) and twin.bias is not None and layer.bias is not None
        layer.bias.data = rng.normal(size=layer.bias.shape)  # non-zero, so a lost bias shows
        twin.weight.data = layer.weight.data.copy()
        twin.bias.data = layer.bias.data.copy()
    return seq, mlp


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_sequential_is_the_mlp_it_spells_out(activation: str) -> None:
    seq, mlp = _as_mlp(activation)
    npt.assert_allclose(seq(X).data, mlp(X).data, rtol=1e-12)
    (seq(X) ** 2).sum().backward()
    (mlp(X) ** 2).sum().backward()
    for i, layer in enumerate(mlp.layers):
        twin = seq[2 * i]
        npt.assert_allclose(twin.weight.grad, layer.weight.grad, rtol=1e-12)
        npt.assert_allclose(twin.bias.grad, layer.bias.grad, rtol=1e-12)


def _loss(model: nn.Sequential) -> float:
    return float(((model(X) - 0.5) ** 2).sum().item())


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_sequential_gradients_against_central_differences(activation: str) -> None:
    seq, _ = _as_mlp(activation, seed=8)
    loss = ((seq(X) - 0.5) ** 2).sum()
    loss.backward()
    eps = 1e-6
    for name, p in seq.named_parameters():
        numeric = np.zeros_like(p.data)
        for index in np.ndindex(p.data.shape):
            keep = p.data[index]
            p.data[index] = keep + eps
            up = _loss(seq)
            p.data[index] = keep - eps
            down = _loss(seq)
            p.data[index] = keep
            numeric[index] = (up - down) / (2 * eps)
        npt.assert_allclose(p.grad, numeric, rtol=1e-5, atol=1e-7, err_msg=name)


def test_parameter_names_and_indexing() -> None:
    seq = nn.Sequential(nn.Linear(2, 4, "none"), nn.ReLU(), nn.Linear(4, 1, "none"))
    assert [n for n, _ in seq.named_parameters()] == [
        "layers.0.weight",
        "layers.0.bias",
        "layers.2.weight",
        "layers.2.bias",
    ]
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU)


def test_activation_modules_on_values_and_arrays() -> None:
    x = Value(0.3)
    assert nn.Tanh()(x).data == pytest.approx(math.tanh(0.3))
    assert nn.Sigmoid()(x).data == pytest.approx(1 / (1 + math.exp(-0.3)))
    assert nn.ReLU()(Value(-2.0)).data == 0.0
    out = nn.ReLU()(np.array([-1.0, 2.0]))
    assert isinstance(out, Tensor)
    npt.assert_array_equal(out.data, [0.0, 2.0])
    assert nn.Tanh().parameters() == []


def test_a_linear_with_its_own_activation_before_an_activation_module_is_refused() -> None:
    with pytest.raises(ValueError, match=r"applies sigmoid itself and is followed by Tanh\(\)"):
        nn.Sequential(nn.Linear(2, 4), nn.Tanh())
    nn.Sequential(nn.Linear(2, 4, "tanh"), nn.Linear(4, 1, "none"))  # no module after: fine


@pytest.mark.parametrize("bad", [[], [np.tanh], ["relu"]])
def test_sequential_takes_modules(bad: list[object]) -> None:
    with pytest.raises(TypeError, match="Sequential"):
        nn.Sequential(*bad)  # type: ignore[arg-type]


def test_the_trainer_trains_a_sequential() -> None:
    x, y = two_moons(200, noise=0.1, seed=0)
    x_tr, y_tr, x_val, y_val = train_val_split(x, y, 0.2, seed=0)
    model = nn.Sequential(
        nn.Linear(2, 16, "none", seed=0), nn.Tanh(), nn.Linear(16, 2, "none", seed=1)
    )
    trainer = nn.MLPTrainer(model, 0.01, 32, "cross-entropy", "adam", seed=0, verbose=False)
    history = trainer.train(x_tr, y_tr, x_val, y_val, 80)
    assert history[-1]["val_acc"] >= 0.95
    assert model.predict(x_val).shape == (len(x_val), 2)


# -- predict and predict_proba ----------------------------------------------------------------


def test_a_classifier_predicts_labels_and_probabilities() -> None:
    model = nn.MLP(3, 4, [6], "tanh", True, seed=1)
    proba = model.predict_proba(X)
    assert proba.shape == (6, 4)
    npt.assert_allclose(proba.sum(axis=1), 1.0)
    labels = model.predict(X)
    assert labels.shape == (6,) and labels.dtype.kind == "i"
    npt.assert_array_equal(labels, proba.argmax(axis=1))
    logits = model.logits(X).data
    npt.assert_array_equal(labels, logits.argmax(axis=1))  # the softmax keeps the order


def test_a_regression_model_has_no_probabilities() -> None:
    model = nn.MLP(3, 1, [4], "tanh", seed=2)
    assert model.predict(X).shape == (6, 1)
    with pytest.raises(ValueError, match=r"predict_proba needs a classifier"):
        model.predict_proba(X)
