"""compile/scalar.py: a Value graph run as batches, against the eager engine bit for bit."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from backproplab.autograd import OPS, Op, Tensor, Value, dense, dot, sum_values
from backproplab.autograd.compile.scalar import build_scalar_program as build
from hypothesis import assume, given, settings
from hypothesis import strategies as st

# --- helpers ------------------------------------------------------------------------------------


def full_order(outputs: list[Any]) -> list[Any]:
    """Every node the outputs depend on, leaves included, each after its parents."""
    seen: set[int] = set()
    order: list[Any] = []
    stack = [(o, False) for o in reversed(outputs)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack += [(p, False) for p in reversed(node.parents) if id(p) not in seen]
    return order


def same(a: float, b: float) -> bool:
    """Bit for bit: equal with the same sign (so 0.0 is not -0.0), or both NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def check(make: Callable[[list[float]], tuple[list[Value], Value]], *points: list[float]) -> Any:
    """Build the graph at the first point, compile it, then at every point compare the
    program's output and gradients with the eager engine's graph built there, bit for bit."""
    leaves, root = make(points[0])
    prog = build(full_order([root]), leaves, [root])
    assert prog.tolerance == 0.0
    for point in points:
        leaves, root = make(point)
        root.backward()
        outs, saved = prog.forward(point)
        grads = prog.backward(saved, [1.0])
        assert same(outs[0], root.data), (outs[0], root.data)
        for i, (got, leaf) in enumerate(zip(grads, leaves, strict=True)):
            assert same(got, leaf.grad), (i, got, leaf.grad)
    return prog


def mlp(sizes: list[int]) -> Callable[[list[float]], tuple[list[Value], list[Any]]]:
    """micrograd's MLP (ReLU hidden, linear out, a node per * and +), weights from ``point``."""
    counts = [(n_in + 1) * n_out for n_in, n_out in itertools.pairwise(sizes)]

    def make(point: list[float]) -> tuple[list[Value], list[Any]]:
        params = [Value(p) for p in point[: sum(counts)]]
        it = iter(params)
        layers = [
            [([next(it) for _ in range(n_in)], next(it)) for _ in range(n_out)]
            for n_in, n_out in itertools.pairwise(sizes)
        ]

        def net(x: list[Any]) -> Any:
            for k, layer in enumerate(layers):
                acts = [sum((w * xi for w, xi in zip(ws, x, strict=True)), b) for ws, b in layer]
                x = acts if k == len(layers) - 1 else [a.relu() for a in acts]
            return x[0]

        return params, [net]

    return make


def moons(n: int, seed: int = 0) -> tuple[list[list[float]], list[float]]:
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, np.pi, n)
    x = np.stack([np.cos(t), np.sin(t)], axis=1) + rng.normal(scale=0.1, size=(n, 2))
    return x.tolist(), [1.0 if i % 2 else -1.0 for i in range(n)]


def weights(n: int, seed: int) -> list[float]:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, n).tolist()


# --- graphs of users' steps ---------------------------------------------------------------------


def test_micrograd_style_mlp_squared_error() -> None:
    xs, ys = moons(20)
    model = mlp([2, 8, 8, 1])

    def make(point: list[float]) -> tuple[list[Value], Value]:
        params, (net,) = model(point)
        return params, sum(((net(x) - y) ** 2 for x, y in zip(xs, ys, strict=True)), Value(0.0))

    n = 3 * 8 + 9 * 8 + 9
    check(make, weights(n, 1), weights(n, 2))


def test_micrograd_demo_step_hinge_loss_and_l2_with_value_inputs() -> None:
    xs, ys = moons(30)
    model = mlp([2, 16, 16, 1])

    def make(point: list[float]) -> tuple[list[Value], Value]:
        params, (net,) = model(point)
        scores = [net(list(map(Value, x))) for x in xs]
        losses = [(1 + -yi * si).relu() for yi, si in zip(ys, scores, strict=True)]
        data_loss = sum(losses) * (1.0 / len(losses))
        return params, data_loss + 1e-4 * sum(p * p for p in params)

    n = 3 * 16 + 17 * 16 + 17
    prog = check(make, weights(n, 3), weights(n, 4), [0.0] * n)
    assert "Mul" in prog.source and "[NumPy]" in prog.source


