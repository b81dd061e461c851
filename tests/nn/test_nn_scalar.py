"""nn.scalar: Neuron, Layer and MLP on Values, against hand formulas and central differences."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import TypeVar

import pytest
from backproplab.autograd import Value, no_grad, sum_values
from backproplab.nn.module import Module
from backproplab.nn.scalar import MLP, Layer, Neuron

M = TypeVar("M", bound=Module)

ACTIVATIONS = ["relu", "sigmoid", "tanh", "none", "linear"]

BY_HAND: dict[str, Callable[[float], float]] = {
    "relu": lambda z: max(z, 0.0),
    "sigmoid": lambda z: 1.0 / (1.0 + math.exp(-z)),
    "tanh": math.tanh,
    "none": lambda z: z,
    "linear": lambda z: z,
}


def _scalar_output(out: Value | list[Value]) -> Value:
    """One scalar from a module's output; fixed unequal weights so a swapped gradient shows."""
    if isinstance(out, Value):
        return out
    return sum_values([o * (0.5 + 0.75 * k) for k, o in enumerate(out)])


def check_gradients(module: Module, xs: Sequence[float], eps: float = 1e-6) -> None:
    """Compare the engine's gradient of every parameter and input with central differences."""
    inputs = [Value(x) for x in xs]
    _scalar_output(module(inputs)).backward()
    leaves = [*module.named_parameters(), *((f"input {i}", x) for i, x in enumerate(inputs))]

    def f() -> float:
        with no_grad():
            return _scalar_output(module(inputs)).data

    for name, leaf in leaves:
        saved = leaf.data
        leaf.data = saved + eps
        up = f()
        leaf.data = saved - eps
        down = f()
        leaf.data = saved
        numeric = (up - down) / (2 * eps)
        assert leaf.grad == pytest.approx(numeric, rel=1e-5, abs=1e-7), (
            f"{name}: engine {leaf.grad} vs numeric {numeric}"
        )


def pre_activations_clear_of_zero(module: Neuron | Layer | MLP, xs: Sequence[float]) -> bool:
    """True when no neuron's weighted sum is within 1e-3 of relu's kink (computed by hand)."""
    layers: list[list[Neuron]]
    if isinstance(module, Neuron):
        layers = [[module]]
    elif isinstance(module, Layer):
        layers = [module.neurons]
    else:
        layers = [layer.neurons for layer in module.layers]
    x = list(xs)
    for neurons in layers:
        zs = [sum(w.data * v for w, v in zip(n.w, x, strict=True)) + n.b.data for n in neurons]
        if any(abs(z) <= 1e-3 for z in zs):
            return False
        x = [BY_HAND[n.activation](z) for n, z in zip(neurons, zs, strict=True)]
    return True


def _with_bias(module: M) -> M:
    # Non-zero biases, so a bias gradient wrongly taken as zero, or a bias dropped, shows.
    for name, p in module.named_parameters():
        if name.endswith("b"):
            p.data = random.uniform(-0.5, 0.5)
    return module


# --- forward against hand formulas ----------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_neuron_forward_by_hand(activation: str) -> None:
    random.seed(3)
    n = Neuron(3, activation)
    n.b.data = 0.25
    xs = [0.5, -1.5, 2.0]
    z = sum(w.data * x for w, x in zip(n.w, xs, strict=True)) + 0.25
    assert n(xs).data == pytest.approx(BY_HAND[activation](z), rel=1e-12)
    assert n([Value(x) for x in xs]).data == pytest.approx(BY_HAND[activation](z), rel=1e-12)


def test_mlp_forward_by_hand() -> None:
    random.seed(4)
    m = MLP(2, [3, 2], activation="tanh", output_activation="sigmoid")
    x = [0.3, -0.7]
    hidden = [
        math.tanh(sum(w.data * v for w, v in zip(n.w, x, strict=True)) + n.b.data)
        for n in m.layers[0].neurons
    ]
    expected = [
        BY_HAND["sigmoid"](sum(w.data * v for w, v in zip(n.w, hidden, strict=True)) + n.b.data)
        for n in m.layers[1].neurons
    ]
    out = m(x)
    assert isinstance(out, list)
    assert [o.data for o in out] == pytest.approx(expected, rel=1e-12)


