"""MLPTrainer: batches, argument checks, training to a known accuracy, history, regularisation."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pytest
from backproplab.nn.datasets import train_val_split, two_moons
from backproplab.nn.layers import MLP
from backproplab.nn.optim import SGD
from backproplab.nn.trainer import MLPTrainer


def _moons() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = two_moons(200, noise=0.1, seed=0)
    return train_val_split(x, y, 0.2, seed=0)


def _trainer(model: Any = None, **kwargs: Any) -> MLPTrainer:
    model = model if model is not None else MLP(2, 2, [8], "tanh", True)
    args = {"learning_rate": 0.01, "batch_size": 32, "lossfn": "cross-entropy", "verbose": False}
    args.update(kwargs)
    return MLPTrainer(model, **args)


def _weights(model: MLP) -> list[np.ndarray]:
    return [p.data.copy() for p in model.parameters()]


# -- data_loader ------------------------------------------------------------------------------


def test_data_loader_batches_cover_every_row_once_in_pairs() -> None:
    x = np.arange(100.0).reshape(50, 2)
    y = np.arange(50)
    batches = list(_trainer(batch_size=16).data_loader((x, y)))
    assert [len(xb) for xb, _ in batches] == [16, 16, 16, 2]
    assert [len(yb) for _, yb in batches] == [16, 16, 16, 2]
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(50))
    assert seen.tolist() != list(range(50))  # shuffled
    for xb, yb in batches:  # each row kept with its label
        np.testing.assert_array_equal(xb[:, 0], 2.0 * yb)


def test_data_loader_shuffles_reproducibly_and_anew_each_epoch() -> None:
    x, y = np.zeros((30, 2)), np.arange(30)
    a, b = _trainer(batch_size=7, seed=5), _trainer(batch_size=7, seed=5)
    epoch1 = [yb.tolist() for _, yb in a.data_loader((x, y))]
    assert epoch1 == [yb.tolist() for _, yb in b.data_loader((x, y))]
    epoch2 = [yb.tolist() for _, yb in a.data_loader((x, y))]
    assert epoch2 != epoch1
    assert epoch2 == [yb.tolist() for _, yb in b.data_loader((x, y))]
    other = [yb.tolist() for _, yb in _trainer(batch_size=7, seed=6).data_loader((x, y))]
    assert other != epoch1


def test_data_loader_without_shuffle_keeps_order() -> None:
    x, y = np.zeros((5, 2)), np.arange(5)
    batches = [yb.tolist() for _, yb in _trainer(batch_size=2).data_loader((x, y), shuffle=False)]
    assert batches == [[0, 1], [2, 3], [4]]


def test_data_loader_rejects_mismatched_pairs() -> None:
    with pytest.raises(ValueError, match=r"\(4, 2\) and \(3,\)"):
        list(_trainer().data_loader((np.zeros((4, 2)), np.zeros(3))))


# -- checks before any step -------------------------------------------------------------------

GOOD_X = np.zeros((10, 2))
GOOD_Y = np.zeros(10, dtype=int)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((10, 2)), np.zeros(9, dtype=int), r"differ in length: 10 rows and 9"),
        (np.full((10, 2), np.nan), GOOD_Y, r"x_train holds 20 NaN or infinite"),
        (np.zeros((10, 3)), GOOD_Y, r"x_train has 3 features per row, the model takes 2"),
        (np.zeros(10), GOOD_Y, r"x_train must be 2-D"),
        (np.zeros((0, 2)), np.zeros(0, dtype=int), r"x_train is empty"),
        (GOOD_X, np.array([0, 1, 2, 0, 0, 0, 0, 0, 0, 0]), r"class label 2 at index 2, out of"),
        (GOOD_X, np.array([0, -1, 0, 0, 0, 0, 0, 0, 0, 0]), r"class label -1 at index 1"),
        (GOOD_X, np.array([0.0, 0.5] + [0.0] * 8), r"whole-number class labels, got 0.5 at"),
        (GOOD_X, np.array([0.0, np.inf] + [0.0] * 8), r"y_train holds 1 NaN or infinite"),
        (GOOD_X, np.array([[1, 0]] * 9 + [[1, 1]]), r"y_train row 9 is not one-hot"),
        (GOOD_X, np.array([["a"]] * 10), r"y_train must hold numbers"),
    ],
)
def test_bad_training_data_is_refused_before_any_step(
    x: np.ndarray, y: np.ndarray, message: str
) -> None:
    model = MLP(2, 2, [4], "tanh", True)
    before = _weights(model)
    trainer = _trainer(model)
    with pytest.raises(ValueError, match=message):
        trainer.train(x, y, GOOD_X, GOOD_Y, 3)
    for a, b in zip(before, _weights(model), strict=True):
        np.testing.assert_array_equal(a, b)
    assert trainer.history == []


def test_bad_validation_data_is_refused_before_any_step() -> None:
    model = MLP(2, 2, [4], "tanh", True)
    before = _weights(model)
    with pytest.raises(ValueError, match=r"x_val has 5 features per row, the model takes 2"):
        _trainer(model).train(GOOD_X, GOOD_Y, np.zeros((3, 5)), np.zeros(3, dtype=int), 2)
    with pytest.raises(ValueError, match=r"give both x_val and y_val"):
        _trainer(model).train(GOOD_X, GOOD_Y, GOOD_X, None, 2)
    for a, b in zip(before, _weights(model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_regression_targets_must_fit_the_output() -> None:
    model = MLP(2, 1, [4], "tanh")
    with pytest.raises(ValueError, match=r"y_train of shape \(10, 3\) does not fit the model's 1"):
        _trainer(model, lossfn="sq-error").train(GOOD_X, np.zeros((10, 3)), None, None, 1)


def test_bce_labels_must_be_binary() -> None:
    model = MLP(2, 1, [4], "sigmoid")
    with pytest.raises(ValueError, match=r"0/1 labels for 'bce', got 2"):
        _trainer(model, lossfn="bce").train(GOOD_X, np.array([2] + [0] * 9), None, None, 1)


def test_epochs_must_be_a_non_negative_integer() -> None:
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 0, got -1"):
        _trainer().train(GOOD_X, GOOD_Y, GOOD_X, GOOD_Y, -1)
    with pytest.raises(ValueError, match=r"epochs .* got 2.5"):
        _trainer().train(GOOD_X, GOOD_Y, GOOD_X, GOOD_Y, 2.5)  # type: ignore[arg-type]
    assert _trainer().train(GOOD_X, GOOD_Y, GOOD_X, GOOD_Y, 0) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, got 0"),
        ({"batch_size": 2.0}, r"batch_size .* got 2.0"),
        ({"learning_rate": 0.0}, r"learning_rate must be a positive finite number, got 0.0"),
        ({"learning_rate": -1}, r"learning_rate .* got -1"),
        ({"learning_rate": float("nan")}, r"learning_rate .* got nan"),
        ({"lossfn": "svm"}, r"unknown lossfn 'svm': choose one of 'sq-error'"),
        ({"optimizer": "rmsprop"}, r"unknown optimizer 'rmsprop': choose one of 'sgd', 'adam'"),
        ({"seed": -3}, r"seed must be a non-negative integer or None, got -3"),
    ],
)
def test_bad_trainer_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _trainer(**kwargs)


def test_wrong_kinds_of_model_and_optimizer() -> None:
    with pytest.raises(TypeError, match=r"model must be an nn\.Module"):
        MLPTrainer(object(), 0.1, 4, "sq-error")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="step\\(\\) and zero_grad\\(\\)"):
        _trainer(optimizer=object())


# -- training ---------------------------------------------------------------------------------


def test_trains_two_moons_to_95_percent() -> None:
    x_tr, y_tr, x_val, y_val = _moons()
    model = MLP(2, 2, [16, 16], "tanh", True, seed=0)
    trainer = _trainer(model, learning_rate=0.01, optimizer="adam", seed=0)
    history = trainer.train(x_tr, y_tr, x_val, y_val, 100)
    assert history[-1]["val_acc"] >= 0.95
    assert history[-1]["train_acc"] >= 0.95 > history[0]["train_acc"]
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    # The reported accuracy is what the model does, counted independently.
    model.eval()
    predicted = model.predict(x_val)
    assert history[-1]["val_acc"] == pytest.approx(np.mean(predicted == y_val))
    assert not model.training  # left in inference mode


def test_history_fields_for_classification_and_regression() -> None:
    x_tr, y_tr, x_val, y_val = _moons()
    history = _trainer(seed=1).train(x_tr, y_tr, x_val, y_val, 3)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert all(
        set(row) == {"epoch", "train_loss", "val_loss", "train_acc", "val_acc"} for row in history
    )
    assert all(0.0 <= row["val_acc"] <= 1.0 and np.isfinite(row["val_loss"]) for row in history)

    targets = x_tr[:, :1] ** 2
    reg = _trainer(MLP(2, 1, [8], "tanh", use_bias=True), lossfn="sq-error", learning_rate=0.05)
    history = reg.train(x_tr, targets, x_val, x_val[:, :1] ** 2, 2)
    assert [set(row) for row in history] == [{"epoch", "train_loss", "val_loss"}] * 2
    assert reg.history == history


def test_trains_in_training_mode_and_validates_in_inference_mode() -> None:
    x_tr, y_tr, x_val, y_val = _moons()  # 160 and 40 rows: 5 training, 2 validation batches
    model = MLP(2, 2, [8], "tanh", True, layer_dropout=0.5)
    modes: list[bool] = []
    logits = model.logits

    def recording(x: Any) -> Any:
        modes.append(model.training)
        return logits(x)

    model.logits = recording  # type: ignore[method-assign]
    _trainer(model).train(x_tr, y_tr, x_val, y_val, 2)
    assert modes == ([True] * 5 + [False] * 2) * 2


def test_val_loss_is_the_loss_of_the_model_as_it_stands() -> None:
    # Cross-entropy by hand on the validation set, from the model's own logits in inference
    # mode (no dropout), plus the l2 penalty.
    x_tr, y_tr, x_val, y_val = _moons()
    model = MLP(2, 2, [8], "tanh", True, "l2", 0.01, layer_dropout=0.3)
    history = _trainer(model).train(x_tr, y_tr, x_val, y_val, 2)
    model.eval()
    logits = model.logits(x_val).data
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    data_loss = -logp[np.arange(len(y_val)), y_val].mean()
    penalty = 0.01 * sum(float((layer.weight.data**2).sum()) for layer in model.layers)
    assert history[-1]["val_loss"] == pytest.approx(data_loss + penalty, rel=1e-9)


@pytest.mark.parametrize("reg", ["l1", "l2"])
def test_regularisation_enters_the_gradient(reg: str) -> None:
    # One full-batch SGD step from the same weights, with and without the penalty: the two
    # updates differ by exactly lr * d(penalty)/dW, on the weights and not on the biases.
    x_tr, y_tr, _, _ = _moons()
    lr, beta = 0.1, 0.05
    plain = MLP(2, 2, [8], "tanh", True, seed=3)
    penalised = MLP(2, 2, [8], "tanh", True, reg, beta, seed=3)
    start = _weights(plain)
    for model in (plain, penalised):
        _trainer(model, learning_rate=lr, batch_size=len(x_tr), seed=0).train(
            x_tr, y_tr, None, None, 1
        )
    names = [name for name, _ in plain.named_parameters()]
    for name, w0, a, b in zip(names, start, _weights(plain), _weights(penalised), strict=True):
        if name.endswith("weight"):
            grad = 2.0 * beta * w0 if reg == "l2" else beta * np.sign(w0)
            np.testing.assert_allclose(b - a, -lr * grad, rtol=1e-6, atol=1e-12)
        else:
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)


def test_softmax_models_train_on_their_logits() -> None:
    # The stable path: cross-entropy on a softmax model never calls forward (the probabilities).
    x_tr, y_tr, x_val, y_val = _moons()
    model = MLP(2, 2, [8], "tanh", True)

    def no_probabilities(x: Any) -> Any:
        raise AssertionError("forward() called: the trainer should use logits()")

    model.forward = no_probabilities  # type: ignore[method-assign]
    history = _trainer(model).train(x_tr, y_tr, x_val, y_val, 1)
    assert np.isfinite(history[0]["train_loss"])


def test_one_hot_labels_and_an_optimizer_instance() -> None:
    x_tr, y_tr, x_val, y_val = _moons()
    model = MLP(2, 2, [16], "tanh", True)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = _trainer(model, optimizer=optimizer)
    assert trainer.optimizer is optimizer
    history = trainer.train(x_tr, np.eye(2)[y_tr], x_val, np.eye(2)[y_val], 30)
    assert history[-1]["val_acc"] >= 0.85


def test_bce_on_a_sigmoid_output() -> None:
    x_tr, y_tr, x_val, y_val = _moons()
    model = MLP(2, 1, [16], "sigmoid", seed=0)
    history = _trainer(model, lossfn="bce", optimizer="adam", learning_rate=0.05).train(
        x_tr, y_tr, x_val, y_val, 40
    )
    assert history[-1]["val_acc"] >= 0.8
    predicted = (model.predict(x_val).reshape(-1) > 0.5).astype(int)
    assert history[-1]["val_acc"] == pytest.approx(np.mean(predicted == y_val))


# -- progress ---------------------------------------------------------------------------------


def test_quiet_when_not_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    x_tr, y_tr, x_val, y_val = _moons()
    _trainer(verbose=False).train(x_tr, y_tr, x_val, y_val, 2)
    assert capsys.readouterr() == ("", "")


def test_progress_bar_when_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    x_tr, y_tr, x_val, y_val = _moons()
    _trainer(verbose=True).train(x_tr, y_tr, x_val, y_val, 2)
    err = capsys.readouterr().err
    assert "2/2" in err and "val_loss" in err  # tqdm, on stderr, with the losses


def test_the_bar_is_tqdm_auto_so_a_notebook_shows_a_widget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[dict[str, Any]] = []

    class Bar:
        def __init__(self, **kwargs: Any) -> None:
            made.append(kwargs)

        def set_postfix(self, *args: Any, **kwargs: Any) -> None: ...
        def update(self, n: int) -> None: ...
        def close(self) -> None: ...

    fake = types.ModuleType("tqdm.auto")
    fake.tqdm = Bar  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tqdm.auto", fake)
    x_tr, y_tr, _, _ = _moons()
    _trainer(verbose=True).train(x_tr, y_tr, epochs=2)
    assert made == [{"total": 2, "desc": "training", "unit": "epoch"}]


def test_plain_lines_without_tqdm(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `from tqdm.auto import tqdm` now raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    x_tr, y_tr, x_val, y_val = _moons()
    _trainer(verbose=True).train(x_tr, y_tr, x_val, y_val, 3)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3: train_loss=") and "val_acc=" in lines[0]


# --- compiled steps (issue 12) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "activation", "reg", "dropout", "compiles"),
    [
        ("cross-entropy", "tanh", None, 0.0, True),
        ("cross-entropy", "relu", "l2", 0.0, True),
        ("sq-error", "sigmoid", "l1", 0.0, True),
        ("sum-sq-error", "tanh", None, 0.0, True),
        ("bce", "tanh", None, 0.0, True),
        ("bce", "sigmoid", None, 0.0, False),  # probabilities: the loss reads .data
        ("cross-entropy", "tanh", None, 0.3, False),  # dropout draws a mask every step
    ],
)
def test_compiled_training_equals_eager_training(
    loss: str, activation: str, reg: str | None, dropout: float, compiles: bool
) -> None:
    """compile=True (the default) trains to the very same history as compile=False."""
    x, y = two_moons(90, noise=0.1, seed=1)
    outputs = 2 if loss == "cross-entropy" else 1
    if loss != "cross-entropy":
        y = y.reshape(-1, 1).astype(np.float64)
    runs = []
    for compile_ in (True, False):
        model = MLP(
            2,
            outputs,
            [8],
            activation,
            loss == "cross-entropy",
            reg,
            0.01 if reg else 0.0,
            dropout,
            seed=3,
        )
        trainer = MLPTrainer(model, 0.05, 16, loss, seed=2, verbose=False, compile=compile_)
        history = trainer.train(x, y, x[:20], y[:20], epochs=4)
        runs.append((history, [p.data.copy() for p in model.parameters()], trainer.compiled))
    (h1, p1, c1), (h2, p2, c2) = runs
    assert h1 == h2
    assert all(np.array_equal(a, b) for a, b in zip(p1, p2, strict=True))
    assert c1 is compiles and c2 is False
