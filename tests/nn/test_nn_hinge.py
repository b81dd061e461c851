"""micrograd's max-margin loss with its L2 penalty, on Tensors and on Values: values by hand,
gradients against central differences and PyTorch, every refusal, and MLPTrainer("hinge")."""

from __future__ import annotations

import numpy as np
import numpy.testing as npt
import pytest
import torch
from backproplab.autograd import Tensor, Value, gradcheck, numerical_gradient
from backproplab.nn import Linear, MLPTrainer, Sequential, datasets
from backproplab.nn.losses import LOSSES, get_loss, hinge
from backproplab.nn.scalar import MLP as ScalarMLP
from backproplab.nn.scalar import hinge as scalar_hinge

RNG = np.random.default_rng(11)
# Scores kept off the kink 1 - y * score = 0, where the loss has no derivative.
SCORES = np.array([2.3, -0.4, 0.7, -1.8, 0.05, 1.2])
LABELS = np.array([1, 1, -1, -1, 1, -1])
W = RNG.normal(size=(3, 2))
B = RNG.normal(size=(2,))


def by_hand(scores: np.ndarray, labels: np.ndarray, alpha: float, params: list) -> float:
    data = np.maximum(0.0, 1.0 - labels * scores).mean()
    return float(data + alpha * sum((p * p).sum() for p in params))


def torch_grads(alpha: float) -> list[np.ndarray]:
    s = torch.tensor(SCORES, requires_grad=True)
    w = torch.tensor(W, requires_grad=True)
    b = torch.tensor(B, requires_grad=True)
    y = torch.tensor(LABELS, dtype=torch.float64)
    loss = torch.relu(1 + -y * s).mean() + alpha * sum((p * p).sum() for p in (w, b))
    loss.backward()
    return [t.grad.numpy() for t in (s, w, b)]  # type: ignore[union-attr]


@pytest.mark.parametrize("alpha", [0.0, 1e-4, 0.3])
def test_tensor_hinge_value_and_gradients_match_pytorch(alpha: float) -> None:
    s, w, b = Tensor(SCORES, requires_grad=True), Tensor(W, requires_grad=True), Tensor(B, True)
    loss = hinge(s, LABELS, alpha=alpha, parameters=[w, b])
    assert loss.item() == pytest.approx(by_hand(SCORES, LABELS, alpha, [W, B]), rel=1e-12)
    loss.backward()
    ds, dw, db = torch_grads(alpha)
    npt.assert_allclose(s.grad, ds, rtol=1e-12, atol=1e-15)
    if alpha == 0:  # no penalty: the parameters are not in the graph (PyTorch gives zeros)
        assert w.grad is None and b.grad is None
        npt.assert_array_equal(np.concatenate([dw.ravel(), db]), 0.0)
    else:
        npt.assert_allclose(w.grad, dw, rtol=1e-12)
        npt.assert_allclose(b.grad, db, rtol=1e-12)


def test_tensor_hinge_against_central_differences() -> None:
    def f(s: Tensor, w: Tensor) -> Tensor:
        return hinge(s, LABELS, alpha=0.05, parameters=[w])

    assert gradcheck(f, SCORES, W)


def test_tensor_hinge_takes_a_column_of_scores_and_a_column_of_labels() -> None:
    flat = hinge(Tensor(SCORES), LABELS).item()
    assert hinge(Tensor(SCORES[:, None]), LABELS).item() == flat
    assert hinge(Tensor(SCORES), LABELS[:, None].tolist()).item() == flat
    assert hinge(Tensor(SCORES), Tensor(LABELS)).item() == flat