def test_fused_neurons_dot_and_sum_values() -> None:
    def make(point: list[float]) -> tuple[list[Value], Value]:
        ws = [Value(p) for p in point]
        outs = [dot(ws[:4], [w * k for w in ws[4:]]).tanh() for k in range(1, 12)]
        return ws, sum_values([(o - 0.5) ** 2 for o in outs]) / 11

    check(make, weights(8, 5), weights(8, 6))


def test_deep_chain() -> None:
    def make(point: list[float]) -> tuple[list[Value], Value]:
        x = Value(point[0])
        y = x
        for k in range(5000):
            y = (y * 1.0001).tanh() + 0.001 * k
        return [x], y

    prog = check(make, [0.3], [-0.7])
    assert len(prog.source.splitlines()) < 40  # a chain is one tape line each way


def test_wide_sums_add_each_nodes_uses_in_the_engines_order() -> None:
    """x is used by 600 nodes whose gradients differ by 16 orders of magnitude: added in any
    other order than the engine's, the sum loses different bits."""

    def make(point: list[float]) -> tuple[list[Value], Value]:
        x, y = Value(point[0]), Value(point[1])
        scales = [1e16, 1.0, -1e16, 3.0, 1e-3] * 120
        terms = [(x * s).tanh() * s + x * y * s for s in scales]
        return [x, y], sum_values(terms) + sum(terms[:50], Value(0.0))

    check(make, [1e-17, 0.3], [2e-17, -0.1])
    # the order matters here: the same gradients summed in another order differ
    grads = [1e16, 1.0, -1e16, 3.0] * 3
    assert sum(grads) != sum(sorted(grads))


def test_repeated_blocks_that_differ_in_no_number() -> None:
    def make(point: list[float]) -> tuple[list[Value], Value]:
        x, y = Value(point[0]), Value(point[1])
        s = Value(0.0)
        for _ in range(300):
            s = s + (x * y).tanh() + (x - y).relu()
        return [x, y], s

    check(make, [0.4, 0.2], [-0.3, 0.9])


def test_every_value_op_including_the_raising_ones_and_a_users_op(restore_ops: None) -> None:
    class Cube(Op):
        """out = x ** 3;  dx = 3 g x ** 2"""

        @staticmethod
        def forward(xp: Any, x: Any) -> Any:
            return x * x * x

        @staticmethod
        def backward(xp: Any, g: Any, out: Any, x: Any) -> tuple[Any, ...]:
            return (3.0 * g * x * x,)

    def make(point: list[float]) -> tuple[list[Value], Value]:
        a, b = (Value(p) for p in point)
        terms = []
        for k in range(1, 10):  # nine of each: batches, not only the tape
            c = a * k
            terms += [
                c.sin(), c.cos(), c + 2, c * 3, c / 4, 5 - c, 6 / (c + 10), 2 ** (c * 0.1),
                c + b, c - b, c * b, c / b, -c, c ** 2, (c * c + 1) ** (b * b),
                (c * 0.1).exp(), (c * c + 1).log(), c.tanh(), c.sigmoid(), c.relu(), c.abs(),
                (c * c + 1).sqrt(), c.maximum(b), c.minimum(b), sum_values([c, b, a]),
                dot([c, b], [a, a]), Value.apply(Cube, c * 0.1),
            ]  # fmt: skip
        return [a, b], sum_values(terms)

    prog = check(make, [0.7, -1.3], [-0.4, 2.5], [0.5, 0.5])
    for name in ["Sin", "NumberPow", "Pow(a, b)", "Maximum", "Dot", "Cube"]:
        assert name in prog.source


# Every op in the table: a Value can record it (and the tests above run it), or it is a
# Tensor op, which a scalar program refuses (below).
TENSOR_OPS = {
    "Sum", "Max", "Min", "MatMul", "Dense", "SquaredError", "Reshape", "Transpose", "BroadcastTo",
    "Index", "Scatter", "Concatenate", "Where", "Softmax", "LogSoftmax", "LogSumExp",
}  # fmt: skip
VALUE_OPS = {
    "Add", "Sub", "Mul", "Div", "Neg", "Pow", "Pow(a, b)", "AddNumber", "MulNumber", "DivNumber",
    "NumberSub", "NumberDiv", "NumberPow", "Exp", "Log", "Tanh", "Sin", "Cos", "Sigmoid",
    "ReLU", "Abs", "Sqrt", "Maximum", "Minimum", "Sum(values)", "Dot",
}  # fmt: skip


def test_the_op_table_is_covered() -> None:
    builtin = {name for name, op in OPS.items() if op.__module__.endswith("autograd.ops")}
    assert builtin == VALUE_OPS | TENSOR_OPS


