"""viz.player: the trace's numbers against the engine, central differences and hand formulas;
the learner's manual gradients; the page file; ``backproplab play``."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backproplab.autograd import Tensor, Value, parse
from backproplab.autograd.parse import expression_names
from backproplab.nn.losses import mse
from backproplab.viz import cmd_demo
from backproplab.viz.cli import main
from backproplab.viz.player import MANUAL_RTOL, Page, play
from hypothesis import given
from hypothesis import strategies as st

from backproplab import nn

NEURON_VALUES = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}


def neuron(**labels: str) -> tuple[Value, dict[str, Value]]:
    """micrograd's neuron; ``labels`` names intermediate nodes: x1w1, n (before tanh)."""
    leaves = {k: Value(v, label=k) for k, v in NEURON_VALUES.items()}
    x1w1 = leaves["x1"] * leaves["w1"]
    x1w1.label = labels.get("x1w1", "")
    n = x1w1 + leaves["x2"] * leaves["w2"] + leaves["b"]
    n.label = labels.get("n", "")
    o = n.tanh()
    o.label = "o"
    return o, leaves


def page_trace(page: Page) -> dict[str, Any]:
    """The trace as a reader of the HTML file finds it."""
    m = re.search(
        r'<script type="application/json" id="backprop-trace">(.*?)</script>', page.html, re.S
    )
    assert m is not None
    return json.loads(m.group(1))  # type: ignore[no-any-return]


def by_label(trace: dict[str, Any], label: str) -> dict[str, Any]:
    (node,) = [n for n in trace["nodes"] if n["label"] == label]
    return node


def central(f: Callable[[dict[str, float]], float], at: dict[str, float], name: str) -> float:
    h = 1e-6
    up, down = dict(at), dict(at)
    up[name] += h
    down[name] -= h
    return (f(up) - f(down)) / (2 * h)


# -- the trace's numbers -------------------------------------------------------------------------


EXPRESSIONS = [
    ("a * a", {"a": 3.0}),
    # a feeds three nodes
    ("tanh(a) + a * b + exp(a)", {"a": 0.7, "b": -1.3}),
    ("x * y + x / y + tanh(x) - x ** 3", {"x": 0.4, "y": 1.7}),
    ("sigmoid(x * y) * relu(x) + abs(y) + log(x * x + 1) + sqrt(y)", {"x": 0.9, "y": 2.5}),
    ("(a + a) * (a + a) + a ** b", {"a": 1.3, "b": 0.6}),
]


@pytest.mark.parametrize(("text", "at"), EXPRESSIONS)
def test_trace_gradients_match_the_engine_and_central_differences(
    text: str, at: dict[str, float]
) -> None:
    leaves = {k: Value(v, label=k) for k, v in at.items()}
    root = parse(text, **leaves)
    trace = page_trace(play(root))  # no backward() yet: play runs it
    for name, leaf in leaves.items():
        shown = by_label(trace, name)["grad"]
        numeric = central(lambda vals: parse(text, **vals).data, at, name)
        assert shown == pytest.approx(leaf.grad, rel=1e-12, abs=1e-15), name
        assert shown == pytest.approx(numeric, rel=1e-6, abs=1e-8), name
    # every node, intermediate ones included, against the engine's retained .grad
    nodes = _walk_like_player(root)
    assert [n["value"] for n in trace["nodes"]] == pytest.approx([n.data for n in nodes])
    for n, shown in zip(nodes, trace["nodes"], strict=True):
        if n.requires_grad:
            assert shown["grad"] == pytest.approx(n.grad, rel=1e-12, abs=1e-15)
        else:  # a constant (the 1 in x * x + 1) has no gradient, rather than a misleading 0
            assert shown["grad"] is None


def _expressions() -> st.SearchStrategy[str]:
    """Expressions over a, b, c in which names recur, so nodes feed several others."""
    leaf = st.sampled_from(["a", "b", "c", "a", "2"])
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(st.sampled_from(["tanh", "sigmoid", "exp"]), inner).map(
                lambda t: f"{t[0]}({t[1]})"
            ),
        ),
        max_leaves=8,
    )