def test_the_gradient_is_minus_y_over_n_inside_the_margin_and_zero_outside() -> None:
    s = Tensor(SCORES, requires_grad=True)
    hinge(s, LABELS).backward()
    inside = 1 - LABELS * SCORES > 0
    npt.assert_array_equal(s.grad, np.where(inside, -LABELS / len(SCORES), 0.0))


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 1, 1, 0, 1, 1], r"-1 or \+1, got \[0, 0\] .*2 \* y - 1"),
        ([1, 1, -1, -1, 2, 1], r"-1 or \+1, got \[2\] at flat index \[4\]"),
        ([1, 1, -1], "differ"),
    ],
)
def test_tensor_hinge_refuses_bad_labels(labels: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hinge(Tensor(SCORES), labels)


def test_tensor_hinge_refuses_many_scores_per_sample_and_a_bad_alpha() -> None:
    with pytest.raises(ValueError, match=r"one score per sample.*\(6, 2\)"):
        hinge(Tensor(np.zeros((6, 2))), LABELS)
    for alpha in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
            hinge(Tensor(SCORES), LABELS, alpha=alpha)


def test_hinge_is_a_loss_by_name() -> None:
    assert LOSSES["hinge"] is hinge
    assert get_loss("hinge") is hinge


# --- on Values, micrograd's way -----------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 1e-4, 0.3])
def test_scalar_hinge_matches_pytorch(alpha: float) -> None:
    scores = [Value(float(v)) for v in SCORES]
    params = [Value(float(v)) for v in (*W.reshape(-1), *B)]
    loss = scalar_hinge(scores, LABELS.tolist(), alpha=alpha, parameters=params)
    assert loss.data == pytest.approx(by_hand(SCORES, LABELS, alpha, [W, B]), rel=1e-12)
    loss.backward()
    ds, dw, db = torch_grads(alpha)
    npt.assert_allclose([v.grad for v in scores], ds, rtol=1e-12, atol=1e-15)
    # a Value's grad starts at 0.0, so with alpha = 0 the parameters show PyTorch's zeros
    npt.assert_allclose([p.grad for p in params], np.concatenate([dw.ravel(), db]), rtol=1e-12)


def test_scalar_hinge_trains_micrograds_mlp_against_central_differences() -> None:
    x, y = datasets.two_moons(n=8, seed=1)
    signs = (2 * y - 1).tolist()
    model = ScalarMLP(2, [4, 4, 1], seed=3)
    params = model.parameters()

    def loss_at(*flat: float) -> float:
        for p, v in zip(params, flat, strict=True):
            p.data = v
        scores = [model(list(map(float, row))) for row in x]
        return scalar_hinge(scores, signs, alpha=1e-2, parameters=params).data

    start = [p.data for p in params]
    loss = scalar_hinge(
        [model(list(map(float, r))) for r in x], signs, alpha=1e-2, parameters=params
    )
    loss.backward()
    engine = [p.grad for p in params]
    numeric = numerical_gradient(loss_at, start)
    npt.assert_allclose(engine, numeric, rtol=1e-5, atol=1e-8)


def test_scalar_hinge_refusals() -> None:
    s = [Value(0.5), Value(-0.5)]
    with pytest.raises(ValueError, match=r"got 0 at index 1 \(for 0/1 labels pass 2 \* y - 1\)"):
        scalar_hinge(s, [1, 0])
    with pytest.raises(ValueError, match="got 3 at index 0"):
        scalar_hinge(s, [3, 1])
    with pytest.raises(ValueError, match="2 scores and 3 labels"):
        scalar_hinge(s, [1, 1, -1])
    with pytest.raises(ValueError, match="0 scores and 0 labels"):
        scalar_hinge([], [])
    with pytest.raises(TypeError, match="score 1 is a float"):
        scalar_hinge([Value(1.0), 2.0], [1, 1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="alpha"):
        scalar_hinge(s, [1, -1], alpha=-0.1)


# --- the trainer takes it by name ---------------------------------------------------------------


def test_mlp_trainer_trains_on_moons_with_hinge_and_reports_accuracy() -> None:
    x, y = datasets.two_moons(n=100, noise=0.1, seed=0)
    signs = 2.0 * y - 1.0
    model = Sequential(
        Linear(2, 16, "relu", seed=1), Linear(16, 16, "relu", seed=2), Linear(16, 1, "none", seed=3)
    )
    trainer = MLPTrainer(
        model,
        learning_rate=0.05,
        batch_size=20,
        lossfn="hinge",
        seed=0,
        optimizer="adam",
        verbose=False,
    )
    history = trainer.train(x, signs, epochs=40)
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["train_acc"] > 0.9
    predicted = np.sign(model(Tensor(x)).data.reshape(-1))
    assert trainer.evaluate(x, signs)["acc"] == pytest.approx(np.mean(predicted == signs))


def test_mlp_trainer_refuses_zero_one_labels_for_hinge_before_a_step() -> None:
    x, y = datasets.two_moons(n=20, seed=0)
    model = Sequential(Linear(2, 4, "relu", seed=1), Linear(4, 1, "none", seed=2))
    before = [p.data.copy() for p in model.parameters()]
    trainer = MLPTrainer(model, learning_rate=0.1, batch_size=5, lossfn="hinge", verbose=False)
    with pytest.raises(ValueError, match=r"y_train must be -1 or \+1.*2 \* y - 1"):
        trainer.train(x, y, epochs=1)
    for p, b in zip(model.parameters(), before, strict=True):
        npt.assert_array_equal(p.data, b)


def test_the_compiled_hinge_step_reads_each_batchs_labels() -> None:
    x, y = datasets.two_moons(n=60, noise=0.2, seed=4)
    signs = 2.0 * y - 1.0

    def run(compile: bool) -> tuple[list, MLPTrainer]:
        model = Sequential(Linear(2, 8, "tanh", seed=5), Linear(8, 1, "none", seed=6))
        trainer = MLPTrainer(
            model, 0.1, 16, "hinge", seed=2, verbose=False, compile=compile, optimizer="sgd"
        )
        return trainer.train(x, signs, x, signs, epochs=5), trainer

    compiled, trainer = run(True)
    assert trainer.compiled
    eager, _ = run(False)
    assert compiled == eager  # to the bit: a replay that kept the first batch's labels would not
