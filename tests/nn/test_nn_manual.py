"""nn.manual: the hand-derived formulas, each against the engine (never the engine against itself).

The whole-model gradients over every option combination are in test_nn_checker.py; here are the
forward pass, single formulas, seed 002's and seed 001's derivations, and the manual side's
own errors. Each "agrees" test has a wrong-formula twin that must disagree.
"""

from __future__ import annotations

import backproplab.nn as nn
import numpy as np
import pytest
from backproplab.autograd import Tensor, compare_gradients, gradients, sum_values
from backproplab.autograd.check import compare
from backproplab.nn.checker import model_loss
from backproplab.nn.datasets import relu_regression
from backproplab.nn.manual import ManualBackprop, circle_neuron_grads, manual_grads, relu_net_grads
from backproplab.nn.scalar import MLP as ScalarMLP
from backproplab.nn.seed_circle import CircleNet, circle_dataset

RTOL, ATOL = 1e-9, 1e-12


def _batch(n: int = 6, inputs: int = 3, outputs: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, inputs)),
        rng.uniform(0.0, 1.0, (n, outputs)),
        rng.integers(0, outputs, n),
    )


def _engine(model, x, y, loss):
    """The engine's loss and its gradient per parameter name (one training-mode forward)."""
    named = list(model.named_parameters())
    root = model_loss(model, Tensor(x), y, loss)
    return root.item(), dict(
        zip([n for n, _ in named], gradients(root, [p for _, p in named]), strict=True)
    )


# -- the forward pass ----------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "none"])
@pytest.mark.parametrize(
    ("loss", "softmax"),
    [
        ("sq-error", False),
        ("sum-sq-error", True),
        ("cross-entropy", False),
        ("cross-entropy", True),
    ],
)
def test_forward_loss_by_hand_equals_the_engines(activation: str, loss: str, softmax: bool) -> None:
    x, t, labels = _batch()
    model = nn.MLP(3, 2, [4, 3], activation, softmax, "l1", 0.05, 0.3, seed=1)
    y = labels if loss == "cross-entropy" else t
    engine_loss, _ = _engine(model, x, y, loss)  # leaves the masks the hand forward reuses
    assert manual_grads.loss(model, x, y, loss) == pytest.approx(engine_loss, rel=1e-12)


def test_forward_reuses_the_engines_dropout_mask() -> None:
    x, _, _ = _batch(n=20)
    model = nn.MLP(3, 2, [8], "tanh", layer_dropout=0.5, seed=3)
    model(Tensor(x))
    caches = manual_grads.forward(model, x)
    mask = model.layers[0].last_mask
    assert mask is not None and 0 < mask.sum() < mask.size
    assert caches[0].mask is mask
    np.testing.assert_array_equal(caches[0].y[mask == 0], 0.0)
    np.testing.assert_allclose(caches[0].y[mask == 1], 2.0 * caches[0].a[mask == 1])
    assert caches[1].mask is None  # the output layer never drops out


def test_a_missing_dropout_mask_is_refused() -> None:
    x, t, _ = _batch()
    model = nn.MLP(3, 2, [4], "tanh", layer_dropout=0.2)
    with pytest.raises(ValueError, match=r"layers\.0 drops out 0\.2 .*training-mode forward"):
        manual_grads(model, x, t, "sq-error")
    model(Tensor(x[:2]))  # a mask, but of another batch's shape
    with pytest.raises(ValueError, match=r"shape \(6, 4\)"):
        manual_grads(model, x, t, "sq-error")


def test_inference_mode_uses_no_mask() -> None:
    x, t, _ = _batch()
    model = nn.MLP(3, 2, [4], "tanh", layer_dropout=0.5, seed=2)
    model.eval()
    _, auto = _engine(model, x, t, "sq-error")
    by_hand = manual_grads(model, x, t, "sq-error")
    for name, g in auto.items():
        assert compare(by_hand[name], g, ATOL, RTOL).ok, name


def test_gradients_come_keyed_and_ordered_as_named_parameters() -> None:
    x, t, _ = _batch()
    model = nn.MLP(3, 2, [4, 5], use_bias=False)
    grads = manual_grads(model, x, t, "sq-error")
    assert list(grads) == [name for name, _ in model.named_parameters()]
    assert list(grads) == ["layers.0.weight", "layers.1.weight", "layers.2.weight"]
    assert [g.shape for g in grads.values()] == [(3, 4), (4, 5), (5, 2)]


def test_unknown_loss_and_model_are_refused() -> None:
    x, t, _ = _batch()
    with pytest.raises(ValueError, match="unknown loss 'bce'"):
        manual_grads(nn.MLP(3, 2), x, t, "bce")
    with pytest.raises(ValueError, match=r"nn\.Linear and nn\.MLP, got MLP"):
        manual_grads(ScalarMLP(3, [2]), x, t, "sq-error")  # type: ignore[arg-type]