@pytest.mark.parametrize(
    "make",
    [
        lambda t: t.sum(),
        lambda t: t @ np.ones((3, 2)),
        lambda t: dense(t, Tensor(np.ones((3, 2)), requires_grad=True), None, "relu").sum(),
        lambda t: t.max(),
        lambda t: (t * 2).reshape((3, 2)).sum(),
    ],
)
def test_tensor_ops_are_refused_naming_the_op(make: Callable[[Tensor], Tensor]) -> None:
    t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    root = make(t)
    with pytest.raises(TypeError, match=r"op \w+ holds a ndarray, not a float"):
        build(full_order([root]), [t], [root])


# --- the program as a function of its inputs -----------------------------------------------------


def test_constants_are_read_at_build_and_inputs_at_each_call() -> None:
    x, c = Value(2.0), Value(3.0)
    y = x * c + c.exp()
    prog = build(full_order([y]), [x], [y])
    outs, saved = prog.forward([5.0])
    assert outs == [5.0 * 3.0 + math.exp(3.0)]
    assert prog.backward(saved, [2.0]) == [6.0]


def test_several_outputs_with_their_seeds_and_an_input_as_output() -> None:
    a, b = Value(0.3), Value(-1.2)
    y1, y2, unused = (a * b).tanh(), a.exp() + b * b, Value(4.0)
    prog = build(full_order([y1, y2, a]), [a, b, unused], [y1, y2, a])
    outs, saved = prog.forward([0.3, -1.2, 4.0])
    assert outs == [y1.data, y2.data, 0.3]
    total = 0.5 * y1 - 2.0 * y2 + 3.0 * a
    total.backward()
    got = prog.backward(saved, [0.5, -2.0, 3.0])
    assert got[:2] == pytest.approx([a.grad, b.grad], rel=1e-14)
    assert got[2] == 0.0


def test_gradients_against_central_differences() -> None:
    def f(p: list[float]) -> tuple[list[Value], Value]:
        a, b, c = (Value(x) for x in p)
        return [a, b, c], ((a * b).sigmoid() + (b / c).tanh() * (c * c + a).log()) ** 2

    point = [0.3, -0.8, 1.7]
    leaves, root = f(point)
    prog = build(full_order([root]), leaves, [root])
    _, saved = prog.forward(point)
    grads = prog.backward(saved, [1.0])
    h = 1e-6
    for i in range(3):
        up, down = list(point), list(point)
        up[i] += h
        down[i] -= h
        numeric = (prog.forward(up)[0][0] - prog.forward(down)[0][0]) / (2 * h)
        assert grads[i] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_errors_are_the_engines_at_a_new_point() -> None:
    def make(point: list[float]) -> tuple[list[Value], list[Value]]:
        xs = [Value(p) for p in point]
        return xs, [x.sqrt() + 1 / x + (x + 2).log() for x in xs]

    leaves, roots = make([1.0] * 9)  # nine of each: a batch
    total = sum_values(roots)
    prog = build(full_order([total]), leaves, [total])
    with pytest.raises(ZeroDivisionError):  # 1 / 0, as the float rule says
        prog.forward([1.0] * 8 + [0.0])
    with pytest.raises(ValueError, match="square root of a negative number"):
        prog.forward([1.0] * 8 + [-1.0])
    x = Value(0.0)
    y = x.sqrt()
    prog = build(full_order([y]), [x], [y])
    _, saved = prog.forward([0.0])
    with pytest.raises(ArithmeticError, match="the backward of Sqrt"):
        prog.backward(saved, [1.0])
    with pytest.raises(ArithmeticError, match="the backward of Sqrt"):
        y.backward()


def test_bad_arguments_are_refused() -> None:
    a, b = Value(1.0), Value(2.0)
    y = a * b
    order = full_order([y])
    with pytest.raises(ValueError, match="is not in the order given"):
        build(order, [a, b], [y, Value(3.0)])
    with pytest.raises(ValueError, match="given twice"):
        build(order, [a, a], [y])
    with pytest.raises(ValueError, match="is not in the order given"):
        build([a, y], [a], [y])
    prog = build(order, [a, b], [y])
    with pytest.raises(ValueError, match="takes 2 input"):
        prog.forward([1.0])
    _, saved = prog.forward([1.0, 2.0])
    with pytest.raises(ValueError, match="has 1 output"):
        prog.backward(saved, [1.0, 1.0])


