"""nn.checker.check_model: every right formula passes, every wrong one is caught and named.

The right side is nn.manual's hand derivation; the wrong ones are subclasses that change one
formula each, as a person deriving backprop by hand might.
"""

from __future__ import annotations

import html

import backproplab.nn as nn
import numpy as np
import pytest
from backproplab.autograd import Tensor
from backproplab.nn.checker import FLOAT32_TOL, FLOAT64_TOL, NUMERIC_TOL, check_model
from backproplab.nn.manual import ManualBackprop, manual_grads

ACTIVATIONS = ["relu", "sigmoid", "tanh", "none"]
OUTPUTS = [  # (loss, softmax output)
    ("sq-error", False),
    ("sq-error", True),
    ("sum-sq-error", False),
    ("sum-sq-error", True),
    ("cross-entropy", False),
    ("cross-entropy", True),
]
REGS = [None, "l1", "l2"]


def _case(
    activation: str = "tanh",
    bias: bool = True,
    loss: str = "sq-error",
    softmax: bool = False,
    reg: str | None = None,
    dropout: float = 0.0,
    hidden: tuple[int, ...] = (4, 3),
    seed: int = 0,
    batch: int = 5,
) -> tuple[nn.MLP, np.ndarray, np.ndarray]:
    """A small MLP (3 inputs, 2 outputs) and a batch: small, so central differences are quick."""
    model = nn.MLP(
        3, 2, list(hidden), activation, softmax, reg, 0.05 if reg else 0.0, dropout, bias, seed=seed
    )
    rng = np.random.default_rng([seed, 99])
    # Biases away from zero: a zero bias would let a forward pass that forgot "+ b" pass, and
    # puts relu's kink under an all-zero (all dropped) input row (see test_a_kink_...).
    for layer in model.layers:
        if layer.bias is not None:
            layer.bias.data = rng.normal(0.0, 0.1, layer.bias.shape)
    x = rng.standard_normal((batch, 3))
    y = rng.integers(0, 2, batch) if loss == "cross-entropy" else rng.uniform(0, 1, (batch, 2))
    return model, x, y


def _float32(model: nn.MLP) -> nn.MLP:
    for p in model.parameters():
        p.data = p.data.astype(np.float32)
    return model


# -- every option combination agrees ---------------------------------------------------------


