"""viz.graph: the DOT source of computation graphs, rendering with and without Graphviz's dot."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import backproplab.nn as nn
import graphviz
import numpy as np
import pytest
from backproplab.autograd import GradientReport, Tensor, Value, compare_gradients
from backproplab.nn.scalar import MLP as ScalarMLP
from backproplab.viz.graph import DOT_HINT, STYLES, draw_graph, render

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot is not installed")
SVG = "{http://www.w3.org/2000/svg}"


def classic_neuron() -> tuple[Value, dict[str, Value]]:
    """tanh(x1*w1 + x2*w2 + b), the neuron of micrograd's lecture, after backward()."""
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.label = "o"
    o.backward()
    return o, {"x1": x1, "x2": x2, "w1": w1, "w2": w2, "b": b}


def node_line(source: str, label_part: str) -> str:
    """The one DOT line declaring the node whose label contains label_part."""
    lines = [ln for ln in source.splitlines() if "label=" in ln and label_part in ln]
    if len(lines) > 1:  # "w1 |" is in "x1*w1 | ..." too: prefer the label that starts with it
        lines = [ln for ln in lines if re.search(r'label="(\{ )?' + re.escape(label_part), ln)]
    assert len(lines) == 1, lines
    return lines[0]


def node_id(line: str) -> str:
    return line.split()[0]


def cluster_body(source: str, name: str) -> str:
    match = re.search(rf"subgraph {name} {{\n(.*?)\n\t}}", source, re.S)
    assert match, f"no {name} in the source"
    return match.group(1)


def cluster_names(source: str) -> list[str]:
    return re.findall(r"subgraph (cluster_\w+) \{", source)


def styled(line: str, kind: str) -> bool:
    return all(f"{k}={v}" in line or f'{k}="{v}"' in line for k, v in STYLES[kind].items())


# -- Values -------------------------------------------------------------------------------------


def test_classic_neuron_shows_output_and_gradients_to_4_significant_digits() -> None:
    o, _ = classic_neuron()
    src = draw_graph(o).source
    assert "{ o | data 0.7071 | grad 1 }" in src
    assert "{ x1 | data 2 | grad -1.5 }" in src
    assert "{ w1 | data -3 | grad 1 }" in src
    assert "{ b | data 6.881 | grad 0.5 }" in src  # 6.8813735870195432 to 4 digits
    assert "data 6.88137 " in draw_graph(o, decimals=6).source


def test_op_nodes_sit_between_inputs_and_result() -> None:
    o, _ = classic_neuron()
    src = draw_graph(o).source
    x1, w1 = node_id(node_line(src, "x1 |")), node_id(node_line(src, "w1 |"))
    mul = re.search(rf"{x1} -> (\w+)\n", src)
    assert mul is not None
    op = mul.group(1)
    assert f"{w1} -> {op}" in src
    assert re.search(rf'{op} \[label="\*".*tooltip=Mul', src)
    result = re.search(rf"{op} -> (\w+)\n", src)
    assert result is not None and "data -6" in node_line(src, f"{result.group(1)} [label")
    assert src.count('label="+"') == 2 and src.count("label=Tanh") == 1
    assert src.count("shape=ellipse") == 5 + 1  # four ops and Tanh, and the legend's op


def test_parameters_inputs_and_root_look_different() -> None:
    w = Value(0.5, label="w")
    x = Value.constant(3.0, label="x")
    y = (w * x + 1.0).relu()  # 1.0 is the "+1" op's param, not a node of its own
    y.label = "y"
    y.backward()
    src = draw_graph(y).source
    assert styled(node_line(src, "w | data 0.5 | grad 3"), "parameter")
    assert styled(node_line(src, "{ x | data 3 }"), "input")  # a constant shows no grad
    assert "{ data 1 }" not in src and '"+1"' in src
    assert styled(node_line(src, "y | data 2.5 | grad 1"), "root")
    assert styled(node_line(src, "{ w*x + 1 | data 2.5 | grad 1 }"), "computed")
    legend = cluster_body(src, "cluster_legend")
    for kind in ("parameter", "input", "root", "computed", "op"):
        assert f"legend_{kind} " in legend
    assert "legend_constant" not in legend  # the 1 is the op's param, not a node
    assert "legend_agrees" not in legend  # only what the picture uses is explained


