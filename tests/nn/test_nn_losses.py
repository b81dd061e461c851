"""nn.losses: values against NumPy by hand, gradients against closed forms and central
differences, stability at logits of ±1000, and every refusal."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.testing as npt
import pytest
from backproplab.autograd import Tensor, Value, gradcheck
from backproplab.nn.losses import (
    LOSSES,
    binary_cross_entropy,
    cross_entropy,
    get_loss,
    mse,
    sum_squared_error,
)

RNG = np.random.default_rng(3)
PRED = RNG.normal(size=(4, 3))
TARGET = RNG.normal(size=(4, 3))
LOGITS = RNG.normal(size=(4, 3)) * 2
LABELS = np.array([2, 0, 1, 2])
ONE_HOT = np.eye(3)[LABELS]


def np_log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax through the log-sum-exp trick, written out."""
    top = z.max(axis=1, keepdims=True)
    return z - (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow at |x| = 1000


def grad_of(loss: Any, pred: np.ndarray, *args: Any, **kwargs: Any) -> tuple[float, np.ndarray]:
    """(loss value, d loss / d pred) from the engine."""
    x = Tensor(pred, requires_grad=True)
    out = loss(x, *args, **kwargs)
    assert out.shape == ()
    out.backward()
    return out.item(), x.grad


# --- squared errors -----------------------------------------------------------------------------


def test_mse_is_the_mean_over_all_elements() -> None:
    value, g = grad_of(mse, PRED, TARGET)
    assert value == pytest.approx(((PRED - TARGET) ** 2).sum() / 12, rel=1e-12)
    npt.assert_allclose(g, 2 * (PRED - TARGET) / PRED.size, rtol=1e-12)
    assert gradcheck(lambda p: mse(p, TARGET), PRED)


def test_sum_squared_error_is_summed() -> None:
    value, g = grad_of(sum_squared_error, PRED, TARGET)
    assert value == pytest.approx(((PRED - TARGET) ** 2).sum(), rel=1e-12)
    npt.assert_allclose(g, 2 * (PRED - TARGET), rtol=1e-12)
    assert gradcheck(lambda p: sum_squared_error(p, TARGET), PRED)


@pytest.mark.parametrize("loss", [mse, sum_squared_error])
def test_squared_error_targets_as_lists_tensors_and_columns(loss: Any) -> None:
    col = PRED[:, :1]
    expected = loss(Tensor(col), Tensor(TARGET[:, :1])).item()
    assert loss(Tensor(col), TARGET[:, 0]).item() == pytest.approx(expected)  # (4,) vs (4, 1)
    assert loss(Tensor(col), TARGET[:, 0].tolist()).item() == pytest.approx(expected)
    assert loss(Tensor(col[:, 0]), TARGET[:, :1]).item() == pytest.approx(expected)


def test_squared_error_gradient_reaches_a_tensor_target() -> None:
    t = Tensor(TARGET, requires_grad=True)
    mse(Tensor(PRED), t).backward()
    npt.assert_allclose(t.grad, -2 * (PRED - TARGET) / PRED.size, rtol=1e-12)


@pytest.mark.parametrize("loss", [mse, sum_squared_error])
def test_squared_error_refuses_shapes_that_would_broadcast(loss: Any) -> None:
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(3, 4\)"):
        loss(Tensor(PRED), TARGET.T)
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(1, 4\)|\(4, 1\).*\(4, 4\)"):
        loss(Tensor(PRED[:, :1]), np.ones((4, 4)))


# --- cross-entropy ------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [LABELS, ONE_HOT, LABELS.astype(float), LABELS[:, None]])
def test_cross_entropy_from_logits_by_hand(labels: np.ndarray) -> None:
    value, g = grad_of(cross_entropy, LOGITS, labels)
    expected = -np_log_softmax(LOGITS)[np.arange(4), LABELS].mean()
    assert value == pytest.approx(expected, rel=1e-12)
    softmax = np.exp(np_log_softmax(LOGITS))
    npt.assert_allclose(g, (softmax - ONE_HOT) / 4, rtol=1e-10, atol=1e-15)


def test_cross_entropy_labels_as_tensors() -> None:
    expected = cross_entropy(Tensor(LOGITS), LABELS).item()
    assert cross_entropy(Tensor(LOGITS), Tensor(LABELS)).item() == pytest.approx(expected)
    assert cross_entropy(Tensor(LOGITS), Tensor(ONE_HOT)).item() == pytest.approx(expected)
    assert cross_entropy(LOGITS, LABELS.tolist()).item() == pytest.approx(expected)


def test_cross_entropy_with_soft_labels() -> None:
    soft = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.1, 0.8, 0.1], [0.0, 0.5, 0.5]])
    value, g = grad_of(cross_entropy, LOGITS, soft)
    assert value == pytest.approx(-(soft * np_log_softmax(LOGITS)).sum() / 4, rel=1e-12)
    npt.assert_allclose(g, (np.exp(np_log_softmax(LOGITS)) - soft) / 4, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("labels", [LABELS, ONE_HOT])
def test_cross_entropy_gradcheck(labels: np.ndarray) -> None:
    assert gradcheck(lambda z: cross_entropy(z, labels), LOGITS)
    probs = np.exp(np_log_softmax(LOGITS))
    assert gradcheck(lambda p: cross_entropy(p, labels, from_logits=False), probs)


def test_cross_entropy_from_probabilities_by_hand() -> None:
    probs = np.exp(np_log_softmax(LOGITS))
    value, g = grad_of(cross_entropy, probs, LABELS, from_logits=False)
    assert value == pytest.approx(-np.log(probs[np.arange(4), LABELS]).mean(), rel=1e-12)
    npt.assert_allclose(g, -ONE_HOT / probs / 4, rtol=1e-12)  # d(-log p_y)/dp = -1/p_y


def test_cross_entropy_from_probabilities_clips_zero_and_stops_its_gradient() -> None:
    probs = np.array([[0.0, 1.0], [0.5, 0.5], [0.0, 1.0]])
    value, g = grad_of(cross_entropy, probs, [0, 1, 1], from_logits=False)
    assert value == pytest.approx((-np.log(1e-12) - np.log(0.5) - 0.0) / 3, rel=1e-12)
    # Clipped at 0: no gradient. At exactly 1 (inside [1e-12, 1]) the whole -1/p, as with
    # np.clip or torch.clamp, not the half a tie in minimum(p, 1) would share.
    npt.assert_allclose(g, [[0.0, 0.0], [0.0, -2.0 / 3], [0.0, -1.0 / 3]], atol=1e-15)


def test_cross_entropy_is_stable_at_logits_of_1000() -> None:
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]])
    value, g = grad_of(cross_entropy, z, [1, 2])
    # Row 0: -log softmax_1 = 2000 (z_0 dominates); row 1: log 2 (two equal winners).
    assert value == pytest.approx((2000.0 + np.log(2.0)) / 2, rel=1e-12)
    expected = np.array([[1.0, -1.0, 0.0], [0.0, 0.5, -0.5]]) / 2
    npt.assert_allclose(g, expected, atol=1e-15)
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize(
    ("labels", "pattern"),
    [
        (np.array([0, 1, 3, 2]), r"\[0, 2\].*3 classes.*\[3\] at index \[2\]"),
        (np.array([0, -1, 1, 2]), r"\[0, 2\].*\[-1\] at index \[1\]"),
        (np.array([0.0, 1.5, 1.0, 2.0]), r"whole numbers.*\[1.5\] at index \[1\]"),
        (np.array([0.0, np.nan, 1.0, 2.0]), r"whole numbers.*\[nan\]"),
        (np.array([True, False, True, True]), r"booleans"),
        (np.array([0, 1, 2]), r"shape \(3,\).*\(4, 3\).*\(4,\)"),
        (np.zeros((4, 4)), r"shape \(4, 4\)"),
        (np.ones((4, 3)), r"row 0.*sum(ming)? to 3"),
        (np.array([[2.0, -1.0, 0.0]] * 4), r"\[0, 1\].*row 0"),
        (np.array(["a", "b", "c", "d"]), r"labels must be numbers.*dtype"),
    ],
)
def test_cross_entropy_refuses_bad_labels(labels: np.ndarray, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        cross_entropy(Tensor(LOGITS), labels)


def test_cross_entropy_refuses_scores_that_are_not_a_batch() -> None:
    with pytest.raises(ValueError, match=r"\(batch, classes\).*\(3,\)"):
        cross_entropy(Tensor(LOGITS[0]), [1])
    with pytest.raises(ValueError, match="empty"):
        cross_entropy(Tensor(np.zeros((0, 3))), np.zeros(0, dtype=int))
    with pytest.raises(TypeError, match="Value"):
        cross_entropy(Value(1.0), [0])


# --- binary cross-entropy -----------------------------------------------------------------------

X_BIN = np.array([[-2.0, 0.0, 0.7], [3.1, -0.4, 0.0]])
T_BIN = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.3]])


