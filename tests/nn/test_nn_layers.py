"""nn.functional.activate, nn.layers.Linear and MLP.

Forward passes are checked against NumPy written out by hand; gradients against central
differences (gradcheck) and against seed 000's closed forms (dL/dW = xᵀ δ, dL/db = Σ δ, with
δ = dL/dy · σ'(z)). Nothing here compares the engine with itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.testing as npt
import pytest
from backproplab.autograd import Tensor, Value, gradcheck
from backproplab.nn.functional import ACTIVATIONS, activate
from backproplab.nn.layers import MLP, Linear
from backproplab.nn.losses import cross_entropy
from backproplab.nn.module import Module

RNG = np.random.default_rng(7)
X = RNG.normal(size=(5, 3))

NP_ACT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "none": lambda z: z,
}
NP_DACT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda z: (z > 0).astype(float),
    "sigmoid": lambda z: NP_ACT["sigmoid"](z) * (1.0 - NP_ACT["sigmoid"](z)),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "none": lambda z: np.ones_like(z),
}


def np_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def set_param(model: Module, dotted: str, value: Any) -> None:
    """Set the parameter called ``dotted`` (``layers.1.weight``) on model."""
    *path, last = dotted.split(".")
    obj: Any = model
    for part in path:
        obj = obj[int(part)] if isinstance(obj, list) else getattr(obj, part)
    setattr(obj, last, value)


def gradcheck_params(
    model: Module,
    x: np.ndarray,
    loss: Callable[[Tensor], Tensor] = lambda out: out,
    before: Callable[[], None] = lambda: None,
) -> bool:
    """gradcheck of loss(model(x)) as a function of every parameter array of model.

    ``before`` runs before each forward (to reseed a dropout generator, so every evaluation
    central differences make sees the same mask)."""
    params = dict(model.named_parameters())
    names = list(params)

    def f(*arrays: Tensor) -> Tensor:
        for name, a in zip(names, arrays, strict=True):
            set_param(model, name, a)
        try:
            before()
            return loss(model(x))
        finally:
            for name in names:
                set_param(model, name, params[name])

    return gradcheck(f, *[params[n].data for n in names])


def by_hand(layer: Linear, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(z, y) of a layer without dropout, in NumPy: z = x W + b, y = act(z)."""
    z = x @ layer.weight.data
    if layer.bias is not None:
        z = z + layer.bias.data
    return z, NP_ACT[layer.applied_activation](z)


def randomize_bias(layer: Linear, seed: int = 3) -> None:
    """Biases start at zero; give them values so that a dropped bias term would show."""
    if layer.bias is not None:
        layer.bias.data[...] = np.random.default_rng(seed).normal(size=layer.bias.shape)


# --- activate -----------------------------------------------------------------------------------


def test_activations_tuple() -> None:
    assert ACTIVATIONS == ("relu", "sigmoid", "tanh", "none")


@pytest.mark.parametrize("name", [*ACTIVATIONS, "linear"])
def test_activate_on_tensors_and_values(name: str) -> None:
    z = np.array([-2.0, -0.5, 0.3, 1.7])
    expected = NP_ACT["none" if name == "linear" else name](z)
    npt.assert_allclose(activate(Tensor(z), name).data, expected, rtol=1e-12)
    for zi, ei in zip(z, expected, strict=True):
        out = activate(Value(float(zi)), name)
        assert isinstance(out, Value)
        assert out.data == pytest.approx(ei, rel=1e-12)


def test_activate_none_returns_its_input() -> None:
    t = Tensor([1.0, 2.0])
    assert activate(t, "none") is t
    assert activate(t, "linear") is t


def test_activate_refuses_unknown_names_and_non_nodes() -> None:
    with pytest.raises(ValueError, match=r"unknown activation 'softplus'.*'relu'.*'tanh'"):
        activate(Tensor([1.0]), "softplus")
    with pytest.raises(TypeError, match="ndarray"):
        activate(np.ones(2), "relu")  # type: ignore[call-overload]