def test_legend_false_draws_none() -> None:
    o, _ = classic_neuron()
    assert "legend" not in draw_graph(o, legend=False).source


def test_op_symbols() -> None:
    a, b = Value(3.0, label="a"), Value(2.0, label="b")
    out = (a - b) / (-a) + a**2 + a**b + a.exp()
    src = draw_graph(out).source
    for label in ('"-"', '"/"', "neg", '"**2"', '"**"', "Exp"):
        assert f"label={label} " in src, label
    assert 'tooltip="Pow(a, b)"' in src and 'tooltip="Pow (2.0)"' in src


def test_a_node_used_twice_has_two_edges() -> None:
    a = Value(3.0, label="a")
    s = a + a
    src = draw_graph(s).source
    assert src.count(f"{node_id(node_line(src, 'a |'))} -> n1_op") == 2


def test_rankdir_and_size() -> None:
    o, _ = classic_neuron()
    src = draw_graph(o, rankdir="TB", size="8,5").source
    assert "rankdir=TB" in src and 'size="8,5"' in src
    # In TB a record's top-level fields already run across: no braces needed.
    assert '"x1 | data 2 | grad -1.5"' in src
    assert 'size="8,5"' in draw_graph(o, size=(8, 5)).source
    with pytest.raises(ValueError, match="rankdir must be 'LR' or 'TB', got 'RL'"):
        draw_graph(o, rankdir="RL")


@pytest.mark.parametrize(
    "size",
    [
        (8,),
        ("8", "5"),
        8,
        (8, 5, 3),
        (float("nan"), 5),
        (-1, 5),
        (0, 5),
        (True, 5),
        "eight",
        "-8,5",
    ],
)
def test_a_size_that_is_no_drawing_size_is_refused_by_name(size: object) -> None:
    o, _ = classic_neuron()
    with pytest.raises(ValueError) as e:
        draw_graph(o, size=size)  # type: ignore[arg-type]
    assert str(e.value) == (
        'size must be the largest drawing in inches, as "W,H" or (W, H) with W and H positive '
        f"numbers, got {size!r}"
    )


@pytest.mark.parametrize(
    ("size", "attribute"),
    [("8,5", "8,5"), ("8,5!", "8,5!"), ("7.5", "7.5"), ((7.5, 10), "7.5,10"), ([4, 3], "4,3")],
)
def test_graphviz_sizes_are_taken(size: object, attribute: str) -> None:
    o, _ = classic_neuron()
    assert draw_graph(o, size=size).graph_attr["size"] == attribute  # type: ignore[arg-type]


def test_labels_are_escaped_for_records() -> None:
    v = Value(1.0, label='a|b{c}<d> "q"')
    src = draw_graph(v * 2).source
    assert r'label="{ a\|b\{c\}\<d\> \"q\" | data 1 | grad 0 }"' in src


def test_a_leaf_root_and_a_recorded_gradient() -> None:
    assert "data 4 | grad 0" in draw_graph(Value(4.0)).source
    x = Value(3.0, label="x")
    (x * x).backward(create_graph=True)  # x.grad is a Value now
    assert "x | data 3 | grad 6" in draw_graph(x * 1.0).source


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="Value or a Tensor"):
        draw_graph(3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="decimals"):
        draw_graph(Value(1.0), decimals=0)
    with pytest.raises(TypeError, match=r"nn\.Module"):
        draw_graph(Value(1.0), model=object())


# -- Tensors ------------------------------------------------------------------------------------