@given(
    text=_expressions(),
    at=st.fixed_dictionaries({k: st.floats(-1.5, 1.5) for k in "abc"}),
)
def test_random_expressions_trace_against_engine_and_central_differences(
    text: str, at: dict[str, float]
) -> None:
    text = f"{text} * a + b"  # a used at least twice
    leaves = {k: Value(at[k], label=k) for k in expression_names(text)}
    trace = page_trace(play(parse(text, **leaves)))
    for name, leaf in leaves.items():
        shown = by_label(trace, name)["grad"]
        assert shown == pytest.approx(leaf.grad, rel=1e-12, abs=1e-12)
        numeric = central(lambda vals: parse(text, **vals).data, at, name)
        assert shown == pytest.approx(numeric, rel=1e-5, abs=1e-6)
        contributions = [
            e["contribution"] for e in trace["edges"] if e["source"] == by_label(trace, name)["id"]
        ]
        assert shown == pytest.approx(sum(contributions), rel=1e-12, abs=1e-12)


def _walk_like_player(root: Value) -> list[Value]:
    order: list[Value] = []
    seen: set[int] = set()

    def visit(n: Value) -> None:  # recursion is fine on these small graphs
        if id(n) in seen:
            return
        seen.add(id(n))
        for p in n.parents:
            visit(p)  # type: ignore[arg-type]
        order.append(n)

    visit(root)
    return order


def test_a_times_a_has_two_edges_whose_contributions_sum_to_the_gradient() -> None:
    a = Value(3.0, label="a")
    trace = page_trace(play(a * a))
    (mul,) = [n for n in trace["nodes"] if n["op"] == "Mul"]
    edges = [e for e in trace["edges"] if e["target"] == mul["id"]]
    assert [e["input"] for e in edges] == [0, 1]
    assert {e["source"] for e in edges} == {by_label(trace, "a")["id"]}
    assert [e["local"] for e in edges] == [3.0, 3.0]  # d(a*b)/da = b, d(a*b)/db = a, at a = b = 3
    assert [e["contribution"] for e in edges] == [3.0, 3.0]
    assert by_label(trace, "a")["grad"] == 6.0 == a.grad
    # each clause in the graph's own names: the other operand of a * a is a itself
    assert [e["filled"] for e in edges] == ["d(a) = g · a = 1 · 3 = 3"] * 2


def test_a_value_feeding_three_nodes_sums_their_contributions() -> None:
    a, b = Value(0.7, label="a"), Value(-1.3, label="b")
    root = a.tanh() + a * b + a.exp()
    trace = page_trace(play(root))
    ida = by_label(trace, "a")["id"]
    out = [e for e in trace["edges"] if e["source"] == ida]
    assert len(out) == 3
    # by hand: d tanh(a) = 1 - tanh(a)², d(a b)/da = b, d exp(a) = exp(a); upstream is 1 each
    expected = sorted([1 - math.tanh(0.7) ** 2, -1.3, math.exp(0.7)])
    assert sorted(e["local"] for e in out) == pytest.approx(expected, rel=1e-14)
    assert sorted(e["contribution"] for e in out) == pytest.approx(expected, rel=1e-14)
    assert by_label(trace, "a")["grad"] == pytest.approx(sum(expected), rel=1e-14)