# --- random graphs --------------------------------------------------------------------------------

UNARY: list[Callable[[Any], Any]] = [
    lambda x: x.tanh(), lambda x: x.sigmoid(), lambda x: x.relu(), lambda x: x.exp(),
    lambda x: (x * x + 0.5).log(), lambda x: x.sin(), lambda x: x.abs(), lambda x: -x,
    lambda x: x * 1.5, lambda x: x + 0.25, lambda x: 2.0 - x, lambda x: x / 3.0, lambda x: x**2,
    lambda x: (x * x + 1.0).sqrt(), lambda x: 1.0 / (x * x + 1.0), lambda x: 1.5**x,
]  # fmt: skip
BINARY: list[Callable[[Any, Any], Any]] = [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / (b * b + 1.0),
    lambda a, b: a.maximum(b), lambda a, b: a.minimum(b), lambda a, b: sum_values([a, b, a]),
    lambda a, b: dot([a, b], [b, b]), lambda a, b: (a * a + 1.0) ** b,
]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    plan=st.lists(
        st.tuples(
            st.integers(0, 1), st.integers(0, 15), st.integers(0, 10**6), st.integers(0, 10**6)
        ),
        min_size=1,
        max_size=120,
    ),
    widths=st.integers(1, 12),
    points=st.lists(
        st.lists(st.floats(-3.0, 3.0, allow_nan=False), min_size=4, max_size=4),
        min_size=2,
        max_size=3,
    ),
)
def test_random_graphs_match_the_engine(plan: list, widths: int, points: list) -> None:
    """Random steps, each repeated ``widths`` times side by side (so batches form and the tape
    runs too), compiled at the first point and run at every point."""

    def make(point: list[float]) -> tuple[list[Value], Value]:
        leaves = [Value(p) for p in point]
        nodes: list[Any] = list(leaves)
        for kind, which, i, j in plan:
            for w in range(widths):
                a = nodes[(i + w) % len(nodes)]
                b = nodes[(j + 2 * w) % len(nodes)]
                nodes.append(UNARY[which](a) if kind == 0 else BINARY[which % len(BINARY)](a, b))
        return leaves, sum_values(nodes[4:])

    try:
        for point in points:
            make(point)[1].backward()
    except (ValueError, ZeroDivisionError, ArithmeticError, OverflowError):
        assume(False)  # where the engine refuses, there is nothing to compare
    check(make, *points)


def test_batches_and_tape_against_each_other_on_a_random_large_graph() -> None:
    def make(point: list[float]) -> tuple[list[Value], Value]:
        leaves = [Value(p) for p in point]
        nodes: list[Any] = list(leaves)
        r = random.Random(11)  # the same graph at every point
        for _ in range(20_000):
            a, b = nodes[r.randrange(len(nodes))], nodes[-1 - r.randrange(min(20, len(nodes)))]
            f = r.randrange(4)
            nodes.append([a + b, a * b * 0.5, (a - b).tanh(), (a * 0.9).relu()][f])
        return leaves, sum_values(nodes[-300:])

    check(make, weights(40, 8), weights(40, 9))


def test_an_input_with_a_history_cuts_the_graph_there() -> None:
    # A compiled function's argument may be computed before the call: it is an input like a
    # leaf, its own history not followed (that part of the graph is the engine's).
    a, w = Value(0.5), Value(0.7)
    h = a * 2.0
    z = (h * w).tanh() * h
    order = [h, w, *[n for n in full_order([z]) if n.op is not None and n is not h]]
    prog = build(order, [h, w], [z])
    outs, saved = prog.forward([1.0, 0.7])
    hh, ww = Value(1.0), Value(0.7)
    zz = (hh * ww).tanh() * hh
    zz.backward()
    assert outs == [zz.data]
    assert prog.backward(saved, [1.0]) == [hh.grad, ww.grad]
    assert h.op is not None and h.parents == (a,)  # the caller's graph is left as it was


def test_a_compiled_value_step_takes_an_argument_computed_before_the_call() -> None:
    """f(a * 2.0): the argument has a graph of its own; its gradient flows on to a, through
    the engine, and every call equals the eager step bit for bit."""
    from backproplab.autograd.compile import compile

    w, a = Value(0.7), Value(0.5)
    f = compile(lambda h: (h * w).tanh() * h)
    for k in range(3):
        a.data = 0.5 + k
        w.grad = a.grad = 0.0
        got = f(a * 2.0)
        got.backward()
        compiled = (got.data, w.grad, a.grad)
        w.grad = a.grad = 0.0
        h = a * 2.0
        want = (h * w).tanh() * h
        want.backward()
        assert compiled == (want.data, w.grad, a.grad)
    assert f.stats == {"traces": 1, "replays": 3, "eager": 0}