# --- Linear: forward ----------------------------------------------------------------------------


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_linear_forward_matches_numpy(activation: str, use_bias: bool) -> None:
    layer = Linear(3, 4, activation, use_bias, seed=1)
    randomize_bias(layer)
    out = layer(X)
    assert isinstance(out, Tensor) and out.shape == (5, 4)
    npt.assert_allclose(out.data, by_hand(layer, X)[1], rtol=1e-12, atol=1e-15)


def test_linear_parameters_and_shapes() -> None:
    layer = Linear(3, 4)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.weight.shape == (3, 4) and layer.bias is not None and layer.bias.shape == (4,)
    npt.assert_array_equal(layer.bias.data, np.zeros(4))
    no_bias = Linear(3, 4, use_bias=False)
    assert no_bias.bias is None
    assert [n for n, _ in no_bias.named_parameters()] == ["weight"]


def test_linear_use_act_false_is_affine_whatever_the_activation() -> None:
    layer = Linear(3, 2, "sigmoid", use_act=False, seed=2)
    randomize_bias(layer)
    assert layer.applied_activation == "none"
    npt.assert_allclose(
        layer(X).data,
        X @ layer.weight.data + layer.bias.data,
        rtol=1e-12,  # type: ignore[union-attr]
    )


def test_linear_takes_arrays_lists_tensors_and_single_samples() -> None:
    layer = Linear(3, 2, "tanh", seed=4)
    randomize_bias(layer)
    expected = by_hand(layer, X)[1]
    npt.assert_allclose(layer(X.tolist()).data, expected, rtol=1e-12)
    npt.assert_allclose(layer(Tensor(X)).data, expected, rtol=1e-12)
    one = layer(X[0])
    assert one.shape == (2,)
    npt.assert_allclose(one.data, expected[0], rtol=1e-12)


def test_linear_input_gradient_flows_to_a_tensor_input() -> None:
    layer = Linear(3, 2, "tanh", seed=4)
    x = Tensor(X, requires_grad=True)
    layer(x).sum().backward()
    z, _ = by_hand(layer, X)
    npt.assert_allclose(x.grad, NP_DACT["tanh"](z) @ layer.weight.data.T, rtol=1e-10)  # Wᵀ δ


def test_linear_wrong_feature_count_names_both_shapes_and_the_layer() -> None:
    layer = Linear(3, 2)
    with pytest.raises(ValueError, match=r"Linear\(3, 2.*\(batch, 3\).*\(5, 4\)"):
        layer(np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"shape \(\)"):
        layer(1.0)
    with pytest.raises(TypeError):
        layer(Value(1.0))


# --- Linear: gradients --------------------------------------------------------------------------


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_linear_gradcheck(activation: str, use_bias: bool) -> None:
    layer = Linear(3, 4, activation, use_bias, seed=5)
    randomize_bias(layer)
    assert gradcheck_params(layer, X)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "three-nodes"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_linear_gradients_match_seed_000_closed_forms(activation: str, fused: bool) -> None:
    layer = Linear(3, 4, activation, seed=6, fused=fused)
    randomize_bias(layer)
    upstream = np.random.default_rng(8).normal(size=(5, 4))  # dL/dy
    (layer(X) * upstream).sum().backward()
    z, _ = by_hand(layer, X)
    delta = upstream * NP_DACT[activation](z)
    npt.assert_allclose(layer.weight.grad, X.T @ delta, rtol=1e-10, atol=1e-14)
    npt.assert_allclose(layer.bias.grad, delta.sum(axis=0), rtol=1e-10, atol=1e-14)  # type: ignore[union-attr]