def test_locals_of_the_neuron_against_hand_formulas() -> None:
    o, leaves = neuron(x1w1="x1w1", n="n")
    trace = page_trace(play(o))
    ids = {n["label"]: n["id"] for n in trace["nodes"] if n["label"]}
    local = {(e["source"], e["target"]): e["local"] for e in trace["edges"]}
    assert local[ids["n"], ids["o"]] == pytest.approx(1 - o.data**2, rel=1e-14)  # tanh'
    assert local[ids["x1"], ids["x1w1"]] == -3.0  # d(x1 w1)/dx1 = w1
    assert local[ids["w1"], ids["x1w1"]] == 2.0
    assert local[ids["b"], ids["n"]] == 1.0
    (tanh_edge,) = [e for e in trace["edges"] if e["target"] == ids["o"]]
    assert tanh_edge["filled"] == "d(n) = g · (1 - o ** 2) = 1 · (1 - 0.7071 ** 2) = 0.5"
    assert by_label(trace, "o")["formula"] == "out = tanh(x); dx = g * (1 - out ** 2)"
    assert by_label(trace, "x1")["grad"] == pytest.approx(-1.5) == pytest.approx(leaves["x1"].grad)


def test_steps_start_at_the_root_and_reach_each_node_after_every_node_it_feeds() -> None:
    a, b = Value(0.7, label="a"), Value(-1.3, label="b")
    c = Value.constant(2.0, "c")
    root = ((a * b + a) * c).tanh() + a.exp() * b
    trace = page_trace(play(root))
    steps, order = trace["steps"], trace["order"]
    assert (
        steps[0]
        == order[0]
        == len(trace["nodes"]) - 1
        == next(n["id"] for n in trace["nodes"] if n["kind"] == "root")
    )
    position = {i: k for k, i in enumerate(order)}
    for e in trace["edges"]:
        if e["source"] in position:
            assert position[e["target"]] < position[e["source"]]
    # every node that needs a gradient is in the order, once; the constant is not
    needing = [n["id"] for n in trace["nodes"] if n["grad"] is not None]
    assert sorted(order) == sorted(needing)
    # a leaf takes no step: its gradient is whole at the step of the last rule that feeds it
    computed = [n["id"] for n in trace["nodes"] if n["op"] is not None]
    assert steps == [i for i in order if i in computed]
    step_of = {i: k + 1 for k, i in enumerate(steps)}
    for node in trace["nodes"]:
        if node["id"] in step_of:
            assert node["complete_at"] == step_of[node["id"]]
        elif node["grad"] is not None:
            feeds = [step_of[e["target"]] for e in trace["edges"] if e["source"] == node["id"]]
            assert node["complete_at"] == max(feeds)
    assert by_label(trace, "c")["grad"] is None and by_label(trace, "c")["kind"] == "input"
    cid = by_label(trace, "c")["id"]
    (into_c,) = [e for e in trace["edges"] if e["source"] == cid]
    assert into_c["contribution"] is None and into_c["local"] is None


def test_play_before_backward_runs_the_pass_and_after_it_does_not_run_it_again() -> None:
    o, leaves = neuron()
    play(o)
    assert leaves["w1"].grad == pytest.approx(1.0)
    play(o)  # a second page must not add a second pass into .grad
    assert leaves["w1"].grad == pytest.approx(1.0)


def test_a_tensor_mlp_with_model_groups_layers_and_matches_the_engine() -> None:
    model = nn.MLP(2, 1, [3], "tanh", seed=0)
    x = np.random.default_rng(0).standard_normal((4, 2))
    target = np.ones((4, 1))
    loss = mse(model.forward(Tensor(x)), target)
    trace = page_trace(play(loss, model=model))
    assert [g["name"] for g in trace["groups"]] == ["layers.0", "layers.1"]
    for group in trace["groups"]:
        labels = sorted(trace["nodes"][i]["label"] for i in group["members"])
        assert labels == [f"{group['name']}.bias", f"{group['name']}.weight"]
    for name, p in model.named_parameters():
        node = by_label(trace, name)
        assert node["shape"] == list(p.data.shape)
        assert node["dtype"] == "float64"
        assert np.asarray(node["grad"]) == pytest.approx(p.grad, rel=1e-12)  # small: whole
        s = node["summary"]["grad"]
        assert s["norm"] == pytest.approx(np.linalg.norm(p.grad))
        assert (s["min"], s["max"]) == pytest.approx((p.grad.min(), p.grad.max()))

    # one element of the first layer's weight by central differences
    w = model.layers[0].weight
    h, i, j = 1e-6, 1, 2
    w.data[i, j] += h
    up = mse(model.forward(Tensor(x)), target).item()
    w.data[i, j] -= 2 * h
    down = mse(model.forward(Tensor(x)), target).item()
    w.data[i, j] += h
    shown = np.asarray(by_label(trace, "layers.0.weight")["grad"])[i, j]
    assert shown == pytest.approx((up - down) / (2 * h), rel=1e-6)
    assert all(e["local"] is None for e in trace["edges"])  # a Jacobian: not one number