def test_tensor_nodes_show_name_shape_dtype_and_summaries() -> None:
    rng = np.random.default_rng(0)
    X = Tensor(rng.normal(size=(8, 3)), name="X")
    W = Tensor(rng.normal(size=(3, 4)).astype(np.float32), requires_grad=True, name="W")
    b = Tensor([0.5, -1.0, 2.0, 0.125], requires_grad=True, name="b")
    loss = ((X @ W + b).tanh() ** 2).mean()
    loss.backward()
    src = draw_graph(loss).source
    x_line = node_line(src, "X | 8×3 float64")
    assert styled(x_line, "input")
    assert f"data norm {np.linalg.norm(X.data):.4g} min {X.data.min():.4g}" in x_line
    assert "grad" not in x_line  # data needs no gradient
    assert styled(node_line(src, "W | 3×4 float32"), "parameter")
    b_line = node_line(src, "b | 4 float64")
    assert "data [0.5, -1, 2, 0.125]" in b_line  # six elements or fewer: the values themselves
    assert f"grad [{b.grad[0]:.4g}, " in b_line
    root = node_line(src, f"scalar float64 | data {loss.data:.4g} | grad 1")
    assert styled(root, "root") and f"data {loss.data:.4g}" in root
    assert '"X @ W | 8×4 float64' in src  # a computed node: the subexpression that made it
    longer = draw_graph((loss + 1.0).tanh()).source  # past EXPRESSION_WIDTH: an ellipsis
    assert "tanh(sum(…)*0.03125 + 1) | scalar float64" in longer
    assert not re.search(r"\bt\d+ \| ", longer)  # never a made-up id
    assert 'label="@"' in src and "label=Tanh" in src and "label=Sum" in src
    assert "rankdir=LR" in src and '"X | 8×3 float64' in src  # a Tensor record is a column
    assert '"{ X | 8×3 float64' in draw_graph(loss, "TB").source  # in either direction


def test_tensor_without_backward_says_so() -> None:
    w = Tensor(np.ones((2, 2)), requires_grad=True, name="w")
    src = draw_graph((w * 2.0).sum()).source
    assert "w | 2×2 float64 | data [[1, 1], [1, 1]] | grad none" in src


# -- size limit and depth -----------------------------------------------------------------------


def test_a_graph_over_max_nodes_is_refused_with_the_count_and_ways_out() -> None:
    x = Value(0.1, label="x")
    y = x
    for _ in range(30):
        y = y * 1.01  # 1.01 is a param of the op: one value and one op per step
    with pytest.raises(ValueError) as e:
        draw_graph(y, max_nodes=50)
    msg = str(e.value)
    assert "the graph has 61 nodes (31 values and 30 ops), more than max_nodes=50" in msg
    assert "model=" in msg and "Tensors instead of scalar Values" in msg and "smaller" in msg
    draw_graph(y, max_nodes=61)


def test_a_5000_deep_chain_draws_without_recursion() -> None:
    x = Value(0.5, label="x")
    y = x
    for _ in range(5000):
        y = y.tanh()
    assert sys.getrecursionlimit() < 5000
    src = draw_graph(y, max_nodes=10_001).source
    assert src.count("label=Tanh") == 5000
    assert 'n0 [label="{ x | data 0.5' in src and "n5000 [" in src


# -- model clusters -----------------------------------------------------------------------------


def test_mlp_graph_has_one_cluster_per_layer() -> None:
    model = nn.MLP(2, 3, [4, 5], "tanh", True)
    x = Tensor(np.random.default_rng(1).normal(size=(6, 2)), name="x")
    loss = model(x).log().mean()
    loss.backward()
    src = draw_graph(loss, model=model).source
    assert cluster_names(src) == [
        "cluster_layers_0",
        "cluster_layers_1",
        "cluster_layers_2",
        "cluster_legend",
    ]
    for i, (fan_in, fan_out) in enumerate([(2, 4), (4, 5), (5, 3)]):
        body = cluster_body(src, f"cluster_layers_{i}")
        assert f'label="layers.{i}"' in body
        assert f'"weight | {fan_in}×{fan_out} float64' in body
        assert f'"bias | {fan_out} float64' in body
        assert body.count("[label=") == 2  # the parameters, nothing else


def test_scalar_mlp_groups_every_neuron_of_a_layer_in_its_cluster() -> None:
    random.seed(0)
    model = ScalarMLP(2, [3, 1], "tanh")
    out = model([1.0, -2.0])
    out.backward()
    src = draw_graph(out, model=model).source
    assert cluster_names(src) == ["cluster_layers_0", "cluster_layers_1", "cluster_legend"]
    first = cluster_body(src, "cluster_layers_0")
    assert first.count("[label=") == 3 * (2 + 1)  # three neurons, two weights and a bias each
    for j in range(3):
        assert f"neurons.{j}.w.0 | data" in first and f"neurons.{j}.b | data" in first
    assert cluster_body(src, "cluster_layers_1").count("[label=") == 3 + 1
    w = model.layers[0].neurons[1].w[0]
    assert f"neurons.1.w.0 | data {w.data:.4g} | grad {w.grad:.4g}" in first