def _ops(root: Any) -> list[str]:
    seen, stack, names = set(), [root], []
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.op is not None:
            names.append(n.op.name)
        stack.extend(n.parents)
    return sorted(names)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_fused_records_one_node_per_layer_and_unfused_three(activation: str) -> None:
    fused = Linear(3, 4, activation, seed=1)
    assert _ops(fused(X)) == ["Dense"]
    parts = Linear(3, 4, activation, seed=1, fused=False)
    assert _ops(parts(X)) == sorted(["MatMul", "Add", OP_NAMES[activation]])
    npt.assert_array_equal(parts(X).data.shape, fused(X).data.shape)
    npt.assert_allclose(parts(X).data, fused(X).data, rtol=1e-15, atol=1e-15)
    net = MLP(3, 2, [4], activation, fused=False)
    assert all(not layer.fused for layer in net.layers)
    assert _ops(net(X)).count("MatMul") == 2


OP_NAMES = {"tanh": "Tanh", "relu": "ReLU", "sigmoid": "Sigmoid"}


# --- Linear: dropout ----------------------------------------------------------------------------


def test_dropout_in_training_mode_is_act_times_mask_over_keep() -> None:
    p = 0.4
    layer = Linear(3, 6, "sigmoid", dropout=p, seed=9)
    randomize_bias(layer)
    assert layer.training
    out = layer(X)
    mask = layer.last_mask
    assert mask is not None and mask.shape == (5, 6)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert 0 < mask.sum() < mask.size  # with 30 draws at p = 0.4 both kinds occur (seed 9)
    npt.assert_allclose(out.data, by_hand(layer, X)[1] * mask / (1 - p), rtol=1e-12)


def test_dropout_masks_are_fresh_each_forward_and_reproducible_from_the_seed() -> None:
    a, b = Linear(3, 6, dropout=0.5, seed=11), Linear(3, 6, dropout=0.5, seed=11)
    a(X)
    first = a.last_mask
    a(X)
    assert first is not None and a.last_mask is not None
    assert not np.array_equal(first, a.last_mask)
    b(X)
    npt.assert_array_equal(b.last_mask, first)  # type: ignore[arg-type]


def test_dropout_drops_about_p_of_the_outputs() -> None:
    layer = Linear(3, 50, dropout=0.3, seed=12)
    layer(np.ones((400, 3)))
    assert layer.last_mask is not None
    # 20,000 Bernoulli(0.7) draws: the kept fraction's standard deviation is 0.0032.
    assert abs(layer.last_mask.mean() - 0.7) < 0.02


@pytest.mark.parametrize("how", ["eval()", "eval=False", "train(False)"])
def test_no_dropout_in_inference_mode(how: str) -> None:
    if how == "eval=False":
        layer = Linear(3, 6, "relu", dropout=0.5, eval=False, seed=13)
    else:
        layer = Linear(3, 6, "relu", dropout=0.5, seed=13)
        layer(X)  # a training forward leaves a mask behind...
        assert layer.last_mask is not None
        layer.eval() if how == "eval()" else layer.train(False)
    assert not layer.training
    randomize_bias(layer)
    npt.assert_allclose(layer(X).data, by_hand(layer, X)[1], rtol=1e-12)
    assert layer.last_mask is None  # ...which an inference forward clears


def test_zero_dropout_in_training_mode_has_no_mask() -> None:
    layer = Linear(3, 2, seed=1)
    layer(X)
    assert layer.training and layer.last_mask is None


def test_dropout_gradcheck_with_the_mask_fixed_by_reseeding() -> None:
    layer = Linear(3, 6, "tanh", dropout=0.5, seed=14)
    randomize_bias(layer)

    def reseed() -> None:
        layer.rng = np.random.default_rng(99)

    assert gradcheck_params(layer, X, before=reseed)
    assert layer.last_mask is not None and 0 < layer.last_mask.sum() < layer.last_mask.size