def test_big_arrays_are_summarised_not_carried_whole() -> None:
    w = Tensor(np.arange(40.0).reshape(8, 5) / 40, requires_grad=True, name="w")
    loss = (w.tanh() * 3.0).sum()
    trace = page_trace(play(loss))
    node = by_label(trace, "w")
    assert node["value"] is None and node["grad"] is None
    expected = 3 * (1 - np.tanh(w.data) ** 2)
    assert node["summary"]["grad"]["mean"] == pytest.approx(expected.mean())
    assert node["summary"]["value"]["max"] == pytest.approx(39 / 40)


# -- the learner's gradients -----------------------------------------------------------------------


def verdicts(trace: dict[str, Any]) -> dict[str, str]:
    return {n["label"]: n["verdict"] for n in trace["nodes"] if "verdict" in n}


def test_right_gradients_within_the_stated_tolerance() -> None:
    o, _ = neuron()
    almost = 0.5 * (1 + 0.9 * MANUAL_RTOL)
    page = play(o, manual={"w1": 1.0, "b": almost, "x1": -1.5, "x2": 0.5, "w2": 0})
    trace = page_trace(page)
    assert set(verdicts(trace).values()) == {"right"}
    assert trace["first_wrong"] is None and trace["diagnosis"] is None
    assert trace["tolerance"] == {"rtol": MANUAL_RTOL, "atol": 1e-9}
    assert "right when |yours − engine| ≤ 1e-09 + 0.001·|engine|" in html.unescape(page.html)
    off = 0.5 * (1 + 1.1 * MANUAL_RTOL)
    assert verdicts(page_trace(play(o, manual={"b": off})))["b"] == "wrong"


def test_the_first_wrong_node_is_the_first_in_backward_order() -> None:
    o, _ = neuron()
    trace = page_trace(play(o, manual={"x1": 7.0, "b": 0.25, "w1": 1.0}))
    assert verdicts(trace) == {"x1": "wrong", "b": "wrong", "w1": "right"}
    b = by_label(trace, "b")
    assert trace["first_wrong"] == b["id"]
    assert b["complete_at"] < by_label(trace, "x1")["complete_at"]
    assert b["manual"] == 0.25


@pytest.mark.parametrize(
    ("manual", "cause", "factor", "words"),
    [
        # passed 0.5 from x1*w1 straight through: the local factor w1 = -3 is missing
        (
            {"x1w1": 0.5, "x1": 0.5},
            "local",
            "the local factor",
            "off by exactly the local factor d(x1w1)/d(x1) = -3: it was not multiplied by it",
        ),
        # 0.5 * (-3) * (-3): the local factor twice
        ({"x1w1": 0.5, "x1": 4.5}, "local", "the local factor", "multiplied in twice"),
        # the upstream right (given), the local derivative wrong in no telling way
        ({"x1w1": 0.5, "x1": 0.7}, "local", None, "The upstream gradient was right"),
        ({"x1w1": 0.5, "x1": 1.5}, "local", "the sign", "wrong sign"),
        # the local derivative alone, never multiplied by the upstream 0.5
        ({"x1": -3.0}, "upstream", "2", "never multiplied by the upstream gradient 0.5"),
        # the upstream not given: 0.3 / w1 = -0.1 would have been the gradient of x1*w1
        ({"x1": 0.3}, "upstream", None, "you had -0.1 as the gradient of x1w1, where it is 0.5"),
        ({"o": 2.0}, "root", None, "its gradient is d(o)/d(o) = 1"),
    ],
)
def test_the_diagnosis_says_whether_upstream_or_local_went_wrong(
    manual: dict[str, float], cause: str, factor: str | None, words: str
) -> None:
    o, _ = neuron(x1w1="x1w1")
    trace = page_trace(play(o, manual=manual))
    wrong = [k for k, v in verdicts(trace).items() if v == "wrong"]
    assert len(wrong) == 1
    d = trace["diagnosis"]
    assert trace["first_wrong"] == by_label(trace, wrong[0])["id"] == d["node"]
    assert (d["cause"], d["factor"]) == (cause, factor)
    assert words in d["text"]


