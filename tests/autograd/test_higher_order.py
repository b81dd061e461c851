"""Higher derivatives: grad of grad, Hessian-vector products, and the contract of grad itself.

Closed forms where they are short; elsewhere the engine's Hessian-vector product is checked
against central differences of the engine's own first-order gradient, which test_ops.py pins to
central differences of f.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.testing as npt
import pytest
from backproplab.autograd import (
    Node,
    Tensor,
    Value,
    concatenate,
    dense,
    grad,
    maximum,
    minimum,
    squared_error,
    stack,
    value_and_grad,
    where,
)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --- second and third derivatives on Values ----------------------------------------------------

SECOND = {
    # name: (f, f'' by hand, x0)
    "x**3": (lambda x: x**3, lambda x: 6 * x, 0.7),
    "tanh": (
        lambda x: x.tanh(),
        lambda x: -2 * math.tanh(x) * (1 - math.tanh(x) ** 2),
        0.3,
    ),
    "exp": (lambda x: x.exp(), math.exp, -0.4),
    "log": (lambda x: x.log(), lambda x: -1 / x**2, 0.6),
    "sigmoid": (
        lambda x: x.sigmoid(),
        lambda x: sigmoid(x) * (1 - sigmoid(x)) * (1 - 2 * sigmoid(x)),
        0.9,
    ),
    "sqrt": (lambda x: x.sqrt(), lambda x: -0.25 * x**-1.5, 1.7),
    "1/x": (lambda x: 1 / x, lambda x: 2 / x**3, -1.3),
    # products: the second derivative of a product needs the cross term 2 f' g'
    "x*exp(x)": (lambda x: x * x.exp(), lambda x: (x + 2) * math.exp(x), 0.5),
    "x**2*tanh(x)": (
        lambda x: x**2 * x.tanh(),
        lambda x: (
            2 * math.tanh(x)
            + 4 * x * (1 - math.tanh(x) ** 2)
            - 2 * x**2 * math.tanh(x) * (1 - math.tanh(x) ** 2)
        ),
        0.8,
    ),
    "2**x": (lambda x: 2**x, lambda x: math.log(2) ** 2 * 2**x, 1.1),
}


@pytest.mark.parametrize(("f", "d2", "x0"), SECOND.values(), ids=SECOND.keys())
def test_second_derivative_closed_form(f, d2, x0) -> None:
    assert grad(grad(f))(x0) == pytest.approx(d2(x0), rel=1e-12)


THIRD = {
    "x**4": (lambda x: x**4, lambda x: 24 * x, 1.3),
    "exp": (lambda x: x.exp(), math.exp, 0.2),
    "tanh": (
        lambda x: x.tanh(),
        lambda x: -2 * (1 - math.tanh(x) ** 2) * (1 - 3 * math.tanh(x) ** 2),
        0.4,
    ),
}


@pytest.mark.parametrize(("f", "d3", "x0"), THIRD.values(), ids=THIRD.keys())
def test_third_derivative_closed_form(f, d3, x0) -> None:
    assert grad(grad(grad(f)))(x0) == pytest.approx(d3(x0), rel=1e-12)


def test_fourth_derivative_of_x_to_the_fourth_is_constant() -> None:
    assert grad(grad(grad(grad(lambda x: x**4))))(0.3) == pytest.approx(24.0, rel=1e-14)


# --- x ** y and argnum -----------------------------------------------------------------------

X, Y = 1.5, 2.5


def power(x, y):
    return x**y


def test_power_second_derivative_in_the_base() -> None:
    # d2/dx2 x**y = y (y - 1) x**(y - 2)
    expected = Y * (Y - 1) * X ** (Y - 2)
    assert grad(grad(power, 0), 0)(X, Y) == pytest.approx(expected, rel=1e-12)


def test_power_second_derivative_in_the_exponent() -> None:
    # d2/dy2 x**y = x**y log(x)**2
    expected = X**Y * math.log(X) ** 2
    assert grad(grad(power, 1), 1)(X, Y) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("inner", "outer"), [(1, 0), (0, 1)], ids=["d/dx d/dy", "d/dy d/dx"])
def test_power_mixed_partial(inner, outer) -> None:
    # d/dx d/dy x**y = d/dy d/dx x**y = x**(y - 1) (1 + y log x).
    # The inner grad differentiates a float argument while the outer one is recording through
    # the other argument; the inner result must stay on the outer's graph.
    expected = X ** (Y - 1) * (1 + Y * math.log(X))
    assert grad(grad(power, inner), outer)(X, Y) == pytest.approx(expected, rel=1e-12)


def test_nested_grad_through_a_closure() -> None:
    # h(x) = d/dy (x y**2) at y = 1 is 2x, so dh/dx = 2: the inner grad is over y only, yet its
    # result depends on the outer x, as in a gradient penalty.
    def h(x):
        return grad(lambda y: x * y * y)(1.0)

    assert grad(h)(3.0) == pytest.approx(2.0, rel=1e-14)


def test_grad_with_argnum() -> None:
    # The arguments not differentiated stay plain floats, so f uses only operators.
    def f(x, y, z):
        return x * y**2 + 3 * z * z

    assert grad(f, 0)(2.0, 3.0, 0.5) == 9.0
    assert grad(f, 1)(2.0, 3.0, 0.5) == 12.0
    assert grad(f, 2)(2.0, 3.0, 0.5) == 3.0
    with pytest.raises(IndexError, match="argnum 3"):
        grad(f, 3)(2.0, 3.0, 0.5)


def test_grad_with_negative_argnum_counts_from_the_end() -> None:
    # value_and_grad accepts -len(args) <= argnum < 0, so these must mean what they do in a list.
    def f(x, y, z):
        return x * y**2 + 3 * z * z

    assert grad(f, -2)(2.0, 3.0, 0.5) == 12.0
    assert grad(f, -1)(2.0, 3.0, 0.5) == 3.0
    assert value_and_grad(lambda x, y: x * y, -1)(2.0, 3.0) == (6.0, 2.0)


# --- the contract of grad / value_and_grad -----------------------------------------------------


def test_value_and_grad_returns_value_and_gradient() -> None:
    value, d = value_and_grad(lambda x: x * x * x)(2.0)
    assert (value, d) == (8.0, 12.0)
    assert type(value) is float and type(d) is float

    value, d = value_and_grad(lambda x: (x * x).sum())(np.array([1.0, 2.0]))
    assert value == 5.0
    npt.assert_array_equal(d, [2.0, 4.0])

    v = Value(3.0)
    out, d = value_and_grad(lambda x: x * x)(v)
    assert isinstance(out, Value) and isinstance(d, Value)
    assert (out.data, d.data) == (9.0, 6.0)


def test_grad_of_a_function_not_depending_on_x_is_zero() -> None:
    assert grad(lambda x: 3.0)(2.0) == 0.0
    assert grad(lambda x: Value(3.0) * 2)(2.0) == 0.0
    y = Value(5.0)
    assert grad(lambda x: y * y)(2.0) == 0.0  # depends on a node, just not on x
    npt.assert_array_equal(grad(lambda x: Tensor([1.0]).sum())(np.ones((2, 2))), np.zeros((2, 2)))


def test_grad_needs_a_scalar_result() -> None:
    with pytest.raises(ValueError, match=r"scalar.*\(2,\)"):
        grad(lambda x: x * 2)(np.array([1.0, 2.0]))
    # one element in any shape counts as a scalar
    npt.assert_array_equal(grad(lambda x: (x * 2).sum(keepdims=True))(np.ones(2)), [2.0, 2.0])


@pytest.mark.parametrize(
    ("x", "f", "kind"),
    [
        pytest.param(2.0, lambda x: x * x, float, id="float"),
        pytest.param(2, lambda x: x * x, float, id="int"),
        pytest.param(np.float64(2.0), lambda x: x * x, float, id="np.float64"),
        pytest.param(Value(2.0), lambda x: x * x, Value, id="Value"),
        pytest.param(Value.constant(2.0), lambda x: x * x, Value, id="constant Value"),
        pytest.param(np.array([1.0, 2.0]), lambda x: (x * x).sum(), np.ndarray, id="ndarray"),
        pytest.param([1.0, 2.0], lambda x: (x * x).sum(), np.ndarray, id="list"),
        pytest.param(Tensor([1.0, 2.0]), lambda x: (x * x).sum(), Tensor, id="Tensor"),
        pytest.param(
            Tensor([1.0, 2.0], requires_grad=True),
            lambda x: (x * x).sum(),
            Tensor,
            id="Tensor requiring grad",
        ),
    ],
)
def test_gradient_comes_back_in_the_kind_of_the_argument(x, f, kind) -> None:
    d = grad(f)(x)
    assert type(d) is kind
    data = d.data if isinstance(d, Node) else d
    npt.assert_array_equal(data, 2 * np.asarray(x.data if isinstance(x, Node) else x))


def test_grad_of_a_constant_node_does_not_change_it() -> None:
    c = Value.constant(2.0)
    grad(lambda x: x * x)(c)
    assert c.requires_grad is False and c.grad == 0.0


# --- backward(create_graph=True) ---------------------------------------------------------------


def test_value_backward_create_graph_then_backward_on_the_gradient() -> None:
    x = Value(0.5)
    y = x**3
    y.backward(create_graph=True)
    first = x.grad
    assert isinstance(first, Value) and first.requires_grad
    assert first.data == pytest.approx(3 * 0.5**2, rel=1e-14)
    x.grad = 0.0
    first.backward()
    assert x.grad == pytest.approx(6 * 0.5, rel=1e-14)


def test_tensor_backward_create_graph_gives_hessian_vector_product() -> None:
    x0, v = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, -1.0])
    x = Tensor(x0, requires_grad=True)
    (x**3).sum().backward(create_graph=True)
    first = x.grad
    assert isinstance(first, Tensor)
    npt.assert_allclose(first.data, 3 * x0**2, rtol=1e-14)
    x.grad = None
    (first * v).sum().backward()
    npt.assert_allclose(x.grad, 6 * x0 * v, rtol=1e-14)


# --- Hessian-vector products with a Hessian derived by hand -----------------------------------


def hvp(f: Callable[[Tensor], Tensor], x0: np.ndarray, v: np.ndarray) -> np.ndarray:
    """H(x0) @ v as the gradient of <grad f(x), v>, the usual double-backward trick."""
    return grad(lambda x: (grad(f)(x) * v).sum())(x0)


X0 = np.array([0.3, -0.2, 0.5, 1.1])
V = np.array([1.0, 2.0, -1.0, 0.5])


def test_hvp_of_sum_of_cubes() -> None:
    # f = sum x_i**3: H = diag(6 x)
    npt.assert_allclose(hvp(lambda x: (x**3).sum(), X0, V), 6 * X0 * V, rtol=1e-14)


def test_hvp_of_logsumexp() -> None:
    # f = log sum exp x: grad = p = softmax(x), H = diag(p) - p p^T
    p = np.exp(X0) / np.exp(X0).sum()
    hessian = np.diag(p) - np.outer(p, p)
    npt.assert_allclose(hvp(lambda x: x.logsumexp(), X0, V), hessian @ V, rtol=1e-12, atol=1e-14)


def test_hvp_of_softmax_cross_entropy() -> None:
    # Mean over rows of -sum_c y_c log softmax(z)_c, each y a distribution. Per row,
    # grad = p - y and H = diag(p) - p p^T (y drops out since it sums to 1); rows do not interact,
    # so H v is that block applied to each row of v, divided by the number of rows.
    z0 = np.array([[0.3, -1.2, 2.0], [0.5, 0.5, -0.7]])
    y = np.array([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])
    v = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, -3.0]])

    def loss(z: Tensor) -> Tensor:
        return -(z.log_softmax(axis=1) * y).sum() * (1.0 / z.shape[0])

    p = np.exp(z0) / np.exp(z0).sum(axis=1, keepdims=True)
    expected = np.stack(
        [(np.diag(pr) - np.outer(pr, pr)) @ vr for pr, vr in zip(p, v, strict=True)]
    )
    expected /= z0.shape[0]
    npt.assert_allclose(grad(loss)(z0), (p - y) / z0.shape[0], rtol=1e-12)
    npt.assert_allclose(hvp(loss, z0, v), expected, rtol=1e-12, atol=1e-14)


def test_hvp_of_softmax_cross_entropy_through_softmax_then_log() -> None:
    # The same loss built from softmax and log separately: a different graph, the same Hessian.
    z0 = np.array([0.3, -1.2, 2.0])
    y = np.array([0.0, 1.0, 0.0])
    v = np.array([1.0, -1.0, 0.5])
    p = np.exp(z0) / np.exp(z0).sum()
    expected = (np.diag(p) - np.outer(p, p)) @ v
    npt.assert_allclose(
        hvp(lambda z: -(z.softmax().log() * y).sum(), z0, v), expected, rtol=1e-12, atol=1e-14
    )


# --- Hessian-vector products through every structural op, against finite differences --------

RNG = np.random.default_rng(7)
W = RNG.normal(size=(3, 4))
INDEX = np.array([0, 2, 2, 1])  # a repeat: scatter-add must accumulate in the second pass too
MASK = np.array([True, False, True, False])
WEIGHTS = Tensor([1.0, 2.0, 3.0, 4.0])

THROUGH = {
    "matmul": lambda x: ((Tensor(W) @ x).tanh() ** 2).sum(),
    "matmul-both-sides": lambda x: (x.reshape(2, 2) @ x.reshape(2, 2)).exp().sum(),
    "matmul-vector-vector": lambda x: (x @ x) ** 2,
    "softmax": lambda x: (x.softmax() * WEIGHTS).sum() ** 2,
    "log_softmax": lambda x: (x.log_softmax() * x).sum(),
    "logsumexp-axis": lambda x: x.reshape(2, 2).logsumexp(axis=1).sum() ** 2,
    "max": lambda x: (x * x).max() * x.sum(),
    "max-axis": lambda x: ((x.reshape(2, 2) ** 3).max(axis=0) ** 2).sum(),
    "min": lambda x: (x**3).min() * x.sum(),
    "index": lambda x: (x[INDEX] ** 3).sum(),
    "index-slice": lambda x: (x[1:] * x[:-1]).exp().sum(),
    "concatenate": lambda x: (concatenate([x, x * x], 0) ** 3).sum(),
    "stack": lambda x: (stack([x, x.tanh()], 1) ** 3).sum(),
    "where": lambda x: where(MASK, x**3, x.exp()).sum(),
    "maximum": lambda x: (maximum(x**2, x * 0.5 + 0.3) ** 2).sum(),
    "minimum": lambda x: (minimum(x**2, x * 0.5 + 0.3) ** 2).sum(),
    "sum-axis": lambda x: (x.reshape(2, 2).sum(axis=0) ** 3).sum(),
    "mean": lambda x: x.mean() ** 3,
    "transpose": lambda x: (x.reshape(2, 2).T * x.reshape(2, 2)).exp().sum(),
    "broadcast": lambda x: ((x.reshape(4, 1) * x.reshape(1, 4)) ** 2).sum(),
    "broadcast_to": lambda x: (x.broadcast_to((3, 4)) ** 3).sum(),
    "sqrt-div": lambda x: ((x * x + 1).sqrt() / (x * x + 2)).sum(),
    "pow-tensor-exponent": lambda x: ((x * x + 1) ** (x * 0.5)).sum(),
    "abs-relu-sigmoid": lambda x: (x.abs() ** 3 + x.relu() ** 3 + x.sigmoid() ** 2).sum(),
    # x as the batch, the weight and the bias of fused layers, so every input's rule is recorded
    "dense-tanh": lambda x: squared_error(
        dense(x.reshape(2, 2), x.reshape(2, 2), x[:2], "tanh"), Tensor(W[:2, :2])
    ),
    "dense-sigmoid-sum": lambda x: (
        squared_error(dense(Tensor(W), x.reshape(4, 1), None, "sigmoid"), Tensor(W[:, :1]), "sum")
        ** 2
    ),
    "dense-none": lambda x: (dense(x.reshape(1, 4), x.reshape(4, 1) * x.reshape(4, 1)) ** 3).sum(),
}


@pytest.mark.parametrize("f", THROUGH.values(), ids=THROUGH.keys())
def test_hvp_matches_finite_differences_of_the_gradient(f) -> None:
    # X0 keeps away from every kink and tie these functions have.
    eps = 1e-5
    df = grad(f)
    numeric = (df(X0 + eps * V) - df(X0 - eps * V)) / (2 * eps)
    npt.assert_allclose(hvp(f, X0, V), numeric, rtol=1e-6, atol=1e-6)


def test_full_hessian_of_a_small_network() -> None:
    # Every column H e_i, against central differences of the gradient, for a tanh layer with a
    # squared loss: the shape of the second-order term in Newton and Gauss-Newton methods.
    a = np.array([[0.5, -1.0, 0.3], [1.2, 0.4, -0.6]])
    target = np.array([0.2, -0.1])

    def f(x: Tensor) -> Tensor:
        return (((Tensor(a) @ x).tanh() - target) ** 2).sum()

    x0 = np.array([0.1, -0.3, 0.7])
    df = grad(f)
    eps = 1e-5
    for i in range(3):
        e = np.eye(3)[i]
        numeric = (df(x0 + eps * e) - df(x0 - eps * e)) / (2 * eps)
        npt.assert_allclose(hvp(f, x0, e), numeric, rtol=1e-6, atol=1e-8)