def test_bce_from_logits_by_hand_including_x_equal_0() -> None:
    value, g = grad_of(binary_cross_entropy, X_BIN, T_BIN)
    p = np_sigmoid(X_BIN)
    assert value == pytest.approx(-(T_BIN * np.log(p) + (1 - T_BIN) * np.log(1 - p)).mean())
    # The closed form (sigmoid(x) - t) / n, at the two exact zeros of X_BIN too.
    npt.assert_allclose(g, (p - T_BIN) / X_BIN.size, rtol=1e-12, atol=1e-16)
    assert gradcheck(lambda x: binary_cross_entropy(x, T_BIN), X_BIN)


def test_bce_is_stable_at_logits_of_1000() -> None:
    x = np.array([1000.0, -1000.0, 1000.0, -1000.0])
    t = np.array([0.0, 1.0, 1.0, 0.0])
    value, g = grad_of(binary_cross_entropy, x, t)
    # np.logaddexp(0, x) is softplus(x), a stable formula independent of the engine's.
    assert value == pytest.approx((np.logaddexp(0.0, x) - x * t).mean(), rel=1e-12)
    assert value == pytest.approx(500.0)
    npt.assert_allclose(g, (np_sigmoid(x) - t) / 4, atol=1e-15)
    npt.assert_allclose(g, [0.25, -0.25, 0.0, 0.0], atol=1e-15)