def test_nodes_no_output_needs_send_no_gradient() -> None:
    """An order that holds nodes no output depends on (a branch computed and dropped): their
    uses are not counted, so each input's gradient is the engine's, summed in its order."""
    a, b = Value(0.5), Value(-1.5)
    h = a * b
    dropped = [(h * a).tanh(), h + a, a * 3.0]
    y = h * a + h.tanh() + h * b
    order = full_order([y, *dropped])
    prog = build(order, [a, b], [y])
    outs, saved = prog.forward([0.5, -1.5])
    y.backward()
    assert same(outs[0], y.data)
    grads = prog.backward(saved, [1.0])
    assert same(grads[0], a.grad) and same(grads[1], b.grad)


def test_an_order_that_is_not_topological_is_refused() -> None:
    a, b = Value(0.5), Value(2.0)
    y = a * b
    z = y.tanh()
    with pytest.raises(ValueError, match="not topological"):
        build([a, b, z, y], [a, b], [z])


@pytest.mark.parametrize("width", [1, 12])
def test_detach_inside_a_compiled_value_step_stops_the_gradient(width: int) -> None:
    """x.detach() inside the step: its value is read on every call and no gradient goes
    through it, as in the eager step (it failed with an AttributeError: detach has no
    backward rule to call). ``width`` 12: the detached nodes run as a batch."""
    from backproplab.autograd.compile import compile

    w = Value(0.7)

    def step(xs: list[Value]) -> Value:
        return sum_values([(x * x.detach() * w).tanh() + x.detach() for x in xs])

    f = compile(lambda *xs: step(list(xs)))
    for k in range(3):
        xs = [Value(0.5 + k + i / 10) for i in range(width)]
        xe = [Value(x.data) for x in xs]
        w.grad = 0.0
        got = f(*xs)
        got.backward()
        compiled = (got.data, w.grad, [x.grad for x in xs])
        w.grad = 0.0
        want = step(xe)
        want.backward()
        assert compiled == (want.data, w.grad, [x.grad for x in xe])
    assert f.stats == {"traces": 1, "replays": 3, "eager": 0}


def test_a_batch_no_gradient_reaches() -> None:
    """Twelve tanh of constants at one depth run as a batch in the forward, and no gradient
    goes through them: the backward has no batch at all, only the tape from w."""

    def make(point: list[float]) -> tuple[list[Value], Value]:
        w = Value(point[0])
        cs = [Value(i / 10, requires_grad=False) for i in range(12)]
        return [w], w * sum_values([c.tanh() * 2.0 for c in cs])

    check(make, [0.5], [-1.5])


def test_each_output_backward_runs_the_pass_from_that_output_alone() -> None:
    """With several outputs, output k's backward runs only what the engine's pass from output k
    runs: the other outputs' rules are not called (sqrt's at 0 divides by zero), and no 0 * inf
    from them reaches a shared input."""
    from backproplab.autograd.compile import compile

    w = Value(1.0)

    def step(x: Value) -> tuple[Value, Value]:
        a = x * w
        return a * 2.0, (a * a).sqrt()

    f = compile(step)
    for xv in (1.0, 0.0, -3.0):
        x, xe = Value(xv), Value(xv)
        w.grad = 0.0
        f(x)[0].backward()
        got = (w.grad, x.grad)
        w.grad = 0.0
        step(xe)[0].backward()
        assert got == (w.grad, xe.grad)
    a, b = Value(0.5), Value(-1.5)
    outs = [a * b, (a * a).sqrt(), a + b]
    prog = build(full_order(outs), [a, b], outs)
    _, saved = prog.forward([0.0, -1.5])
    for k in range(3):
        aa, bb = Value(0.0), Value(-1.5)
        root = [aa * bb, (aa * aa).sqrt(), aa + bb][k]
        if k == 1:  # the engine refuses it too
            with pytest.raises(ArithmeticError, match="infinite"):
                root.backward()
            with pytest.raises(ArithmeticError, match="infinite"):
                prog.backward_output(saved, k, 1.0)
            continue
        root.backward()
        assert prog.backward_output(saved, k, 1.0) == [aa.grad, bb.grad]