# -- a lone Linear, and label forms -----------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "none"])
def test_a_lone_linear_layer_with_dropout_and_l2(activation: str) -> None:
    x, t, _ = _batch(n=7, outputs=4)
    layer = nn.Linear(3, 4, activation, True, 0.25, regularisation="l2", beta=0.1, seed=4)
    _, auto = _engine(layer, x, t, "sum-sq-error")
    assert layer.last_mask is not None  # a lone layer drops out its own outputs
    by_hand = manual_grads(layer, x, t, "sum-sq-error")
    assert list(by_hand) == ["weight", "bias"]
    for name, g in auto.items():
        assert compare(by_hand[name], g, ATOL, RTOL).ok, name


@pytest.mark.parametrize("form", ["indices", "column", "one-hot", "soft"])
def test_cross_entropy_takes_every_label_form(form: str) -> None:
    x, _, labels = _batch(n=5, outputs=3)
    y: np.ndarray = {
        "indices": labels,
        "column": labels.reshape(-1, 1),
        "one-hot": np.eye(3)[labels],
        "soft": np.full((5, 3), 1 / 3),
    }[form]
    model = nn.MLP(3, 3, [4], "tanh", True, seed=5)
    _, auto = _engine(model, x, y, "cross-entropy")
    by_hand = manual_grads(model, x, y, "cross-entropy")
    for name, g in auto.items():
        assert compare(by_hand[name], g, ATOL, RTOL).ok, name


def test_single_output_targets_may_be_a_flat_vector() -> None:
    x, t, _ = _batch(outputs=1)
    model = nn.MLP(3, 1, [4], "sigmoid")
    _, auto = _engine(model, x, t.ravel(), "sq-error")
    by_hand = manual_grads(model, x, t.ravel(), "sq-error")
    for name, g in auto.items():
        assert compare(by_hand[name], g, ATOL, RTOL).ok, name


# -- single formulas, through compare_gradients --------------------------------------------------

X0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])
W0 = np.array([[0.2, -0.4], [0.1, 0.6], [-0.3, 0.5]])
B0 = np.array([0.05, -0.1])
G0 = np.array([[1.0, -2.0], [0.5, 3.0]])  # an upstream gradient, fixed


def test_seed_000s_linear_layer_formulas() -> None:
    # L = Σ G ⊙ (x W + b): then δ = G, and the three formulas give x, W and b's gradients.
    m = ManualBackprop()
    report = compare_gradients(
        lambda x, W, b: ((x @ W + b) * G0).sum(),
        lambda x, W, b: (m.input_grad(G0, W), m.weight_grad(x, G0), m.bias_grad(G0)),
        X0,
        W0,
        B0,
        names=["x", "W", "b"],
    )
    assert report.ok, str(report)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "none"])
def test_activation_formulas(activation: str) -> None:
    m = ManualBackprop()
    z0 = X0 @ W0

    def by_hand(z: np.ndarray) -> np.ndarray:
        return m.activation_grad(G0, z, m.activation(z, activation), activation)

    report = compare_gradients(
        lambda z: (nn.activate(z, activation) * G0).sum(), by_hand, z0, names=["z"]
    )
    assert report.ok, str(report)


def test_the_fused_softmax_cross_entropy_and_the_softmax_jacobian() -> None:
    m = ManualBackprop()
    labels = np.array([1, 0])
    Y = np.eye(2)[labels]
    ce = compare_gradients(
        lambda s: nn.cross_entropy(s, labels),
        lambda s: m.softmax_ce_grad(s, Y),
        G0,
        names=["s"],
    )
    assert ce.ok, str(ce)
    jac = compare_gradients(
        lambda s: (s.softmax(axis=-1) * X0[:, :2]).sum(),
        lambda s: m.softmax_grad(X0[:, :2], m.softmax(s)),
        G0,
        names=["s"],
    )
    assert jac.ok, str(jac)


def test_penalty_formulas() -> None:
    m = ManualBackprop()
    l1 = compare_gradients(lambda W: 0.3 * W.abs().sum(), lambda W: m.l1_grad(W, 0.3), W0)
    l2 = compare_gradients(lambda W: 0.3 * (W * W).sum(), lambda W: m.l2_grad(W, 0.3), W0)
    assert l1.ok and l2.ok
    wrong = compare_gradients(lambda W: 0.3 * (W * W).sum(), lambda W: 0.3 * W, W0)
    assert not wrong.ok


# -- seed 002 -----------------------------------------------------------------------------------


def _seed_002_engine(X, y, W1, W2):
    w1, w2 = Tensor(W1, requires_grad=True), Tensor(W2, requires_grad=True)
    loss = (((Tensor(X) @ w1).relu() @ w2 - Tensor(y)) ** 2).sum()
    return gradients(loss, [w1, w2])