def test_dropout_gradients_match_closed_form_with_the_mask() -> None:
    p = 0.25
    layer = Linear(3, 6, "sigmoid", dropout=p, seed=15)
    randomize_bias(layer)
    upstream = np.random.default_rng(16).normal(size=(5, 6))
    (layer(X) * upstream).sum().backward()
    mask = layer.last_mask
    assert mask is not None
    z, _ = by_hand(layer, X)
    delta = upstream * mask / (1 - p) * NP_DACT["sigmoid"](z)
    npt.assert_allclose(layer.weight.grad, X.T @ delta, rtol=1e-10, atol=1e-14)
    npt.assert_allclose(layer.bias.grad, delta.sum(axis=0), rtol=1e-10, atol=1e-14)  # type: ignore[union-attr]


# --- Linear: regularisation ---------------------------------------------------------------------


@pytest.mark.parametrize("reg", ["l1", "l2"])
def test_penalty_value_and_gradient(reg: str) -> None:
    beta = 0.3
    layer = Linear(3, 4, regularisation=reg, beta=beta, seed=17)
    randomize_bias(layer)  # the bias must not count
    w = layer.weight.data.copy()
    penalty = layer.penalty()
    assert penalty.shape == ()
    expected = beta * np.abs(w).sum() if reg == "l1" else beta * (w**2).sum()
    assert penalty.item() == pytest.approx(expected, rel=1e-12)
    penalty.backward()
    closed = beta * np.sign(w) if reg == "l1" else 2 * beta * w
    npt.assert_allclose(layer.weight.grad, closed, rtol=1e-12)
    assert layer.bias is not None and layer.bias.grad is None


@pytest.mark.parametrize("reg", ["l1", "l2"])
def test_penalty_gradcheck(reg: str) -> None:
    layer = Linear(3, 4, "relu", regularisation=reg, beta=0.2, seed=18)
    randomize_bias(layer)
    assert gradcheck_params(layer, X, loss=lambda out: (out**2).mean() + layer.penalty())


def test_no_regularisation_gives_a_constant_zero() -> None:
    for layer in (Linear(3, 4), Linear(3, 4, regularisation="none", beta=5.0)):
        assert layer.regularisation is None
        penalty = layer.penalty()
        assert penalty.item() == 0.0 and not penalty.requires_grad


# --- Linear: initialisation ---------------------------------------------------------------------


def test_inits_are_drawn_from_default_rng_of_the_seed() -> None:
    fan_in, fan_out = 30, 20
    shape = (fan_in, fan_out)
    bound = math.sqrt(6 / (fan_in + fan_out))
    xavier = np.random.default_rng(3).uniform(-bound, bound, shape)
    he = np.random.default_rng(3).normal(0.0, math.sqrt(2 / fan_in), shape)
    normal = np.random.default_rng(3).standard_normal(shape)
    cases = [
        (Linear(*shape, init="xavier", seed=3), xavier),
        (Linear(*shape, "relu", init="he", seed=3), he),
        (Linear(*shape, init="normal", seed=3), normal),
        (Linear(*shape, "relu", seed=3), he),  # auto: He for relu
        (Linear(*shape, "relu", use_act=False, seed=3), xavier),  # auto: no relu applied
        (Linear(*shape, "sigmoid", seed=3), xavier),
        (Linear(*shape, "tanh", seed=3), xavier),
        (Linear(*shape, "none", seed=3), xavier),
    ]
    for layer, expected in cases:
        npt.assert_array_equal(layer.weight.data, expected, err_msg=repr(layer))


def test_init_scales_statistically() -> None:
    # Independent of how the draws are made: Xavier's bound and He's standard deviation.
    fan_in, fan_out = 400, 200
    xavier = Linear(fan_in, fan_out, "tanh", seed=1).weight.data
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(xavier).max() <= bound
    assert np.abs(xavier).max() > 0.99 * bound
    assert xavier.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    he = Linear(fan_in, fan_out, "relu", seed=1).weight.data
    assert he.std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
    assert abs(he.mean()) < 0.02 * math.sqrt(2 / fan_in)  # 80,000 draws: sd of mean 0.0035 sd
    normal = Linear(fan_in, fan_out, init="normal", seed=1).weight.data
    assert normal.std() == pytest.approx(1.0, rel=0.02)