def test_a_model_without_submodules_is_one_cluster() -> None:
    layer = nn.Linear(3, 2, "tanh")
    out = layer(np.ones((1, 3))).sum()
    src = draw_graph(out, model=layer, legend=False).source
    assert cluster_names(src) == ["cluster_model"]
    assert "label=Linear" in cluster_body(src, "cluster_model")


def test_a_wrapper_module_is_looked_through() -> None:
    class Wrapper(nn.Module):
        def __init__(self) -> None:
            self.net = nn.MLP(2, 1, [3])

        def forward(self, x: np.ndarray) -> Tensor:
            return self.net(x)

    model = Wrapper()
    src = draw_graph(model(np.ones((1, 2))).sum(), model=model, legend=False).source
    assert cluster_names(src) == ["cluster_net_layers_0", "cluster_net_layers_1"]
    assert 'label="net.layers.1"' in cluster_body(src, "cluster_net_layers_1")


# -- manual vs automatic overlay ----------------------------------------------------------------


def test_hand_gradients_by_name_red_where_they_disagree_green_where_they_agree() -> None:
    random.seed(0)
    model = ScalarMLP(2, [2, 1], "tanh")
    out = model([1.0, -2.0])
    out.backward()
    w = model.layers[0].neurons[0].w[0]
    bias = model.layers[1].neurons[0].b
    hand = {"layers.0.neurons.0.w.0": w.grad * (1 + 1e-9), "layers.1.neurons.0.b": 0.3}
    src = draw_graph(out, model=model, gradients=hand).source
    good = node_line(src, f"neurons.0.w.0 | data {w.data:.4g}")
    assert "layers_0" in cluster_names(src)[0] and styled(good, "agrees")
    assert f"hand {w.grad:.4g} = auto" in good
    bad = node_line(src, "neurons.0.b | data 0 | grad 1")
    assert styled(bad, "disagrees") and "hand 0.3 ≠ auto 1" in bad
    assert bias.grad == 1.0
    legend = cluster_body(src, "cluster_legend")
    assert "legend_agrees" in legend and "legend_disagrees" in legend


def test_hand_gradients_by_node_without_a_model() -> None:
    o, v = classic_neuron()
    src = draw_graph(o, gradients={v["x1"]: -1.5, v["w1"]: 2.0}).source
    assert styled(node_line(src, "x1 |"), "agrees")
    w1 = node_line(src, "w1 |")
    assert styled(w1, "disagrees") and "hand 2 ≠ auto 1" in w1
    # by label, when a label names one leaf
    assert "hand 2 ≠ auto 1" in draw_graph(o, gradients={"w1": 2.0}).source