def test_a_fan_out_gradient_that_is_one_contribution_alone_is_a_missing_sum() -> None:
    a, b = Value(0.7, label="a"), Value(-1.3, label="b")
    root = a.tanh() + a * b + a.exp()
    trace = page_trace(play(root, manual={"a": math.exp(0.7)}))  # exp's part only
    d = trace["diagnosis"]
    assert d["cause"] == "sum"
    assert "feeds 3 uses" in d["text"] and "add the others" in d["text"]
    assert d["kind"] == "missing-term"


def test_tensor_manual_gradients_by_parameter_name() -> None:
    model = nn.MLP(2, 1, [3], "tanh", seed=0)
    x = np.random.default_rng(1).standard_normal((4, 2))
    loss = mse(model.forward(Tensor(x)), np.zeros((4, 1)))
    loss.backward()
    w0 = model.layers[0].weight.grad.copy()
    b1 = model.layers[1].bias.grad.copy()
    trace = page_trace(
        play(loss, model=model, manual={"layers.0.weight": w0, "layers.1.bias": -b1})
    )
    assert verdicts(trace) == {"layers.0.weight": "right", "layers.1.bias": "wrong"}
    assert trace["diagnosis"]["factor"] == "the sign"


@pytest.mark.parametrize(
    ("manual", "error", "message"),
    [
        ({"zz": 1.0}, ValueError, "manual= names 'zz', which labels no node"),
        ({"x1": [1.0, 2.0]}, ValueError, "a gradient of shape (2,), its node has shape ()"),
        ({"x1": "one"}, TypeError, "gives 'x1' a str, not a number"),
    ],
)
def test_bad_manual_gradients_are_refused(
    manual: dict[str, Any], error: type[Exception], message: str
) -> None:
    o, _ = neuron()
    with pytest.raises(error, match=re.escape(message)):
        play(o, manual=manual)


def test_an_ambiguous_or_constant_label_is_refused() -> None:
    a, b = Value(1.0, label="a"), Value(2.0, label="a")
    with pytest.raises(ValueError, match="labels 2 nodes"):
        play(a * b, manual={"a": 1.0})
    c = Value.constant(3.0, "c")
    with pytest.raises(ValueError, match="a constant"):
        play(Value(1.0) * c, manual={"c": 1.0})


# -- the page -------------------------------------------------------------------------------------


def test_the_page_is_self_contained_and_marks_every_node() -> None:
    o, _ = neuron()
    page = play(o)
    text = page.html
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)=["'](?!data:)""", text)  # nothing to fetch
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")  # a name, not a URL
    assert "https://" not in text
    assert "default-src 'none'" in text  # and the browser is told to fetch nothing
    ids = re.findall(r'<g class="node[^"]*" data-node="(\d+)" data-state="waiting"', text)
    assert sorted(map(int, ids)) == list(range(len(page.trace["nodes"])))
    assert page_trace(page) == json.loads(json.dumps(page.trace))
    for button in ("step", "back", "play", "reset", "speed"):
        assert f'id="{button}"' in text