# --- gradients against central differences --------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_neuron_gradients(activation: str) -> None:
    random.seed(10)
    n = _with_bias(Neuron(4, activation))
    xs = [0.7, -0.4, 1.3, -0.9]
    assert pre_activations_clear_of_zero(n, xs)
    check_gradients(n, xs)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_layer_gradients(activation: str) -> None:
    random.seed(11)
    layer = _with_bias(Layer(3, 4, activation))
    xs = [0.6, -1.1, 0.35]
    assert pre_activations_clear_of_zero(layer, xs)
    check_gradients(layer, xs)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_gradients(activation: str) -> None:
    random.seed(12)
    m = _with_bias(MLP(3, [5, 4, 2], activation=activation, output_activation=activation))
    xs = [0.8, -0.3, 1.2]
    assert pre_activations_clear_of_zero(m, xs)
    check_gradients(m, xs)


def test_mlp_gradients_mixed_activations() -> None:
    random.seed(13)
    m = _with_bias(MLP(2, [4, 3, 1], activation=["tanh", "relu", "sigmoid"]))
    xs = [0.45, -0.65]
    assert pre_activations_clear_of_zero(m, xs)
    check_gradients(m, xs)


def test_relu_kills_the_gradient_of_an_inactive_neuron() -> None:
    n = Neuron(2, "relu", init="zeros")
    n.b.data = -1.0
    n([1.0, 2.0]).backward()
    assert [w.grad for w in n.w] == [0.0, 0.0] and n.b.grad == 0.0


# --- structure, names, labels ---------------------------------------------------------------------


def test_mlp_parameter_names_and_count() -> None:
    m = MLP(2, [16, 16, 1])
    names = [name for name, _ in m.named_parameters()]
    assert len(names) == 337 == (2 + 1) * 16 + (16 + 1) * 16 + (16 + 1) * 1
    assert len(set(names)) == 337
    assert names[:4] == [
        "layers.0.neurons.0.w.0",
        "layers.0.neurons.0.w.1",
        "layers.0.neurons.0.b",
        "layers.0.neurons.1.w.0",
    ]
    assert names[-2:] == ["layers.2.neurons.0.w.15", "layers.2.neurons.0.b"]
    assert len(m.parameters()) == 337


def test_labels_for_graph_pictures() -> None:
    n = Neuron(3)
    assert [w.label for w in n.w] == ["w0", "w1", "w2"]
    assert n.b.label == "b"