def test_gradient_report_overlay_on_tensors() -> None:
    layer = nn.Linear(3, 2, "tanh")
    X = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 0.25]])
    loss = ((layer(X)) ** 2).sum()
    loss.backward()

    def f(weight: Tensor, bias: Tensor) -> Tensor:
        return ((Tensor(X) @ weight + bias).tanh() ** 2).sum()

    def by_hand(weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = np.tanh(X @ weight + bias)
        dz = 2 * y  # forgot tanh's derivative
        return X.T @ dz, (2 * y * (1 - y**2)).sum(axis=0)

    report = compare_gradients(
        f, by_hand, layer.weight.data, layer.bias.data, names=["weight", "bias"]
    )
    assert report.failures == ["weight"]
    src = draw_graph(loss, model=layer, gradients=report).source
    c = report.rows[0].manual
    assert c is not None
    weight = node_line(src, "weight | 3×2 float64")
    assert styled(weight, "disagrees")
    assert f"hand {c.a_worst:.4g} ≠ auto {c.b_worst:.4g} at {list(c.worst)}" in weight
    bias = node_line(src, "bias | 2 float64")
    assert styled(bias, "agrees") and "hand = auto (max \\|diff\\|" in bias


def test_a_report_row_that_could_not_compare_is_red_with_its_reason() -> None:
    # A row with a `problem` (the checker's: no hand gradient, a wrong shape) and no comparison.
    o, _ = classic_neuron()
    row = SimpleNamespace(name="w2", shape=(), manual=None, numeric=None, problem="no gradient")
    src = draw_graph(o, gradients=GradientReport([row])).source  # type: ignore[list-item]
    w2 = node_line(src, "w2 |")
    assert styled(w2, "disagrees") and "hand: no gradient" in w2


def test_overlay_mistakes_are_named() -> None:
    o, _ = classic_neuron()
    with pytest.raises(ValueError, match=r"'w9'.*neither a parameter"):
        draw_graph(o, gradients={"w9": 1.0})
    w = Tensor(np.ones(3), requires_grad=True, name="w")
    (w * w).sum().backward()
    with pytest.raises(ValueError, match=r"hand gradient for w has shape \(2,\)"):
        draw_graph((w * 1.0).sum(), gradients={w: np.ones(2)})
    with pytest.raises(ValueError, match="not in this graph"):
        draw_graph(o, gradients={Value(1.0): 1.0})


# -- render -------------------------------------------------------------------------------------


def test_render_without_dot_writes_the_source_and_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no dot to be found
    o, _ = classic_neuron()
    g = draw_graph(o)
    written = render(g, tmp_path / "out" / "neuron.svg")
    assert written == tmp_path / "out" / "neuron.gv"
    assert written.read_text(encoding="utf-8") == g.source
    assert not (tmp_path / "out" / "neuron.svg").exists()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert f"install it with '{DOT_HINT}'" in captured.err and str(written) in captured.err
    render(g, tmp_path / "again.png", quiet=True)
    assert capsys.readouterr().err == ""


def test_render_refuses_an_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown suffix '\.jpg'"):
        render(draw_graph(Value(1.0)), tmp_path / "x.jpg")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_dot_is_one_runtime_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = draw_graph(Value(1.0))

    def broken(*args: object, **kwargs: object) -> bytes:
        raise graphviz.CalledProcessError(1, ["dot"], b"", b"Error: <stdin>: syntax error")

    monkeypatch.setattr(g, "pipe", broken)
    with pytest.raises(RuntimeError, match=r"dot could not render .*: Error: <stdin>: syntax"):
        render(g, tmp_path / "x.svg")
    assert (tmp_path / "x.gv").is_file()


def test_render_gv_writes_the_source_alone(tmp_path: Path) -> None:
    g = draw_graph(Value(1.0))
    assert render(g, tmp_path / "g.gv").read_text(encoding="utf-8") == g.source


@needs_dot
def test_render_svg_png_pdf(tmp_path: Path) -> None:
    o, _ = classic_neuron()
    g = draw_graph(o)
    svg = render(g, tmp_path / "neuron.svg")
    assert svg == tmp_path / "neuron.svg" and (tmp_path / "neuron.gv").is_file()
    root = ET.parse(svg).getroot()
    assert root.tag == f"{SVG}svg"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "data 0.7071" in texts and "grad -1.5" in texts and "Tanh" in texts
    titles = {t.text for t in root.iter(f"{SVG}title")}
    assert {"n0", "n9_op"} <= titles
    assert render(g, tmp_path / "neuron.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert render(g, tmp_path / "neuron.pdf").read_bytes()[:5] == b"%PDF-"


@needs_dot
def test_jupyter_display_for_both_node_kinds() -> None:
    o, _ = classic_neuron()
    w = Tensor(np.ones((8, 4)), requires_grad=True, name="W")
    t = (Tensor(np.ones((2, 8))) @ w).sum()
    t.backward()
    for g, expected in ((draw_graph(o), "data 0.7071"), (draw_graph(t), "8×4 float64")):
        bundle = g._repr_mimebundle_()
        root = ET.fromstring(bundle["image/svg+xml"])
        assert expected in [x.text for x in root.iter(f"{SVG}text")]


def test_autograd_and_nn_import_without_graphviz() -> None:
    code = (
        "import sys; sys.modules['graphviz'] = None\n"
        "import backproplab, backproplab.nn, backproplab.viz as viz\n"
        "assert 'backproplab.viz.graph' not in sys.modules\n"
        "try:\n    viz.draw_graph\nexcept ImportError:\n    pass\n"
        "else:\n    raise SystemExit('viz.draw_graph imported without graphviz')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- names a learner reads ---------------------------------------------------------------------


def test_computed_nodes_are_named_by_their_subexpression() -> None:
    o, _ = classic_neuron()
    src = draw_graph(o).source
    for text in (
        "x1*w1 | data -6",
        "x2*w2 | data 0",
        "x1*w1 + x2*w2 | data -6",
        "x1*w1 + x2*w2 + b",
    ):
        assert f'"{{ {text}' in src, text
    assert "{ o | data 0.7071" in src  # a label of its own wins


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda a, b, c: a - (b - c), "a - (b - c)"),
        (lambda a, b, c: (a - b) - c, "a - b - c"),
        (lambda a, b, c: a / (b * c), "a/(b*c)"),
        (lambda a, b, c: a * (b + c), "a*(b + c)"),
        (lambda a, b, c: (-a) ** 2, "(-a)**2"),
        (lambda a, b, c: -(a**2), "-a**2"),
        (lambda a, b, c: a ** (b**c), "a**b**c"),
        (lambda a, b, c: (a**b) ** c, "(a**b)**c"),
        (lambda a, b, c: (2 * a).exp(), "exp(a*2)"),  # a number operand is MulNumber's param
        (lambda a, b, c: a * -2.5, "a*(-2.5)"),
    ],
)
def test_subexpressions_keep_the_brackets_they_need(build: object, expected: str) -> None:
    a, b, c = Value(1.5, label="a"), Value(0.5, label="b"), Value(2.0, label="c")
    root = build(a, b, c)  # type: ignore[operator]
    assert f'"{{ {expected} | data' in draw_graph(root).source


