"""nn.optim: SGD and Adam against NumPy references written out here, against figures printed by
PyTorch, and on real losses; Values and Tensors; every refusal."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.testing as npt
import pytest
from backproplab.autograd import Tensor, Value
from backproplab.nn.layers import MLP
from backproplab.nn.losses import mse
from backproplab.nn.optim import SGD, Adam, Optimizer

RNG = np.random.default_rng(5)
W0 = RNG.normal(size=(3, 2))
GRADS = [RNG.normal(size=(3, 2)) for _ in range(6)]


def sgd_reference(
    w: np.ndarray, grads: list[np.ndarray], lr: float, momentum: float, decay: float
) -> np.ndarray:
    """torch.optim.SGD's documented update (dampening 0, no Nesterov), in NumPy."""
    w = w.copy()
    buf = None
    for g in grads:
        g = g + decay * w
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + g
            g = buf
        w = w - lr * g
    return w


def adam_reference(
    w: np.ndarray,
    grads: list[np.ndarray],
    lr: float,
    betas: tuple[float, float],
    eps: float,
    decay: float,
) -> np.ndarray:
    """Adam with bias correction (Kingma and Ba, Algorithm 1; torch.optim.Adam), in NumPy."""
    b1, b2 = betas
    w = w.copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g + decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return w


def run(opt_cls: type[Optimizer], grads: list[np.ndarray], **kwargs: Any) -> np.ndarray:
    """Steps of opt_cls on a Tensor starting at W0, with the gradients given."""
    p = Tensor(W0.copy(), requires_grad=True)
    opt = opt_cls([p], **kwargs)
    for g in grads:
        p.grad = g.copy()
        opt.step()
    return p.data


# --- SGD ----------------------------------------------------------------------------------------


def test_sgd_plain_step_on_a_tensor_and_a_value() -> None:
    p = Tensor(W0.copy(), requires_grad=True)
    v = Value(1.5)
    opt = SGD([p, v], lr=0.1)
    p.grad = GRADS[0].copy()
    v.grad = -2.0
    opt.step()
    npt.assert_allclose(p.data, W0 - 0.1 * GRADS[0], rtol=1e-15)
    assert v.data == pytest.approx(1.5 + 0.2, rel=1e-15)


@pytest.mark.parametrize(("momentum", "decay"), [(0.0, 0.0), (0.9, 0.0), (0.5, 0.1)])
def test_sgd_matches_the_numpy_reference(momentum: float, decay: float) -> None:
    got = run(SGD, GRADS, lr=0.05, momentum=momentum, weight_decay=decay)
    npt.assert_allclose(got, sgd_reference(W0, GRADS, 0.05, momentum, decay), rtol=1e-12)


def test_sgd_momentum_with_a_constant_gradient_is_a_geometric_series() -> None:
    g = np.ones((3, 2))
    mu, lr, n = 0.9, 0.1, 5
    got = run(SGD, [g] * n, lr=lr, momentum=mu)
    # Step k moves by lr * (1 + mu + ... + mu^(k-1)).
    moved = lr * sum((1 - mu**k) / (1 - mu) for k in range(1, n + 1))
    npt.assert_allclose(got, W0 - moved, rtol=1e-12)


# --- Adam ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6},
        {"lr": 0.02, "weight_decay": 0.1},
    ],
)
def test_adam_matches_the_numpy_reference(kwargs: dict[str, Any]) -> None:
    full = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, **kwargs}
    got = run(Adam, GRADS, **kwargs)
    expected = adam_reference(
        W0, GRADS, full["lr"], full["betas"], full["eps"], full["weight_decay"]
    )
    npt.assert_allclose(got, expected, rtol=1e-12)


def test_adam_first_step_moves_each_weight_by_lr() -> None:
    # At t = 1 the bias-corrected m̂ / sqrt(v̂) is g / |g|: every weight moves lr against g.
    got = run(Adam, GRADS[:1], lr=0.01, eps=0.0)
    npt.assert_allclose(got, W0 - 0.01 * np.sign(GRADS[0]), rtol=1e-13)