def test_bce_from_probabilities_by_hand() -> None:
    p = np_sigmoid(X_BIN)
    value, g = grad_of(binary_cross_entropy, p, T_BIN, from_logits=False)
    assert value == pytest.approx(-(T_BIN * np.log(p) + (1 - T_BIN) * np.log(1 - p)).mean())
    npt.assert_allclose(g, (-T_BIN / p + (1 - T_BIN) / (1 - p)) / p.size, rtol=1e-10)
    assert gradcheck(lambda q: binary_cross_entropy(q, T_BIN, from_logits=False), p)


def test_bce_from_probabilities_clips_0_and_1() -> None:
    value, g = grad_of(binary_cross_entropy, np.array([0.0, 1.0]), [1.0, 0.0], from_logits=False)
    assert value == pytest.approx(-np.log(1e-12), rel=1e-12)
    npt.assert_array_equal(g, [0.0, 0.0])


def test_bce_targets_may_be_tensors_lists_and_columns() -> None:
    x = X_BIN[0]
    expected = binary_cross_entropy(Tensor(x), T_BIN[0]).item()
    assert binary_cross_entropy(Tensor(x), Tensor(T_BIN[0])).item() == pytest.approx(expected)
    assert binary_cross_entropy(Tensor(x[:, None]), T_BIN[0].tolist()).item() == pytest.approx(
        expected
    )


@pytest.mark.parametrize(
    ("targets", "pattern"),
    [
        (np.array([0.0, 1.5, 1.0]), r"\[0, 1\].*\[1.5\] at flat index \[1\]"),
        (np.array([-0.1, 0.0, 1.0]), r"\[-0.1\]"),
        (np.array([0.0, np.nan, 1.0]), r"\[nan\]"),
        (np.array([0.0, 1.0]), r"\(3,\).*\(2,\)"),
    ],
)
def test_bce_refuses_bad_targets(targets: np.ndarray, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        binary_cross_entropy(Tensor(X_BIN[0]), targets)


# --- by name ------------------------------------------------------------------------------------


def test_losses_by_name() -> None:
    assert set(LOSSES) == {"sq-error", "sum-sq-error", "cross-entropy", "bce", "hinge"}
    assert get_loss("sq-error") is mse
    assert get_loss("sum-sq-error") is sum_squared_error
    assert get_loss("cross-entropy") is cross_entropy
    assert get_loss("bce") is binary_cross_entropy
    with pytest.raises(ValueError, match=r"'svm'.*'sq-error'.*'cross-entropy'.*'bce'.*'hinge'"):
        get_loss("svm")
