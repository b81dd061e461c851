"""MLPTrainer reads what its model ends in through the module tree: logits or probabilities,
softmax or sigmoid, wherever the output layer sits; it refuses a model it cannot read. Each loss
is checked against its formula on the model's own outputs, computed here with NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.testing as npt
import pytest
from backproplab.autograd import Tensor
from backproplab.nn.datasets import two_moons
from backproplab.nn.trainer import MLPTrainer

from backproplab import nn

X, Y = two_moons(40, noise=0.2, seed=3)


def trainer(model: nn.Module, loss: str, **kwargs: Any) -> MLPTrainer:
    return MLPTrainer(model, 0.05, 16, loss, seed=0, verbose=False, **kwargs)


def outputs(model: nn.Module, x: np.ndarray = X) -> np.ndarray:
    model.eval()
    return np.asarray(model(Tensor(x)).data)


def true_cross_entropy(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def true_bce(p: np.ndarray, t: np.ndarray) -> float:
    return float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))


@pytest.mark.parametrize("compile_", [True, False])
def test_cross_entropy_on_a_softmax_mlp_inside_a_sequential(compile_: bool) -> None:
    model = nn.Sequential(nn.MLP(2, 2, [6], "tanh", is_softmax=True, seed=1))
    p = outputs(model)
    t = trainer(model, "cross-entropy", compile=compile_)
    result = t.evaluate(X, Y)
    npt.assert_allclose(result["loss"], true_cross_entropy(p, Y), rtol=1e-12)
    assert result["acc"] == np.mean(p.argmax(axis=1) == Y)
    # training steps use the logits too: the first epoch's loss is the true one before it
    first = t.train(X, Y, epochs=1)[0]
    assert np.isfinite(first["train_loss"])


def test_cross_entropy_on_a_softmax_mlp_two_sequentials_deep() -> None:
    inner = nn.MLP(4, 2, [5], "relu", is_softmax=True, seed=2)
    model = nn.Sequential(nn.Linear(2, 4, "none", seed=0), nn.Tanh(), nn.Sequential(inner))
    p = outputs(model)
    npt.assert_allclose(
        trainer(model, "cross-entropy").evaluate(X, Y)["loss"], true_cross_entropy(p, Y), 1e-12
    )


def test_bce_on_a_sigmoid_mlp_inside_a_sequential() -> None:
    model = nn.Sequential(nn.MLP(2, 1, [6], "sigmoid", seed=1))
    p = outputs(model)
    t = Y.reshape(-1, 1).astype(np.float64)
    result = trainer(model, "bce").evaluate(X, t)
    npt.assert_allclose(result["loss"], true_bce(p, t), rtol=1e-12)
    assert result["acc"] == np.mean((p > 0.5) == t)


def test_bce_on_a_softmax_mlp_takes_its_probabilities() -> None:
    model = nn.MLP(2, 2, [6], "tanh", is_softmax=True, seed=4)
    p = outputs(model)
    t = np.eye(2)[Y]
    result = trainer(model, "bce").evaluate(X, t)
    npt.assert_allclose(result["loss"], true_bce(p, t), rtol=1e-12)
    assert result["acc"] == np.mean(np.all((p > 0.5) == t, axis=1))
    assert result["acc"] > 0.0


def test_bce_on_a_sequential_ending_in_a_sigmoid_module() -> None:
    inner = nn.Sequential(nn.Linear(2, 4, "none", seed=0), nn.Tanh(), nn.Linear(4, 1, "none"))
    model = nn.Sequential(inner, nn.Sigmoid())
    p = outputs(model)
    t = Y.reshape(-1, 1).astype(np.float64)
    npt.assert_allclose(trainer(model, "bce").evaluate(X, t)["loss"], true_bce(p, t), 1e-12)


def test_bce_on_bare_outputs_takes_them_as_logits() -> None:
    model = nn.Sequential(nn.MLP(2, 1, [6], "tanh", seed=1, init="xavier"))
    model.layers[0].layers[-1].use_act = False
    z = outputs(model)
    p = 1 / (1 + np.exp(-z))
    t = Y.reshape(-1, 1).astype(np.float64)
    result = trainer(model, "bce").evaluate(X, t)
    npt.assert_allclose(result["loss"], true_bce(p, t), rtol=1e-12)
    assert result["acc"] == np.mean((z > 0) == t)


class Scores(nn.Module):
    """A module with a forward of its own: the trainer cannot see what it ends in."""

    def __init__(self) -> None:
        self.w = Tensor(np.random.default_rng(0).normal(size=(2, 2)), requires_grad=True)

    def forward(self, x: Tensor) -> Tensor:
        return (x @ self.w).softmax(axis=-1)


@pytest.mark.parametrize("loss", ["cross-entropy", "bce"])
def test_a_model_whose_output_cannot_be_told_is_refused(loss: str) -> None:
    with pytest.raises(TypeError, match=r"cannot tell .*Scores.* logits or probabilities"):
        trainer(Scores(), loss)
    said = Scores()
    said.applied_activation = "softmax"  # type: ignore[attr-defined]  # but no logits to train on
    with pytest.raises(TypeError, match=r"is_softmax = True and a logits\(x\) method"):
        trainer(said, loss)


def test_a_model_that_says_what_it_ends_in_is_taken_at_its_word() -> None:
    class Probabilities(Scores):
        applied_activation = "sigmoid"

        def forward(self, x: Tensor) -> Tensor:
            return (x @ self.w).sigmoid()

    model = Probabilities()
    p = outputs(model)
    t = np.eye(2)[Y]
    npt.assert_allclose(trainer(model, "bce").evaluate(X, t)["loss"], true_bce(p, t), 1e-12)
    trainer(Scores(), "sq-error")  # a regression loss needs no reading


def test_the_sizes_are_read_through_the_tree() -> None:
    model = nn.Sequential(nn.Sequential(nn.MLP(3, 2, [4], "tanh", True, seed=0)))
    t = trainer(model, "cross-entropy")
    assert (t.in_features, t.out_features) == (3, 2)
    with pytest.raises(ValueError, match="x has 2 features per row, the model takes 3"):
        t.evaluate(X, Y)


@pytest.mark.parametrize(
    ("model", "loss", "advice"),
    [
        (
            nn.scalar.MLP(3, [4, 2], "tanh"),
            "cross-entropy",
            r"The same network, trained on its logits, is nn\.MLP\(3, 2, \[4\], 'tanh', "
            r"is_softmax=True\)",
        ),
        (
            nn.scalar.MLP(3, [4, 1], "sigmoid", "sigmoid"),
            "sq-error",
            r"The same network is nn\.MLP\(3, 1, \[4\], 'sigmoid'\)",
        ),
        (nn.scalar.MLP(3, [4, 2], "tanh"), "sq-error", r"nn\.Linear layers .* nn\.Sequential"),
    ],
)
def test_a_scalar_mlp_is_refused_when_the_trainer_is_built(
    model: nn.Module, loss: str, advice: str
) -> None:
    with pytest.raises(TypeError, match=rf"nn\.scalar\.MLP\(nin=3, .*network of Values.*{advice}"):
        trainer(model, loss)


# -- predict and predict_proba take batches -----------------------------------------------------


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_one_sample_as_a_1d_array_is_refused_with_the_reshape_to_use(method: str) -> None:
    model = nn.MLP(4, 3, [5], "tanh", is_softmax=True, seed=0)
    sample = np.arange(4.0)
    with pytest.raises(ValueError, match=r"shape \(4,\).*reshape\(1, -1\)"):
        getattr(model, method)(sample)
    one = getattr(model, method)(sample.reshape(1, -1))
    assert one.shape == ((1, 3) if method == "predict_proba" else (1,))


def test_predict_of_a_regression_mlp_takes_batches_too() -> None:
    model = nn.MLP(4, 2, [5], "tanh", seed=0)
    with pytest.raises(ValueError, match=r"shape \(4,\).*reshape\(1, -1\)"):
        model.predict(np.arange(4.0))
    assert model.predict(np.ones((3, 4))).shape == (3, 2)


def test_bce_on_a_single_sigmoid_linear_layer() -> None:
    model = nn.Linear(2, 1, seed=5)  # the configurable MLP's default activation: sigmoid
    p = outputs(model)
    t = Y.reshape(-1, 1).astype(np.float64)
    result = trainer(model, "bce").evaluate(X, t)
    npt.assert_allclose(result["loss"], true_bce(p, t), rtol=1e-12)
    assert result["acc"] == np.mean((p > 0.5) == t)
    assert trainer(model, "bce").in_features == 2