# Figures printed by torch 2.13.0 (CPU, float64) for the same parameter and gradients:
# p = [1.5, -0.5]; gradients [g, -2 g] for g in (0.3, -1.2, 0.5, 2.0, -0.1).
TORCH_GRADS = [np.array([g, -2 * g]) for g in (0.3, -1.2, 0.5, 2.0, -0.1)]
TORCH_CASES = [
    (
        SGD,
        {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
        [1.2644790658308682, -0.06174093079023936],
    ),
    (
        Adam,
        {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1},
        [1.3362439381540043, -0.3802505198393263],
    ),
]


@pytest.mark.parametrize(("opt_cls", "kwargs", "expected"), TORCH_CASES)
def test_against_pytorchs_figures_on_tensors_and_values(
    opt_cls: type[Optimizer], kwargs: dict[str, Any], expected: list[float]
) -> None:
    t = Tensor([1.5, -0.5], requires_grad=True)
    values = [Value(1.5), Value(-0.5)]
    opt_t, opt_v = opt_cls([t], **kwargs), opt_cls(values, **kwargs)
    for g in TORCH_GRADS:
        t.grad = g.copy()
        values[0].grad, values[1].grad = float(g[0]), float(g[1])
        opt_t.step()
        opt_v.step()
    npt.assert_allclose(t.data, expected, rtol=1e-12)
    npt.assert_allclose([v.data for v in values], expected, rtol=1e-12)


# --- both ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("opt_cls", [SGD, Adam])
def test_updates_are_in_place_for_tensors(opt_cls: type[Optimizer]) -> None:
    p = Tensor(W0.copy(), requires_grad=True)
    data = p.data
    opt = opt_cls([p], lr=0.1)
    for g in GRADS[:2]:
        p.grad = g.copy()
        opt.step()
    assert p.data is data
    assert not np.array_equal(data, W0)


def test_float32_parameters_stay_float32() -> None:
    p = Tensor(W0.astype(np.float32), requires_grad=True)
    for opt in (SGD([p], lr=0.1, momentum=0.9), Adam([p], lr=0.1)):
        p.grad = GRADS[0].astype(np.float32)
        opt.step()
        assert p.data.dtype == np.float32


@pytest.mark.parametrize("opt_cls", [SGD, Adam])
def test_step_skips_tensors_without_a_gradient(opt_cls: type[Optimizer]) -> None:
    a = Tensor(W0.copy(), requires_grad=True)
    b = Tensor(W0.copy(), requires_grad=True)
    opt = opt_cls([a, b], lr=0.1, momentum=0.9) if opt_cls is SGD else opt_cls([a, b], lr=0.1)
    for i, g in enumerate(GRADS[:4]):
        a.grad = g.copy()
        b.grad = g.copy() if i >= 2 else None  # b sits out the first two steps
        opt.step()
    # b's update is that of a fresh optimizer that saw only the last two gradients: a skipped
    # step neither moves it nor advances its momentum or its Adam step count.
    fresh = run(opt_cls, GRADS[2:4], lr=0.1, **({"momentum": 0.9} if opt_cls is SGD else {}))
    npt.assert_allclose(b.data, fresh, rtol=1e-12)
    assert not np.allclose(a.data, b.data)


def test_zero_grad_resets_tensors_and_values() -> None:
    p, v = Tensor(W0.copy(), requires_grad=True), Value(1.0)
    opt = Adam([p, v])
    (p.sum() * 2.0).backward()
    (v * 3.0).backward()
    assert p.grad is not None and v.grad == 3.0
    opt.zero_grad()
    assert p.grad is None and v.grad == 0.0


def test_a_parameter_listed_twice_is_updated_once() -> None:
    p = Tensor(W0.copy(), requires_grad=True)
    opt = SGD([p, p], lr=0.1)
    assert len(opt.params) == 1
    p.grad = GRADS[0].copy()
    opt.step()
    npt.assert_allclose(p.data, W0 - 0.1 * GRADS[0], rtol=1e-15)


def test_a_recorded_gradient_is_used_by_its_data() -> None:
    p = Tensor(W0.copy(), requires_grad=True)
    (p * p).sum().backward(create_graph=True)  # p.grad is a Tensor node: 2 p
    assert isinstance(p.grad, Tensor)
    SGD([p], lr=0.25).step()
    npt.assert_allclose(p.data, W0 - 0.25 * 2 * W0, rtol=1e-15)
    p.zero_grad()  # drop the reference cycle create_graph made


# --- on real losses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opt_cls", "kwargs"),
    [(SGD, {"lr": 0.02}), (SGD, {"lr": 0.01, "momentum": 0.9}), (Adam, {"lr": 0.1})],
)
def test_optimizers_minimise_a_quadratic(opt_cls: type[Optimizer], kwargs: dict[str, Any]) -> None:
    # ||A w - b||² has its minimum at the least-squares solution; both sides are known exactly.
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(8, 3)), rng.normal(size=8)
    best = np.linalg.lstsq(a, b, rcond=None)[0]
    floor = float(((a @ best - b) ** 2).sum())
    w = Tensor(np.zeros(3), requires_grad=True)
    opt = opt_cls([w], **kwargs)

    def loss() -> Tensor:
        return ((Tensor(a) @ w - b) ** 2).sum()

    start = loss().item()
    for _ in range(300):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() - floor < 1e-3 * (start - floor)
    npt.assert_allclose(w.data, best, atol=2e-2)