def test_layer_output_shape_follows_micrograd() -> None:
    assert isinstance(Layer(2, 1)([1.0, 2.0]), Value)
    out = Layer(2, 3)([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 3
    assert isinstance(MLP(2, [3, 1])([1.0, 2.0]), Value)
    assert len(MLP(2, [3, 2])([1.0, 2.0])) == 2


def test_hidden_layer_of_width_one() -> None:
    random.seed(5)
    m = MLP(2, [1, 1], activation="tanh")
    h = m.layers[0].neurons[0]
    o = m.layers[1].neurons[0]
    hidden = math.tanh(h.w[0].data * 0.5 + h.w[1].data * 0.25)
    assert m([0.5, 0.25]).data == pytest.approx(o.w[0].data * hidden, rel=1e-12)


def test_activation_per_layer() -> None:
    m = MLP(2, [3, 3, 1], activation="tanh")
    assert m.activations == ["tanh", "tanh", "none"]
    m = MLP(2, [3, 1], activation="relu", output_activation="sigmoid")
    assert [n.activation for layer in m.layers for n in layer.neurons][-1] == "sigmoid"
    m = MLP(2, [3, 1], activation=["sigmoid", "tanh"], output_activation="relu")
    assert m.activations == ["sigmoid", "tanh"]  # the list wins over output_activation


def test_zero_grad() -> None:
    m = MLP(2, [3, 1])
    m([1.0, -1.0]).backward()
    assert any(p.grad != 0.0 for p in m.parameters())
    m.zero_grad()
    assert all(p.grad == 0.0 for p in m.parameters())


def test_state_dict_round_trip() -> None:
    a, b = MLP(2, [3, 1]), MLP(2, [3, 1])
    b.load_state_dict(a.state_dict())
    assert [p.data for p in b.parameters()] == [p.data for p in a.parameters()]


# --- inits ----------------------------------------------------------------------------------------


def test_seed001_init_reproduces_seed_001s_draws() -> None:
    random.seed(0)
    expected = [random.random() - 0.5 for _ in range(2 * 4 + 4)]
    assert expected[0] == 0.8444218515250481 - 0.5
    m = MLP(2, [4, 1], activation=["sigmoid", "sigmoid"], init="seed001", seed=0)
    weights = [p.data for name, p in m.named_parameters() if not name.endswith("b")]
    biases = [p.data for name, p in m.named_parameters() if name.endswith("b")]
    assert weights == expected  # layer by layer, neuron by neuron, weights in input order
    assert biases == [0.0] * 5
    assert f"{m([0, 0]).data:.4f}" == "0.5588"  # seed 001: "0.55..."


def test_uniform_init_is_micrographs() -> None:
    random.seed(42)
    expected = [random.uniform(-1, 1) for _ in range(3)]
    n = Neuron(3, seed=42)
    assert [w.data for w in n.w] == expected
    assert n.b.data == 0.0


def test_zeros_init_draws_nothing() -> None:
    random.seed(7)
    expected = random.random()
    random.seed(7)
    m = MLP(3, [2, 1], init="zeros")
    assert all(p.data == 0.0 for p in m.parameters())
    assert random.random() == expected


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("nin", [0, -1, 2.5, True, "2"])
def test_bad_nin(nin: object) -> None:
    for make in (lambda: Neuron(nin), lambda: Layer(nin, 2), lambda: MLP(nin, [2])):  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"nin must be a positive int, got"):
            make()


def test_bad_widths() -> None:
    with pytest.raises(ValueError, match=r"nout must be a positive int, got 0"):
        Layer(2, 0)
    with pytest.raises(ValueError, match=r"nouts must be a non-empty list.*\[\]"):
        MLP(2, [])
    with pytest.raises(ValueError, match=r"nouts must be"):
        MLP(2, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"nouts\[1\] must be a positive int, got 0"):
        MLP(2, [3, 0, 1])


def test_bad_activation_and_init() -> None:
    with pytest.raises(ValueError, match=r"unknown activation 'softmax'"):
        Neuron(2, "softmax")
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'"):
        MLP(2, [3, 1], activation="gelu")
    with pytest.raises(ValueError, match=r"unknown output_activation 'soft'"):
        MLP(2, [3, 1], output_activation="soft")
    with pytest.raises(ValueError, match=r"unknown activation\[1\] 'x'"):
        MLP(2, [3, 1], activation=["tanh", "x"])
    with pytest.raises(ValueError, match=r"activation lists 1 activations \['tanh'\] for 2 layers"):
        MLP(2, [3, 1], activation=["tanh"])
    with pytest.raises(ValueError, match=r"unknown init 'normal'"):
        Neuron(2, init="normal")
    with pytest.raises(ValueError, match=r"unknown init 'he'"):
        MLP(2, [3, 1], init="he")


def test_wrong_input_length() -> None:
    with pytest.raises(ValueError, match=r"Neuron takes 2 inputs \(nin\), got 3"):
        Neuron(2)([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"Layer takes 3 inputs \(nin\), got 2"):
        Layer(3, 2)([1.0, 2.0])
    with pytest.raises(ValueError, match=r"MLP takes 2 inputs \(nin\), got 1"):
        MLP(2, [3, 1])([1.0])
    with pytest.raises(ValueError, match=r"MLP takes a sequence of 2 inputs"):
        MLP(2, [3, 1])(1.0)  # type: ignore[arg-type]
