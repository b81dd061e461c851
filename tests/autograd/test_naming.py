"""autograd.naming: one name per node, the same in the graph picture, the player and the CLI."""

from __future__ import annotations

import re

import numpy as np
import pytest
from backproplab.autograd import Tensor, Value, naming
from backproplab.nn.losses import mse
from backproplab.viz import draw_graph, play

from backproplab import nn


def _neuron() -> Value:
    v = {k: Value(x, label=k) for k, x in {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0}.items()}
    b = Value(6.8813735870195432, label="b")
    return (v["x1"] * v["w1"] + v["x2"] * v["w2"] + b).tanh()


def test_computed_nodes_are_named_by_their_subexpression() -> None:
    root = _neuron()
    names = naming.names(root)
    assert [names[id(n)] for n in naming.walk(root)] == [
        "x1",
        "w1",
        "x1*w1",
        "x2",
        "w2",
        "x2*w2",
        "x1*w1 + x2*w2",
        "b",
        "x1*w1 + x2*w2 + b",
        "tanh(x1*w1 + x2*w2 + b)",
    ]


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda a, b: (a - b) * (a + b), "(a - b)*(a + b)"),
        (lambda a, b: a - (b - a), "a - (b - a)"),
        (lambda a, b: -(a * b), "-(a*b)"),
        (lambda a, b: a * 2.0 - 3.0, "a*2 - 3"),
        (lambda a, b: (a**2).exp() / b, "exp(a**2)/b"),
    ],
)
def test_brackets_only_where_needed(build: object, expected: str) -> None:
    a, b = Value(1.5, label="a"), Value(0.5, label="b")
    root = build(a, b)  # type: ignore[operator]
    assert naming.names(root)[id(root)] == expected


def test_past_the_width_operands_give_way_to_an_ellipsis() -> None:
    a, b = Value(1.0, label="alpha"), Value(2.0, label="beta")
    x = (a * b + b * a).exp() * (a * a + b).tanh()
    name = naming.names(x)[id(x)]
    assert len(name) <= naming.WIDTH
    assert name == "exp(…)*tanh(…)"
    assert not re.search(r"#\d", name)


def test_a_layers_node_is_named_by_its_layer_and_op() -> None:
    model = nn.MLP(2, 1, [3], "tanh", seed=0)
    loss = mse(model.forward(Tensor(np.ones((4, 2)))), np.zeros((4, 1)))
    names = naming.names(loss, model)
    texts = [names[id(n)] for n in naming.walk(loss)]
    assert "layers.0 · Dense" in texts and "layers.1 · Dense" in texts
    assert "layers.0.weight" in texts and "tensor 4×2" in texts
    assert not any(re.search(r"#\d", t) for t in texts)


def test_the_graph_and_the_player_call_every_node_alike() -> None:
    root = _neuron()
    root.backward()
    names = naming.names(root)
    trace = play(root).trace
    src = draw_graph(root).source
    for node, n in zip(trace["nodes"], naming.walk(root), strict=True):
        assert node["name"] == names[id(n)]
        assert f"{names[id(n)]} | data" in src or f"{{ {names[id(n)]} | data" in src


def test_a_bad_width_is_refused() -> None:
    with pytest.raises(ValueError, match="width must be an int >= 8"):
        naming.names(Value(1.0), width=3)