def test_seed_002_formulas_at_the_write_ups_size() -> None:
    # 128 × 1000 -> 100 -> 1 with the write-up's standard normal data and weights.
    X, y, W1, W2 = relu_regression(0)
    dW1, dW2 = relu_net_grads(X, y, W1, W2)
    auto1, auto2 = _seed_002_engine(X, y, W1, W2)
    assert dW1.shape == (1000, 100) and dW2.shape == (100, 1)
    # Summed over 128 samples the gradients reach about 1e6; atol scales with them.
    assert compare(dW1, auto1, 1e-12 * np.abs(auto1).max(), RTOL).ok
    assert compare(dW2, auto2, 1e-12 * np.abs(auto2).max(), RTOL).ok


def test_seed_002_formulas_against_central_differences_too() -> None:
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((6, 5)), rng.standard_normal((6, 1))
    W1, W2 = rng.standard_normal((5, 4)), rng.standard_normal((4, 1))

    def loss(w1, w2):
        return (((Tensor(X) @ w1).relu() @ w2 - Tensor(y)) ** 2).sum()

    report = compare_gradients(
        loss, lambda w1, w2: relu_net_grads(X, y, w1, w2), W1, W2, names=["W1", "W2"]
    )
    assert report.ok, str(report)

    def relu_mask_forgotten(w1, w2):
        d_pred = 2.0 * (np.maximum(X @ w1, 0) @ w2 - y)
        return X.T @ (d_pred @ w2.T), np.maximum(X @ w1, 0).T @ d_pred

    wrong = compare_gradients(loss, relu_mask_forgotten, W1, W2, names=["W1", "W2"])
    assert wrong.failures == ["W1"]


# -- seed 001 -----------------------------------------------------------------------------------


def _scalar_engine(net: ScalarMLP, inputs, targets) -> dict[str, float]:
    """Seed 001's loss on the engine: the mean over samples and outputs of (a − t)²."""
    terms = []
    for sample, target in zip(inputs, targets, strict=True):
        out = net(sample)
        outs = out if isinstance(out, list) else [out]
        ts = target if isinstance(target, list) else [target]
        terms += [(a - t) ** 2 for a, t in zip(outs, ts, strict=True)]
    loss = sum_values(terms) / len(terms)
    named = list(net.named_parameters())
    return dict(zip([n for n, _ in named], gradients(loss, [p for _, p in named]), strict=True))


def _agree(by_hand: dict[str, float], auto: dict[str, float]) -> list[str]:
    """The names whose gradients disagree."""
    assert list(by_hand) == list(auto)
    return [n for n in auto if not compare(by_hand[n], auto[n], ATOL, RTOL).ok]


def test_seed_001_per_neuron_rule_on_circle_net() -> None:
    net = CircleNet()
    data = circle_dataset()
    inputs, targets = [[x, y] for x, y, _ in data], [z for _, _, z in data]
    by_hand = circle_neuron_grads(net, inputs, targets)
    assert len(by_hand) == 4 * 3 + 5  # 4 hidden neurons (2 weights, a bias), 1 output (4 + 1)
    assert _agree(by_hand, _scalar_engine(net, inputs, targets)) == []


def test_seed_001_rule_on_deeper_multi_output_nets() -> None:
    rng = np.random.default_rng(7)
    net = ScalarMLP(3, [4, 3, 2], activation=["relu", "tanh", "none"])
    inputs = rng.standard_normal((5, 3)).tolist()
    targets = rng.standard_normal((5, 2)).tolist()
    assert (
        _agree(circle_neuron_grads(net, inputs, targets), _scalar_engine(net, inputs, targets))
        == []
    )


def test_seed_001_rule_without_the_sigmoid_derivative_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import backproplab.nn.manual

    net = CircleNet()
    data = circle_dataset()[:30]
    inputs, targets = [[x, y] for x, y, _ in data], [z for _, _, z in data]
    monkeypatch.setattr(backproplab.nn.manual, "_scalar_derivative", lambda name, z, a: 1.0)
    wrong = _agree(circle_neuron_grads(net, inputs, targets), _scalar_engine(net, inputs, targets))
    assert wrong == list(dict(net.named_parameters()))  # every parameter is off


def test_seed_001_rule_checks_its_counts() -> None:
    net = CircleNet()
    with pytest.raises(ValueError, match="one target per input"):
        circle_neuron_grads(net, [[0.0, 0.0]], [])
    with pytest.raises(ValueError, match="2 inputs and 1 targets, got 3 and 1"):
        circle_neuron_grads(net, [[0.0, 0.0, 0.0]], [1.0])


def test_sigmoid_by_hand_is_stable_where_the_engine_is() -> None:
    z = np.array([-1000.0, 0.0, 1000.0])
    a = ManualBackprop().activation(z, "sigmoid")
    np.testing.assert_array_equal(a, [0.0, 0.5, 1.0])