def test_different_seeds_give_different_weights() -> None:
    npt.assert_array_equal(Linear(3, 4, seed=1).weight.data, Linear(3, 4, seed=1).weight.data)
    assert not np.array_equal(Linear(3, 4, seed=1).weight.data, Linear(3, 4, seed=2).weight.data)


# --- Linear: arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument", "value"),
    [
        ({"input_size": 0}, "input_size", "0"),
        ({"input_size": -1}, "input_size", "-1"),
        ({"input_size": 2.5}, "input_size", "2.5"),
        ({"input_size": True}, "input_size", "True"),
        ({"output_size": 0}, "output_size", "0"),
        ({"activation": "softmax"}, "activation", "'softmax'"),
        ({"activation": None}, "activation", "None"),
        ({"dropout": 1.0}, "dropout", "1.0"),
        ({"dropout": -0.1}, "dropout", "-0.1"),
        ({"dropout": float("nan")}, "dropout", "nan"),
        ({"regularisation": "l3"}, "regularisation", "'l3'"),
        ({"beta": -1.0}, "beta", "-1.0"),
        ({"beta": float("inf")}, "beta", "inf"),
        ({"init": "glorot"}, "init", "'glorot'"),
        ({"seed": -1}, "seed", "-1"),
        ({"seed": 1.5}, "seed", "1.5"),
    ],
)
def test_linear_refuses_bad_arguments(kwargs: dict[str, Any], argument: str, value: str) -> None:
    args = {"input_size": 3, "output_size": 2, **kwargs}
    with pytest.raises(ValueError) as info:
        Linear(**args)
    message = str(info.value)
    assert argument in message and value in message, message


def test_linear_repr_shows_the_arguments() -> None:
    assert repr(Linear(3, 2)) == "Linear(3, 2, activation='sigmoid')"
    layer = Linear(3, 2, "relu", False, 0.5, False, True, "l2", 0.01, init="he")
    assert repr(layer) == (
        "Linear(3, 2, activation='relu', use_bias=False, dropout=0.5, use_act=False, "
        "regularisation='l2', beta=0.01, init='he')"
    )


def test_linear_eval_argument_is_seed_000s_training_flag() -> None:
    assert Linear(3, 2).training is True
    assert Linear(3, 2, eval=True).training is True
    assert Linear(3, 2, eval=False).training is False
    layer = Linear(3, 2)
    assert layer.eval() is layer and layer.training is False  # Module.eval(): inference


def test_linear_positional_arguments_in_seed_000s_order() -> None:
    layer = Linear(3, 2, "relu", False, 0.2, True, False, "l1", 0.5)
    assert (layer.input_size, layer.output_size, layer.activation) == (3, 2, "relu")
    assert (layer.use_bias, layer.dropout, layer.use_act, layer.training) == (
        False,
        0.2,
        True,
        False,
    )
    assert (layer.regularisation, layer.beta) == ("l1", 0.5)


# --- MLP ----------------------------------------------------------------------------------------