@pytest.mark.parametrize("dropout", [0.0, 0.4], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("reg", REGS, ids=["no-reg", "l1", "l2"])
@pytest.mark.parametrize(
    ("loss", "softmax"), OUTPUTS, ids=[f"{loss}{'+softmax' * s}" for loss, s in OUTPUTS]
)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_option_combination_agrees_in_float64(
    activation: str, bias: bool, loss: str, softmax: bool, reg: str | None, dropout: float
) -> None:
    model, x, y = _case(activation, bias, loss, softmax, reg, dropout)
    report = check_model(model, x, y, loss)
    assert report.ok, str(report)
    assert report.manual_tol == FLOAT64_TOL == (1e-12, 1e-9)
    names = [name for name, _ in model.named_parameters()]
    assert [row.name for row in report.rows] == names
    for row in report.rows:
        assert row.manual is not None and row.numeric is not None
        assert row.manual.max_rel <= 1e-9
        assert row.shape == dict(model.named_parameters())[row.name].shape


def test_dropout_really_drops_in_the_checked_forward() -> None:
    # Otherwise the dropout cases above would check nothing about dropout.
    model, x, _ = _case(dropout=0.4, batch=8)
    seen = []

    def spy(m, x_, y_, loss):
        seen.extend(layer.last_mask for layer in m.layers[:-1])
        return manual_grads(m, x_, y_, loss)

    assert check_model(model, x, np.zeros((8, 2)), manual=spy).ok
    assert all(mask is not None and 0 < mask.sum() < mask.size for mask in seen)


@pytest.mark.parametrize(
    ("activation", "loss", "softmax", "reg", "dropout"),
    [
        ("relu", "sq-error", False, "l1", 0.3),
        ("sigmoid", "sum-sq-error", True, "l2", 0.0),
        ("tanh", "cross-entropy", True, "l2", 0.3),
        ("none", "cross-entropy", False, None, 0.3),
    ],
)
def test_float32_models_agree_at_the_float32_tolerance(
    activation: str, loss: str, softmax: bool, reg: str | None, dropout: float
) -> None:
    model, x, y = _case(activation, True, loss, softmax, reg, dropout, hidden=(16, 16), batch=8)
    _float32(model)
    seen: list[np.dtype] = []

    def spy(m, x_, y_, loss_):
        grads = manual_grads(m, x_, y_, loss_)
        seen.extend(g.dtype for g in grads.values())
        return grads

    report = check_model(model, x, y, loss, manual=spy)
    assert report.ok, str(report)
    assert report.manual_tol == FLOAT32_TOL == (1e-6, 1e-4)
    assert report.numeric_tol == NUMERIC_TOL
    assert set(seen) == {np.dtype(np.float32)}  # the hand side ran in float32 too
    assert "float32" in report.title


def test_float32_is_not_held_to_the_float64_tolerance_by_accident() -> None:
    # The float32 tolerance is needed: at float64's 1e-9 the two float32 sides disagree (on a
    # squared error they now agree bit for bit; through the softmax they round differently).
    model, x, y = _case("tanh", True, "cross-entropy", True, "l2", 0.0, hidden=(16, 16), batch=8)
    _float32(model)
    assert check_model(model, x, y, "cross-entropy").ok
    strict = check_model(model, x, y, "cross-entropy", atol=1e-12, rtol=1e-9)
    assert not strict.ok


def test_a_lone_linear_layer() -> None:
    layer = nn.Linear(3, 2, "relu", True, 0.3, regularisation="l1", beta=0.1)
    _, x, y = _case()
    report = check_model(layer, x, y, "sq-error")
    assert report.ok, str(report)
    assert [row.name for row in report.rows] == ["weight", "bias"]


# -- wrong formulas are caught and named ----------------------------------------------------


class ForgotActivationDerivative(ManualBackprop):
    def activation_grad(self, grad_a, z, a, name):
        return grad_a  # σ'(z) left out


class TransposedWeightGradient(ManualBackprop):
    def weight_grad(self, x, delta):
        return (x.T @ delta).T  # seed 000's δ xᵀ taken literally in the (in, out) layout


class BiasNotSummed(ManualBackprop):
    def bias_grad(self, delta):
        return delta  # seed 000's ∂L/∂b = δ, one row per sample, never summed


class BiasAveraged(ManualBackprop):
    def bias_grad(self, delta):
        return delta.mean(axis=0)  # the right shape, but 1/B too small


class CrossEntropyWithoutOneOverBatch(ManualBackprop):
    def softmax_ce_grad(self, s, Y):
        return self.softmax(s) - Y


class ForwardWithoutBias(ManualBackprop):
    def linear(self, x, W, b):
        return x @ W  # "+ b" forgotten: every gradient is then taken at the wrong point


class L2WithoutTheTwo(ManualBackprop):
    def l2_grad(self, W, beta):
        return beta * W


class DropoutMaskNotApplied(ManualBackprop):
    def dropout_grad(self, grad_y, mask, p):
        return grad_y


class DropoutNotRescaled(ManualBackprop):
    def dropout_grad(self, grad_y, mask, p):
        return grad_y * mask


DIAGNOSED = {
    ForgotActivationDerivative: "wrong",
    TransposedWeightGradient: "transposed",
    BiasNotSummed: "not-summed",
    BiasAveraged: "factor",  # 1/B: the batch size
    CrossEntropyWithoutOneOverBatch: "factor",  # B: the batch size
    ForwardWithoutBias: "wrong",
    L2WithoutTheTwo: "wrong",  # the penalty's part is halved, the loss's is not
    DropoutMaskNotApplied: "wrong",
    DropoutNotRescaled: "factor",  # (1 - p) per dropped layer
}

ALL = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
ALL += ["layers.2.weight", "layers.2.bias"]
WEIGHTS = ALL[::2]
BIASES = ALL[1::2]
BEFORE_LAST = ALL[:4]  # the layers whose outputs drop out


@pytest.mark.parametrize(
    ("mutant", "case", "loss", "failing"),
    [
        (ForgotActivationDerivative, {"activation": "tanh"}, "sq-error", ALL),
        # On a softmax MLP the output layer has no activation: its own gradients stay right.
        (ForgotActivationDerivative, {"softmax": True}, "cross-entropy", ALL[:4]),
        (TransposedWeightGradient, {"hidden": (4, 4)}, "sq-error", WEIGHTS),
        (BiasNotSummed, {}, "sq-error", BIASES),
        (BiasAveraged, {}, "sq-error", BIASES),
        (CrossEntropyWithoutOneOverBatch, {"softmax": True}, "cross-entropy", ALL),
        (ForwardWithoutBias, {}, "sq-error", ALL),
        (L2WithoutTheTwo, {"reg": "l2"}, "cross-entropy", WEIGHTS),
        (DropoutMaskNotApplied, {"dropout": 0.4}, "sq-error", BEFORE_LAST),
        (DropoutNotRescaled, {"dropout": 0.4}, "sq-error", BEFORE_LAST),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_each_mutant_is_caught_and_named(mutant, case, loss, failing) -> None:
    model, x, y = _case(loss=loss, **case)
    right = check_model(model, x, y, loss)
    assert right.ok, str(right)  # the same case passes with the right formulas
    report = check_model(model, x, y, loss, manual=mutant())
    assert not report.ok
    assert report.failures == failing
    text = str(report).splitlines()
    verdict = text[-1]
    assert verdict.startswith("FAILED: ")
    for name in failing:
        assert f"{name}: your gradient " in verdict
        (line,) = [row for row in text if row.startswith(f"{name} ")]
        assert line.endswith("FAIL")
    for name in set(ALL) - set(failing):
        assert f"{name}:" not in verdict
    # Each mistake is named by what it is (autograd.diagnose), as the player would name it.
    assert {row.diagnosis.kind for row in report.rows if not row.ok} == {DIAGNOSED[mutant]}
    # The engine agrees with central differences throughout: only the hand side is wrong.
    assert all(row.numeric is not None and row.numeric.ok for row in report.rows)


def test_mutants_are_caught_in_float32_too() -> None:
    model, x, y = _case("tanh", True, "cross-entropy", True, "l2", 0.3, hidden=(16, 16), batch=8)
    _float32(model)
    for mutant in (ForgotActivationDerivative, L2WithoutTheTwo, DropoutNotRescaled):
        assert not check_model(model, x, y, "cross-entropy", manual=mutant()).ok, mutant


def test_a_wrong_shape_is_named_with_both_shapes() -> None:
    model, x, y = _case(hidden=(4, 3))
    report = check_model(model, x, y, manual=TransposedWeightGradient())
    verdict = str(report).splitlines()[-1]
    assert (
        "layers.0.weight: your gradient has shape (4, 3), layers.0.weight has shape (3, 4): it "
        "is the right gradient, transposed (use its .T)"
    ) in verdict
    assert report.rows[0].manual is None and report.rows[0].problem is not None


def test_a_missing_gradient_fails_its_row_and_an_unknown_one_is_refused() -> None:
    model, x, y = _case()

    def forgets_a_bias(m, x_, y_, loss):
        grads = manual_grads(m, x_, y_, loss)
        del grads["layers.1.bias"]
        return grads

    report = check_model(model, x, y, manual=forgets_a_bias)
    assert report.failures == ["layers.1.bias"]
    assert str(report).splitlines()[-1] == "FAILED: layers.1.bias: no gradient was given"

    def invents_one(m, x_, y_, loss):
        return {**manual_grads(m, x_, y_, loss), "layers.9.weight": np.zeros(1)}

    with pytest.raises(ValueError, match=r"layers\.9\.weight, which the model does not have"):
        check_model(model, x, y, manual=invents_one)


# -- the report and the model afterwards -----------------------------------------------------


def test_the_report_is_compare_gradients_table() -> None:
    model, x, y = _case("tanh", True, "cross-entropy", True, "l2", 0.4)
    lines = str(check_model(model, x, y, "cross-entropy")).splitlines()
    assert lines[0] == (
        "MLP(3, 2, hid_sizes=[4, 3], activation='tanh', is_softmax=True, reg='l2', beta=0.05, "
        "layer_dropout=0.4): cross-entropy + penalty, batch 5, float64"
    )
    assert lines[1].split() == ["parameter", "shape", "|man-auto|", "rel", "|auto-num|", "rel"]
    assert lines[2].split()[:2] == ["layers.0.weight", "3×4"]
    assert lines[-2] == (
        "tolerance: manual vs automatic atol 1e-12 rtol 1e-09; "
        "automatic vs numeric atol 1e-05 rtol 0.001"
    )
    assert lines[-1] == "all gradients agree"


def test_the_same_seed_gives_the_same_report() -> None:
    model, x, y = _case(dropout=0.4)
    assert str(check_model(model, x, y, seed=3)) == str(check_model(model, x, y, seed=3))


def test_seed_none_uses_the_masks_the_models_next_forward_would_draw() -> None:
    model, x, y = _case(dropout=0.4, batch=8)
    seen = []

    def spy(m, x_, y_, loss):
        seen.append(m.layers[0].last_mask.copy())
        return manual_grads(m, x_, y_, loss)

    assert check_model(model, x, y, seed=None, manual=spy).ok
    assert check_model(model, x, y, seed=1, manual=spy).ok
    model(Tensor(x))  # the model's own next training forward
    np.testing.assert_array_equal(seen[0], model.layers[0].last_mask)
    assert not np.array_equal(seen[1], seen[0])


def test_the_model_is_left_as_it_was() -> None:
    model, x, y = _case(dropout=0.4)
    model(Tensor(x))
    before = {name: (p, p.data, p.data.copy(), p.grad) for name, p in model.named_parameters()}
    rngs = [(layer.rng, layer.rng.bit_generator.state) for layer in model.layers]
    masks = [layer.last_mask for layer in model.layers]
    check_model(model, x, y)
    for name, p in model.named_parameters():
        tensor, data, values, grad = before[name]
        assert p is tensor and p.data is data and p.grad is grad
        np.testing.assert_array_equal(p.data, values)
    for layer, (rng, state), mask in zip(model.layers, rngs, masks, strict=True):
        assert layer.rng is rng and layer.rng.bit_generator.state == state
        assert layer.last_mask is mask


def test_bad_arguments() -> None:
    model, x, y = _case()
    with pytest.raises(ValueError, match="unknown loss 'bce'"):
        check_model(model, x, y, "bce")
    with pytest.raises(ValueError, match=r"x must be a batch of shape \(B, 3\)"):
        check_model(model, x[0], y[0])
    with pytest.raises(TypeError, match=r"nn\.Linear or nn\.MLP"):
        check_model(nn.scalar.MLP(3, [2]), x, y)  # type: ignore[arg-type]
    model.layers[0].weight.data = model.layers[0].weight.data.astype(np.float32)
    with pytest.raises(ValueError, match=r"all float64 or all float32.*layers\.0\.weight float32"):
        check_model(model, x, y)


def test_a_batch_or_model_that_is_not_finite_is_refused_not_passed() -> None:
    # NaN everywhere agrees with NaN everywhere, so such a check said "all gradients agree"
    # having compared nothing.
    model, x, y = _case()
    bad_x = x.copy()
    bad_x[1, 2] = np.nan
    with pytest.raises(ValueError) as e:
        check_model(model, bad_x, y)
    assert str(e.value) == "check_model needs finite numbers: x holds nan at [1, 2]"
    bad_y = np.array(y, dtype=np.float64)
    bad_y[0, 1] = -np.inf
    with pytest.raises(ValueError) as e:
        check_model(model, x, bad_y)
    assert str(e.value) == "check_model needs finite numbers: y holds -inf at [0, 1]"
    model.layers[1].bias.data = np.full_like(model.layers[1].bias.data, np.nan)
    with pytest.raises(ValueError) as e:
        check_model(model, x, y)
    assert str(e.value) == "check_model needs finite numbers: layers.1.bias holds nan at [0]"


def test_a_kink_fools_central_differences_not_the_manual_column() -> None:
    # relu at exactly z = 0 has no derivative: the engine and the hand derivation both take 0,
    # central differences see half the slope. A zero bias under an all-zero input row sits there.
    model = nn.MLP(3, 2, [], "relu")
    x = np.array([[0.0, 0.0, 0.0], [1.0, -0.5, 2.0]])
    report = check_model(model, x, np.ones((2, 2)))
    assert report.failures == ["layers.0.bias"]
    (bias,) = [row for row in report.rows if row.name == "layers.0.bias"]
    assert bias.manual is not None and bias.manual.ok
    assert bias.numeric is not None and not bias.numeric.ok
    assert "layers.0.bias (automatic vs numeric" in str(report).splitlines()[-1]


# -- the two checkers say the same mistake in the same words ---------------------------------


def _one_layer() -> tuple[nn.Linear, np.ndarray, np.ndarray]:
    layer = nn.Linear(4, 3, "sigmoid")
    rng = np.random.default_rng(7)
    layer.bias.data = rng.normal(0.0, 0.1, 3)
    return layer, rng.standard_normal((8, 4)), rng.uniform(0, 1, (8, 3))


def _delta(W: np.ndarray, b: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """dL/dz of mean((sigmoid(x W + b) - t)²), by hand."""
    a = 1 / (1 + np.exp(-(x @ W + b)))
    return 2 * (a - t) / t.size * a * (1 - a)


@pytest.mark.parametrize(
    ("mistake", "kind"),
    [
        (lambda x, d: (x.T @ d, d), "not-summed"),  # the bias's δ, one row per sample
        (lambda x, d: (x.T @ d, d.sum(axis=0) * len(x)), "factor"),  # times the batch size
        (lambda x, d: ((x.T @ d).T, d.sum(axis=0)), "transposed"),
        (lambda x, d: (-(x.T @ d), d.sum(axis=0)), "factor"),  # the sign
    ],
    ids=["bias-not-summed", "times-batch", "transposed", "sign"],
)
def test_compare_gradients_and_check_model_say_the_same_words(mistake, kind: str) -> None:
    from backproplab.autograd import compare_gradients
    from backproplab.nn.losses import mse

    layer, x, t = _one_layer()

    def by_hand(lay, x_, t_, loss):
        return dict(
            zip(
                ["weight", "bias"],
                mistake(x_, _delta(lay.weight.data, lay.bias.data, x_, t_)),
                strict=True,
            )
        )

    def on_engine(W, b):
        return mse((Tensor(x) @ W + b).sigmoid(), t)

    via_model = check_model(layer, x, t, "sq-error", manual=by_hand)
    via_function = compare_gradients(
        on_engine,
        lambda W, b: mistake(x, _delta(W, b, x, t)),
        layer.weight.data,
        layer.bias.data,
        names=["weight", "bias"],
        batch=len(x),
    )
    assert via_model.failures == via_function.failures != []
    said = [
        [r.diagnosis.message for r in rep.rows if not r.ok] for rep in (via_model, via_function)
    ]
    assert said[0] == said[1]
    assert {r.diagnosis.kind for r in via_model.rows if not r.ok} == {kind}
    assert str(via_model).splitlines()[-1] == str(via_function).splitlines()[-1]
    # In Jupyter, check_model's report shows the same words in its HTML table.
    assert all(html.escape(words) in via_model._repr_html_() for words in said[0])
    if kind == "not-summed":
        assert said[0] == [
            "bias: your gradient has shape (8, 3), bias has shape (3,): it looks like the bias "
            "gradient was not summed over the batch of 8 (sum over axis 0)"
        ]


# -- manual= takes a function returning a dict or a list in parameter order ------------------


def test_manual_may_return_a_list_in_parameter_order() -> None:
    model, x, y = _case()
    names = [n for n, _ in model.named_parameters()]

    def as_list(m, x_, y_, loss):
        grads = manual_grads(m, x_, y_, loss)
        return [grads[n] for n in names]

    assert check_model(model, x, y, manual=as_list).ok

    def short(m, x_, y_, loss):
        return as_list(m, x_, y_, loss)[:-1]

    with pytest.raises(ValueError, match=r"returned 5 gradients, the model has 6 parameters"):
        check_model(model, x, y, manual=short)


def test_manual_must_be_a_function_returning_a_dict_or_a_list() -> None:
    model, x, y = _case()
    grads = manual_grads(model, x, y, "sq-error")
    with pytest.raises(
        TypeError, match=r"manual= takes a function \(model, x, y, loss\).*got a dict"
    ):
        check_model(model, x, y, manual=grads)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"must return a dict .* or a list .*returned a float"):
        check_model(model, x, y, manual=lambda *_: 0.0)  # type: ignore[arg-type,return-value]