@pytest.mark.parametrize("opt_cls", [SGD, Adam])
def test_optimizers_minimise_over_values(opt_cls: type[Optimizer]) -> None:
    x, y = Value(2.0), Value(-3.0)
    opt = opt_cls([x, y], lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        ((x - 1.0) ** 2 + (y + 0.5) ** 2 * 2.0).backward()
        opt.step()
    assert x.data == pytest.approx(1.0, abs=2e-2)
    assert y.data == pytest.approx(-0.5, abs=2e-2)


def test_adam_trains_an_mlp_on_its_parameters() -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(32, 2))
    y = (x[:, :1] * x[:, 1:]) + 0.5
    model = MLP(2, 1, [8], "tanh", seed=3)
    opt = Adam(model.parameters(), lr=0.03)
    first = mse(model(x), y).item()
    for _ in range(150):
        opt.zero_grad()
        mse(model(x), y).backward()
        opt.step()
    assert mse(model(x), y).item() < 0.2 * first


# --- refusals -----------------------------------------------------------------------------------


def test_no_parameters_is_refused() -> None:
    with pytest.raises(ValueError, match="SGD got no parameters"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Adam got no parameters"):
        Adam(iter([]))


def test_non_parameters_are_refused() -> None:
    with pytest.raises(TypeError, match=r"parameter 1 is a ndarray"):
        SGD([Value(1.0), np.ones(2)], lr=0.1)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="iterable"):
        SGD(Value(1.0), lr=0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "name", "value"),
    [
        (lambda p: SGD(p, lr=0.0), "lr", "0.0"),
        (lambda p: SGD(p, lr=-0.1), "lr", "-0.1"),
        (lambda p: SGD(p, lr=float("nan")), "lr", "nan"),
        (lambda p: SGD(p, lr="0.1"), "lr", "'0.1'"),
        (lambda p: SGD(p, lr=0.1, momentum=1.0), "momentum", "1.0"),
        (lambda p: SGD(p, lr=0.1, momentum=-0.5), "momentum", "-0.5"),
        (lambda p: SGD(p, lr=0.1, weight_decay=-1.0), "weight_decay", "-1.0"),
        (lambda p: Adam(p, lr=float("inf")), "lr", "inf"),
        (lambda p: Adam(p, betas=(1.0, 0.999)), "betas[0]", "1.0"),
        (lambda p: Adam(p, betas=(0.9, -0.1)), "betas[1]", "-0.1"),
        (lambda p: Adam(p, betas=(0.9,)), "betas", "(0.9,)"),
        (lambda p: Adam(p, eps=-1e-8), "eps", "-1e-08"),
        (lambda p: Adam(p, weight_decay=-0.1), "weight_decay", "-0.1"),
    ],
)
def test_bad_hyperparameters_are_refused(make: Any, name: str, value: str) -> None:
    with pytest.raises(ValueError) as info:
        make([Value(1.0)])
    message = str(info.value)
    assert message.startswith(name) and value in message, message