def mlp_by_hand(model: MLP, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits, output) of an MLP without dropout, in NumPy."""
    h = x
    for layer in model.layers:
        h = by_hand(layer, h)[1]
    return h, np_softmax(h) if model.is_softmax else h


def randomize_biases(model: MLP) -> None:
    for i, layer in enumerate(model.layers):
        randomize_bias(layer, seed=100 + i)


@pytest.mark.parametrize("is_softmax", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_forward_matches_numpy(activation: str, is_softmax: bool) -> None:
    model = MLP(3, 4, [5, 6], activation, is_softmax, seed=2)
    randomize_biases(model)
    logits, output = mlp_by_hand(model, X)
    npt.assert_allclose(model(X).data, output, rtol=1e-10, atol=1e-15)
    npt.assert_allclose(model.logits(X).data, logits, rtol=1e-10, atol=1e-15)
    if is_softmax:  # a classifier: labels from predict, probabilities from predict_proba
        npt.assert_array_equal(model.predict(X), output.argmax(axis=1))
        npt.assert_allclose(model.predict_proba(X), output, rtol=1e-10, atol=1e-15)
    else:
        npt.assert_allclose(model.predict(X), output, rtol=1e-10, atol=1e-15)


def test_mlp_layers_sizes_and_output_activation() -> None:
    model = MLP(3, 4, [5, 6], "relu")
    assert [(m.input_size, m.output_size) for m in model.layers] == [(3, 5), (5, 6), (6, 4)]
    assert [m.applied_activation for m in model.layers] == ["relu"] * 3  # seed 000: all layers
    soft = MLP(3, 4, [5, 6], "relu", is_softmax=True)
    assert [m.applied_activation for m in soft.layers] == ["relu", "relu", "none"]
    assert len(MLP(3, 4).layers) == 1  # no hidden layer by default
    assert MLP(3, 4, (5,)).hid_sizes == MLP(3, 4, np.array([5])).hid_sizes == [5]


def test_mlp_softmax_rows_are_distributions_and_logits_feed_cross_entropy() -> None:
    model = MLP(3, 4, [5], "tanh", True, seed=3)
    out = model(X).data
    npt.assert_allclose(out.sum(axis=1), np.ones(5), rtol=1e-12)
    assert np.all(out > 0)
    labels = np.array([0, 1, 2, 3, 0])
    # From the logits and from the probabilities, the same loss (the clip never bites here).
    assert cross_entropy(model.logits(X), labels).item() == pytest.approx(
        cross_entropy(model(X), labels, from_logits=False).item(), rel=1e-10
    )


def test_mlp_without_softmax_logits_are_the_output() -> None:
    model = MLP(3, 2, [4], "sigmoid", seed=4)
    npt.assert_array_equal(model.logits(X).data, model(X).data)
    assert np.all((model(X).data > 0) & (model(X).data < 1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"activation": "sigmoid"},
        {"activation": "relu", "use_bias": False},
        {"activation": "tanh", "is_softmax": True},
        {"activation": "none", "reg": "l2", "beta": 0.1},
        {"activation": "tanh", "reg": "l1", "beta": 0.05, "is_softmax": True},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_mlp_gradcheck(kwargs: dict[str, Any]) -> None:
    model = MLP(3, 3, [4], seed=5, **kwargs)
    randomize_biases(model)
    labels = np.array([0, 2, 1, 1, 0])

    def loss(out: Tensor) -> Tensor:
        base = (
            cross_entropy(out, labels, from_logits=False)
            if model.is_softmax
            else ((out - 0.5) ** 2).mean()
        )
        return base + model.penalty()

    assert gradcheck_params(model, X, loss=loss)


def test_mlp_gradcheck_with_dropout() -> None:
    model = MLP(3, 2, [6, 5], "tanh", layer_dropout=0.3, seed=6)
    randomize_biases(model)

    def reseed() -> None:
        for i, layer in enumerate(model.layers):
            layer.rng = np.random.default_rng(50 + i)

    assert gradcheck_params(model, X, before=reseed)


def test_mlp_dropout_on_hidden_layers_only() -> None:
    model = MLP(3, 2, [6, 5], "relu", layer_dropout=0.5, seed=7)
    assert [m.dropout for m in model.layers] == [0.5, 0.5, 0.0]
    model(X)
    assert model.layers[0].last_mask is not None and model.layers[2].last_mask is None
    model.eval()
    randomize_biases(model)
    npt.assert_allclose(model(X).data, mlp_by_hand(model, X)[1], rtol=1e-10)
    assert all(m.last_mask is None for m in model.layers)


def test_mlp_penalty_is_the_sum_over_layers() -> None:
    model = MLP(3, 2, [4], reg="l2", beta=0.5, seed=8)
    expected = sum(0.5 * (m.weight.data**2).sum() for m in model.layers)
    assert model.penalty().item() == pytest.approx(expected, rel=1e-12)
    assert MLP(3, 2, [4]).penalty().item() == 0.0


def test_mlp_layers_are_seeded_seed_plus_index() -> None:
    model = MLP(3, 2, [4, 5], "relu", seed=10)
    for i, layer in enumerate(model.layers):
        alone = Linear(layer.input_size, layer.output_size, "relu", seed=10 + i)
        npt.assert_array_equal(layer.weight.data, alone.weight.data)
    again = MLP(3, 2, [4, 5], "relu", seed=10)
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        npt.assert_array_equal(a.data, b.data)


def test_mlp_predict_returns_an_array_and_records_nothing() -> None:
    model = MLP(3, 2, [4], seed=11)
    out = model.predict(X)
    assert type(out) is np.ndarray and out.shape == (5, 2)
    out[...] = 0.0  # a copy: changing it changes nothing in the model
    assert model.predict(X).any()


def test_mlp_wrong_feature_count() -> None:
    with pytest.raises(ValueError, match=r"Linear\(3, 4.*\(2, 5\)"):
        MLP(3, 2, [4])(np.ones((2, 5)))


@pytest.mark.parametrize(
    ("kwargs", "argument", "value"),
    [
        ({"input_size": 0}, "input_size", "0"),
        ({"output_size": -2}, "output_size", "-2"),
        ({"hid_sizes": [4, 0]}, "hid_sizes[1]", "0"),
        ({"hid_sizes": 8}, "hid_sizes", "8"),
        ({"hid_sizes": "8"}, "hid_sizes", "'8'"),
        ({"activation": "gelu"}, "activation", "'gelu'"),
        ({"reg": "l0"}, "reg", "'l0'"),
        ({"beta": -0.5}, "beta", "-0.5"),
        ({"layer_dropout": 1.5}, "layer_dropout", "1.5"),
        ({"init": "zeros"}, "init", "'zeros'"),
    ],
)
def test_mlp_refuses_bad_arguments(kwargs: dict[str, Any], argument: str, value: str) -> None:
    args = {"input_size": 3, "output_size": 2, **kwargs}
    with pytest.raises(ValueError) as info:
        MLP(**args)
    message = str(info.value)
    assert argument in message and value in message, message


# --- seed 000's API -----------------------------------------------------------------------------


def test_seed_000_positional_call() -> None:
    model = MLP(2, 3, [8], "relu", True)
    assert [(m.input_size, m.output_size) for m in model.layers] == [(2, 8), (8, 3)]
    assert model.activation == "relu" and model.is_softmax
    out = model.forward(np.array([[0.5, -1.0], [2.0, 0.1]]))
    assert out.shape == (2, 3)
    npt.assert_allclose(out.data.sum(axis=1), [1.0, 1.0], rtol=1e-12)


def test_seed_000_keyword_call_with_every_name() -> None:
    model = MLP(
        input_size=2,
        output_size=3,
        hid_sizes=[8, 4],
        activation="sigmoid",
        is_softmax=False,
        reg="l2",
        beta=0.01,
        layer_dropout=0.1,
        use_bias=False,
        eval=False,
    )
    assert not model.training and all(not m.training for m in model.layers)
    assert all(m.bias is None for m in model.layers)
    assert [m.dropout for m in model.layers] == [0.1, 0.1, 0.0]
    assert all((m.regularisation, m.beta) == ("l2", 0.01) for m in model.layers)
    layer = Linear(
        input_size=2,
        output_size=3,
        activation="relu",
        use_bias=True,
        dropout=0.5,
        use_act=True,
        eval=True,
        regularisation="l1",
        beta=0.1,
    )
    assert layer(np.ones((4, 2))).shape == (4, 3)