def test_a_long_subexpression_is_shortened_with_an_ellipsis() -> None:
    xs = [Value(float(i), label=f"input{i}") for i in range(6)]
    total = xs[0] * xs[1] + xs[2] * xs[3] + xs[4] * xs[5]
    src = draw_graph(total).source
    assert "input4*input5 |" in src
    assert "… + input4*input5 |" in src  # past EXPRESSION_WIDTH, its longest operand gives way
    assert "input0*input1 + input2*input3 + input4*input5" not in src


def test_inputs_are_drawn_as_inputs_with_their_gradient() -> None:
    o, leaves = classic_neuron()
    src = draw_graph(o, inputs=[leaves["x1"], leaves["x2"]]).source
    assert styled(node_line(src, "x1 | data 2 | grad -1.5"), "input")
    assert styled(node_line(src, "x2 | data 0 | grad 0.5"), "input")
    assert styled(node_line(src, "w1 | data -3 | grad 1"), "parameter")
    assert "legend_input " in cluster_body(src, "cluster_legend")


def test_never_minus_zero() -> None:
    x = Value(-0.0, label="x")
    w = Value(2.0, label="w")
    y = x * w
    y.backward()
    src = draw_graph(y).source
    assert "-0 " not in src and "-0 }" not in src and "-0," not in src
    assert "{ x | data 0 | grad 2 }" in src and "{ x*w | data 0 | grad 1 }" in src
    t = Tensor([-0.0, 1.0], requires_grad=True, name="t")
    (t * -0.0).sum().backward()
    src = draw_graph(t * 1.0).source
    assert "[0, 1]" in src and "-0" not in src


def test_a_networks_input_and_target_are_named_x_and_y() -> None:
    model = nn.MLP(2, 1, [3], "tanh", seed=0)
    loss = nn.mse(model(np.ones((4, 2))), np.zeros((4, 1)))
    loss.backward()
    src = draw_graph(loss, model=model).source
    assert '"x | 4×2 float64' in src and '"y | 4×1 float64' in src
    assert not re.search(r'"t\d+ \| 4×2', src)


def test_an_op_with_a_number_argument_is_written_with_the_number() -> None:
    # The engine records x * 2 as MulNumber(x) with 2 as the op's param, not as a leaf.
    x = Value(1.5, label="x")
    y = x * 2 - 3  # MulNumber(x; 2), then AddNumber(...; -3): numbers are the ops' params
    src = draw_graph(y).source
    assert '"{ x*2 | data 3' in src and '"{ x*2 - 3 | data 0' in src


def test_the_inline_svg_fits_the_notebook_cell() -> None:
    # a graph far wider than a notebook cell: shown at 100% of the cell's width, at most its own
    xs = [Value(float(i), label=f"x{i}") for i in range(40)]
    y = xs[0]
    for x in xs[1:]:
        y = (y * x).tanh()
    svg = draw_graph(y)._repr_mimebundle_()["image/svg+xml"]
    root = re.search(r"<svg\b[^>]*>", svg)
    assert root is not None
    tag = root.group(0)
    assert 'width="100%"' in tag and "height: auto" in tag
    assert re.search(r"max-width: \d+pt", tag)
    assert "viewBox=" in tag and 'height="' not in tag