def test_labels_cannot_break_out_of_the_page() -> None:
    a = Value(2.0, label="</script><script>alert(1)</script>")
    b = Value(3.0, label='<img src=x onerror="alert(2)">')
    page = play(a * b)
    assert "<script>alert(1)" not in page.html
    assert "<img src=x" not in page.html
    assert {n["label"] for n in page_trace(page)["nodes"]} >= {a.label, b.label}


def test_repr_html_is_an_iframe_of_the_whole_page() -> None:
    o, _ = neuron()
    page = play(o)
    shown = page._repr_html_()
    assert shown.startswith("<iframe srcdoc=")
    assert "width: 100%" in shown and "640px" not in shown  # as wide as the notebook's cell
    assert html.unescape(re.search(r'srcdoc="(.*?)"', shown, re.S).group(1)) == page.html  # type: ignore[union-attr]


def test_save_writes_the_file_and_a_failed_save_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    o, _ = neuron()
    page = play(o)
    target = tmp_path / "sub" / "backward.html"
    assert page.save(target) == target
    assert target.read_text(encoding="utf-8") == page.html

    def broken(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    other = play(Value(2.0, label="z") * 3.0)
    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(OSError, match="No space left"):
        other.save(target)
    assert target.read_text(encoding="utf-8") == page.html
    assert sorted(p.name for p in target.parent.iterdir()) == ["backward.html"]  # no temp left


def test_past_the_limit_the_page_says_so_and_suggests_grouping() -> None:
    x = Value(0.5, label="x")
    y = x
    for _ in range(30):
        y = y.tanh()
    page = play(y, max_nodes=10)
    assert page.trace["too_big"] == {"nodes": 31, "limit": 10}
    assert page.trace["nodes"] == [] and page.trace["steps"] == []
    assert "This graph has 31 nodes, more than the 10 this page draws" in page.html
    assert "model=" in page.html and "Tensors" in page.html


def test_non_finite_numbers_are_strings_in_the_json() -> None:
    x = Value(1e300, label="x")
    trace = page_trace(play(x * x))
    assert trace["nodes"][-1]["value"] == "Infinity"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: play(3.0), TypeError, "plays a Value or a Tensor, got float"),  # type: ignore[arg-type]
        (lambda: play(Value.constant(1.0) * 2), ValueError, "needs a root that requires grad"),
        (
            lambda: play(Tensor(np.ones(3), requires_grad=True) * 2),
            ValueError,
            "a single element (a loss), got a Tensor of shape (3,)",
        ),
        (lambda: play(Value(1.0) * 2, max_nodes=0), ValueError, "max_nodes must be an int >= 1"),
        (
            lambda: play(Value(0.0).sqrt() * 2),
            ArithmeticError,
            "the backward of Sqrt at (0.0) is infinite",
        ),
    ],
)
def test_bad_roots_and_arguments(
    call: Callable[[], Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        call()


# -- the command line ------------------------------------------------------------------------------

NEURON_ARGV = [
    "play",
    "tanh(x1*w1 + x2*w2 + b)",
    *[arg for k, v in NEURON_VALUES.items() for arg in ("--var", f"{k}={v!r}")],
]


def test_play_writes_the_page_and_reports_the_learners_first_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "neuron.html"
    argv = [*NEURON_ARGV, "--manual", "w1=1", "--manual", "x1=-3", "-o", str(target)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["value = 0.7071", "d/dx1 = -1.5", "d/dw1 = 1"]
    # x1's gradient is whole after step 5 (x1*w1's rule): leaves take no step of their own
    assert lines[-2] == (
        "first wrong: x1 (step 5): x1: your -3 is the local derivative d(x1*w1)/d(x1) alone: "
        "it was never multiplied by the upstream gradient 0.5 of x1*w1"
    )
    assert lines[-1] == f"wrote {target}"
    trace = json.loads(
        re.search(r'id="backprop-trace">(.*?)</script>', target.read_text()).group(1)  # type: ignore[union-attr]
    )
    assert by_label(trace, "x1")["verdict"] == "wrong"
    assert by_label(trace, "w1")["verdict"] == "right"


def test_play_writes_backward_html_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["play", "x * x", "--var", "x=3", "--manual", "x=6"]) == 0
    out = capsys.readouterr().out
    assert "your gradients (x) agree with the engine's" in out
    assert (tmp_path / "backward.html").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["play", "x.real", "--var", "x=1"], "cannot read the expression: attribute access"),
        (["play", "x * y", "--var", "x=1"], "no value for y: give --var y=NUMBER"),
        (["play", "x", "--var", "x=1", "--var", "z=2"], "--var z: the expression does not use"),
        (["play", "x", "--var", "x=one"], "'one' is not a number"),
        (["play", "log(x)", "--var", "x=-1"], "cannot compute the expression"),
        (["play", "x", "--var", "x=1", "--manual", "q=1"], "--manual q: the expression has no"),
        (["play", "x", "--var", "x=1", "--manual", "x=1", "--manual", "x=2"], "given twice"),
        (["play", "x", "--var", "x=1", "-o", "page.svg"], "'page.svg' must end in .html"),
        (["play", "2 * 3"], "the expression has no names"),
        (["play", "x", "--var", "x=1", "--max-nodes", "0"], "must be an integer >= 1"),
    ],
)
def test_refusals_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([*argv, "-o", str(tmp_path / "p.html")] if "-o" not in argv else argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert message in captured.err
    assert not (tmp_path / "p.html").exists()


def test_an_unwritable_page_exits_1_and_keeps_the_old_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["play", "x * x", "--var", "x=3", "-o", str(blocker / "p.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("backproplab play: error: cannot write") and err.count("\n") == 1
    assert blocker.read_text() == "not a folder"


def test_the_tour_writes_the_page_beside_its_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import backproplab.autograd.demo

    monkeypatch.setattr(backproplab.autograd.demo, "main", lambda: None)
    for name in ("demo_circle", "demo_relu", "demo_mlp"):
        monkeypatch.setattr(cmd_demo, name, lambda *a: 0)
    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert f"wrote {tmp_path / 'backward.html'}" in capsys.readouterr().out
    trace = json.loads(
        re.search(  # type: ignore[union-attr]
            r'id="backprop-trace">(.*?)</script>', (tmp_path / "backward.html").read_text()
        ).group(1)
    )
    assert by_label(trace, "w1")["grad"] == pytest.approx(1.0)


# -- odd input (issue 23) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rtol": math.inf}, "rtol must be a finite number >= 0, got inf"),
        ({"atol": math.nan}, "atol must be a finite number >= 0, got nan"),
        ({"rtol": -1e-3}, "rtol must be a finite number >= 0, got -0.001"),
        ({"rtol": 0.0, "atol": 0.0}, "rtol and atol are both 0"),
    ],
)
def test_a_tolerance_that_cannot_judge_is_refused_by_name(
    kwargs: dict[str, float], message: str
) -> None:
    o, _ = neuron()
    with pytest.raises(ValueError, match=re.escape(message)):
        play(o, manual={"w1": 1.0}, **kwargs)


def test_a_label_with_a_lone_surrogate_is_refused_naming_it() -> None:
    x = Value(2.0, label="x\udc80y")
    with pytest.raises(ValueError, match=re.escape("the label 'x\\udc80y' holds a lone surrogate")):
        play(x * x)


def test_a_manual_gradient_must_be_finite() -> None:
    o, _ = neuron()
    with pytest.raises(ValueError, match=re.escape("manual= gives 'x1' nan: a manual gradient")):
        play(o, manual={"x1": math.nan})
    with pytest.raises(ValueError, match="must be a finite number"):
        play(o, manual={"w1": math.inf})


def test_manual_nan_on_the_command_line_says_it_must_be_finite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*NEURON_ARGV, "--manual", "x1=nan", "-o", str(tmp_path / "p.html")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--manual x1=nan: a manual gradient must be a finite number" in err
    assert "means you had" not in err
