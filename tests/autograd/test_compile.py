"""compile: the generated code against the eager engine, bit for bit, and every refusal."""

from __future__ import annotations

import ast
import copy
import itertools
import math
import re
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from backproplab.autograd import (
    CompileError,
    Tensor,
    Value,
    dense,
    squared_error,
    sum_values,
    where,
)
from backproplab.autograd import maths as maths_mod
from backproplab.autograd.compile.emit import _INLINE, _Emitter, _Sym
from backproplab.autograd.compile.program import _Program
from backproplab.nn.seed_circle import CircleNet, CircleTensorNet, circle_dataset

from backproplab import compile

# --- helpers ------------------------------------------------------------------------------------


def bits(x: Any) -> bytes:
    """A value's exact bits (float or array), so that equality means bit for bit."""
    return np.asarray(x, dtype=np.float64).tobytes()


def lockstep(
    make: Callable[[], tuple[Callable[..., Any], list[Any]]],
    args: Callable[[int], tuple[Any, ...]],
    steps: int,
    lr: float,
    rebind: bool = False,
) -> int:
    """Train two copies side by side, one compiled, one eager; assert they agree to the bit.

    ``make`` returns (loss function, its parameters); each call builds fresh, equal ones.
    Returns how many traces the compiled side made.
    """
    f_eager, p_eager = make()
    f_plain, p_comp = make()
    f_comp = compile(f_plain)
    for step in range(steps):
        a = args(step)
        le, lc = f_eager(*a), f_comp(*a)
        le.backward(retain_grads=False)
        lc.backward(retain_grads=False)
        assert bits(lc.data) == bits(le.data), f"loss differs at step {step}"
        for i, (pe, pc) in enumerate(zip(p_eager, p_comp, strict=True)):
            assert bits(pc.grad) == bits(pe.grad), f"gradient {i} differs at step {step}"
            for p in (pe, pc):
                if rebind:
                    p.data = p.data - lr * p.grad
                else:
                    p.data -= lr * p.grad
                p.grad = None if isinstance(p, Tensor) else 0.0
    return f_comp.traces


def mlp_params(seed: int = 1) -> list[Tensor]:
    rng = np.random.default_rng(seed)
    shapes = [(2, 16), (16,), (16, 16), (16,), (16, 1), (1,)]
    return [Tensor(rng.standard_normal(s) * 0.5, requires_grad=True) for s in shapes]


def make_mlp() -> tuple[Callable[..., Any], list[Any]]:
    params = mlp_params()
    w1, b1, w2, b2, w3, b3 = params

    def loss_fn(X: Any, Y: Any) -> Tensor:
        o = ((X @ w1 + b1).tanh() @ w2 + b2).tanh() @ w3 + b3
        return ((o - Y) ** 2).mean()

    return loss_fn, params


def scalar_mlp(
    n: int,
    sizes: tuple[int, ...] = (2, 6, 6, 1),
    seed: int = 5,
    odd: Callable[..., Any] | None = None,
) -> Callable[[], tuple[Callable[..., Any], list[Any]]]:
    """micrograd-style code (a node per * and +) over n samples, summed as a running total.

    ``odd(i, h)`` may change what sample i computes, to make one repetition differ.
    """
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((n, sizes[0])).tolist()
    ys = rng.choice([-1.0, 1.0], n).tolist()
    weights = [
        [(rng.uniform(-1, 1, a).tolist(), 0.0) for _ in range(b)]
        for a, b in itertools.pairwise(sizes)
    ]

    def make() -> tuple[Callable[..., Any], list[Any]]:
        layers = [[([Value(w) for w in ws], Value(b)) for ws, b in layer] for layer in weights]
        params = [p for layer in layers for ws, b in layer for p in (*ws, b)]

        def loss_fn(scale: Any = 1.0) -> Value:
            total = Value(0.0)
            for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
                h: list[Any] = x
                for k, layer in enumerate(layers):
                    acts = [
                        sum((w * xi for w, xi in zip(ws, h, strict=True)), b) for ws, b in layer
                    ]
                    h = acts if k == len(layers) - 1 else [a.relu() for a in acts]
                out = h[0] * scale
                total = total + (odd(i, out) if odd else out - y) ** 2
            return total

        return loss_fn, params

    return make


RNG = np.random.default_rng(0)
X100, Y100 = RNG.standard_normal((100, 2)), RNG.standard_normal((100, 1))


# --- bit equality with eager over many steps, on the five workloads -------------------------------


@pytest.mark.parametrize("rebind", [False, True], ids=["updated in place", "rebound"])
def test_tensor_mlp_matches_eager_over_many_steps(rebind: bool) -> None:
    traces = lockstep(make_mlp, lambda i: (X100, Y100), steps=60, lr=0.1, rebind=rebind)
    assert traces == 1


def test_seed001_circle_on_tensors_matches_eager() -> None:
    data = circle_dataset()
    X = np.array([[x, y] for x, y, _ in data])
    Z = np.array([[z] for _, _, z in data])

    def make() -> tuple[Callable[..., Any], list[Any]]:
        net = CircleTensorNet()
        return (lambda X, Z: squared_error(net(Tensor(X)), Z)), net.parameters()

    assert lockstep(make, lambda i: (X, Z), steps=40, lr=10.0) == 1


def test_seed002_relu_network_matches_eager() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((128, 1000)), rng.standard_normal((128, 1))
    w1, w2 = rng.standard_normal((1000, 100)), rng.standard_normal((100, 1))

    def make() -> tuple[Callable[..., Any], list[Any]]:
        a = Tensor(w1.copy(), requires_grad=True)
        b = Tensor(w2.copy(), requires_grad=True)
        return (lambda x, y: (((x @ a).relu() @ b - y) ** 2).sum()), [a, b]

    assert lockstep(make, lambda i: (Tensor(x), Tensor(y)), steps=8, lr=1e-6) == 1


def test_scalar_mlp_micrograd_style_matches_eager() -> None:
    make = scalar_mlp(12, sizes=(2, 8, 8, 1), seed=3)
    assert lockstep(make, lambda i: (), steps=10, lr=0.01) == 1


def test_seed001_circle_on_values_matches_eager() -> None:
    data = circle_dataset()
    points = [[Value.constant(x), Value.constant(y)] for x, y, _ in data]
    targets = [Value.constant(z) for _, _, z in data]

    def make() -> tuple[Callable[..., Any], list[Any]]:
        net = CircleNet()

        def loss_fn() -> Value:
            preds = [net(p) for p in points]
            errors = [(p - z) ** 2 for p, z in zip(preds, targets, strict=True)]
            return sum_values(errors) / len(points)

        return loss_fn, net.parameters()

    assert lockstep(make, lambda i: (), steps=10, lr=10.0) == 1


def test_fused_layers_match_eager() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((20, 3)), rng.standard_normal((20, 2))

    def make() -> tuple[Callable[..., Any], list[Any]]:
        r = np.random.default_rng(5)
        w1 = Tensor(r.standard_normal((3, 4)), requires_grad=True)
        b1 = Tensor(r.standard_normal(4), requires_grad=True)
        w2 = Tensor(r.standard_normal((4, 2)), requires_grad=True)

        def loss_fn(x: Any, y: Any) -> Tensor:
            h = dense(x, w1, b1, "sigmoid")
            return squared_error(dense(h, w2, None, "relu"), y, "sum")

        return loss_fn, [w1, b1, w2]

    assert lockstep(make, lambda i: (x, y), steps=10, lr=0.05) == 1


# --- arguments, parameters, retracing -----------------------------------------------------------


def test_arguments_are_never_frozen() -> None:
    """Y * 2 and a mask from X > 0 are recomputed on every call, though no gradient flows."""
    w = Tensor(np.array([[0.5, -1.0], [2.0, 0.25]]), requires_grad=True)

    def loss_fn(X: Tensor, Y: Tensor) -> Tensor:
        target = Y * 2
        h = where(X > 0, X @ w, -(X @ w))
        return ((h - target) ** 2).sum()

    f = compile(loss_fn)
    rng = np.random.default_rng(6)
    for _ in range(5):
        X, Y = Tensor(rng.standard_normal((7, 2))), Tensor(rng.standard_normal((7, 2)))
        got = f(X, Y)
        got.backward()
        g_comp = w.grad.copy()
        w.grad = None
        want = loss_fn(X, Y)
        want.backward()
        assert bits(got.data) == bits(want.data)
        assert bits(g_comp) == bits(w.grad)
        w.grad = None
    assert f.traces == 1


def test_array_arguments_are_read_on_every_call() -> None:
    w = Tensor(np.ones((2, 1)), requires_grad=True)
    f = compile(lambda X, y: ((Tensor(X) @ w - y) ** 2).mean())
    a = f(np.ones((3, 2)), np.zeros((3, 1)))
    b = f(np.full((3, 2), 2.0), np.ones((3, 1)))
    assert a.item() == 4.0 and b.item() == 9.0


def test_a_new_shape_or_dtype_retraces() -> None:
    f_eager, _ = make_mlp()
    f = compile(f_eager)
    for n in (100, 30, 100):
        assert bits(f(X100[:n], Y100[:n]).data) == bits(f_eager(X100[:n], Y100[:n]).data)
    assert f.traces == 2
    # float32 Tensors: float32 arrays the eager engine would cast to the weights' float64
    # first, which the trace cannot repeat (the self-check refuses them)
    x32, y32 = Tensor(X100.astype(np.float32)), Tensor(Y100.astype(np.float32))
    assert bits(f(x32, y32).data) == bits(f_eager(x32, y32).data)
    assert f.traces == 3


def test_a_number_argument_is_part_of_the_trace() -> None:
    w = Value(3.0)
    f = compile(lambda k: w * k + 1.0)
    assert f(2.0).data == 7.0 and f(5.0).data == 16.0
    assert f.traces == 2


def test_a_parameter_with_a_new_shape_retraces() -> None:
    w = Tensor(np.ones((2, 3)), requires_grad=True)
    f = compile(lambda x: (x @ w).sum())
    assert f(np.ones((1, 2))).item() == 6.0
    w.data = np.ones((2, 4))
    assert f(np.ones((1, 2))).item() == 8.0
    assert f.traces == 2


def test_each_signature_the_guard_checks_retraces_and_old_ones_are_kept() -> None:
    """The latest trace's guard and the dict of traces agree: every change of what the key
    holds (an argument's class, shape, dtype, requires_grad, one object passed twice) traces
    again, and going back reuses the earlier trace."""
    w = Tensor(np.array([[0.5], [-1.0]]), requires_grad=True)

    def loss_fn(X: Any, Y: Any) -> Tensor:
        return ((X @ w - Y) ** 2).sum()

    f = compile(loss_fn)
    x, y = np.ones((3, 2)), np.ones((3, 1))
    calls = [
        (x, y),
        (Tensor(x), y),  # a Tensor where an array was
        (Tensor(x, requires_grad=True), y),
        (x, np.ones((3, 2))),  # the same shape as x, then x itself twice
        (x, x),
        (x[:, :1].copy(), y),  # (3, 1) @ (2, 1) fails in the trace, as eagerly
        (Tensor(x.astype(np.float32)), y),  # a float32 array would be cast by X @ w eagerly
    ]
    traces = []
    for a in calls:
        try:
            got = f(*a)
        except ValueError:
            traces.append(f.traces)
            continue
        assert bits(got.data) == bits(loss_fn(*a).data)
        traces.append(f.traces)
    assert traces == [1, 2, 3, 4, 5, 5, 6]
    for a in calls[:5]:  # each signature again: its own trace, no new one
        assert bits(f(*a).data) == bits(loss_fn(*a).data)
    assert f.traces == 6


def test_the_same_arrays_again_are_read_afresh_and_a_rebound_one_is_checked() -> None:
    """The guard skips re-reading the shapes of the very arrays of the last call; their numbers
    are still read on every call, and an array put in place by .data = is checked in full."""
    w = Tensor(np.ones((2, 1)), requires_grad=True)

    def eager(X: Any) -> Tensor:
        return (X @ w).sum()

    f = compile(eager)
    x = np.ones((3, 2))
    assert f(x).item() == 6.0 and f(x).item() == 6.0
    x[:] = 2.0  # the same argument array, written in place
    w.data -= 0.5  # the same parameter array, updated in place
    assert f(x).item() == 6.0 and f.traces == 1
    w.data = np.ones((2, 1), dtype=np.float32)  # a new array of another dtype: a new trace
    got = f(Tensor(x, dtype=np.float32))
    want = eager(Tensor(x, dtype=np.float32))
    assert f.traces == 2 and got.dtype == want.dtype and bits(got.data) == bits(want.data)
    w.data = np.full((2, 1), 0.25)  # float64 again: the first trace, kept for its signature
    assert f(x).item() == 3.0 and f.traces == 2
    w.data += 0.25  # in place again: the new array is the one the guard remembers
    assert f(x).item() == 6.0 and f.traces == 2


def test_an_array_argument_is_a_tensor_in_the_trace_and_the_self_check_sees_the_difference() -> (
    None
):
    """An array enters the trace as a Tensor of its dtype; eagerly, an array beside a float32
    Tensor takes float32. The outputs' dtypes differ: the self-check refuses, naming them."""
    w = Tensor(np.ones((2, 1), dtype=np.float32), requires_grad=True)
    f = compile(lambda X: (X @ w).sum())
    with pytest.raises(CompileError, match="dtype float64 compiled, float32 eager"):
        f(np.ones((3, 2)))


def test_an_argument_reshaped_in_place_is_traced_again_not_broadcast() -> None:
    """The very array of the last call, reshaped in place (a.shape = ...): the replay would
    broadcast (100, 1) against (1, 100) into a (100, 100) loss, silently wrong."""
    w = Tensor(np.full((1, 1), 0.5), requires_grad=True)

    def eager(X: Any, Y: Any) -> Tensor:
        return ((X @ w - Y) ** 2).mean()

    f = compile(eager)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 1)), rng.normal(size=(100, 1))
    f(x, y)
    f(x, y)
    y.shape = (1, 100)
    got, want = f(x, y), eager(x, y)
    assert f.traces == 2 and bits(got.data) == bits(want.data)


@pytest.mark.parametrize("how", ["in place", "rebound", "an argument rebound", "a Value"])
def test_data_set_between_the_compiled_forward_and_backward_is_refused(how: str) -> None:
    """As in the eager pass: the generated backward reads the leaves again, so a gradient taken
    after their data changed would mix the old forward with the new data."""
    if how == "a Value":
        v = Value(2.0, label="v")
        fv = compile(lambda x: v * v * x)
        fv(Value(1.0)).backward()
        v.grad = 0.0
        loss_v = fv(Value(1.0))
        v.data -= 0.5
        with pytest.raises(
            RuntimeError, match=r"'v' \(now 1.5\) was changed after compiled used it"
        ):
            loss_v.backward()
        assert v.grad == 0.0
        fv(Value(1.0)).backward()  # a forward run again after the change is fine
        assert v.grad == 3.0
        return
    w = Tensor(np.array([1.0, -2.0]), requires_grad=True, label="w")
    x = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    f = compile(lambda x: (x * w * w).sum())
    f(x).backward()
    w.grad = x.grad = None
    loss = f(x)
    if how == "in place":
        w.data -= 0.5
    elif how == "rebound":
        w.data = w.data - 0.5
    else:
        x.data = x.data + 1.0
    with pytest.raises(RuntimeError, match="was changed after compiled used it"):
        loss.backward()
    assert w.grad is None and x.grad is None  # nothing written
    f(x).backward()
    want_w = 2.0 * x.data * w.data
    np.testing.assert_array_equal(w.grad, want_w)


def test_each_leaf_owns_its_gradient_array() -> None:
    """A gradient sent to two leaves, or the caller's own grad=, is copied; adding into a
    leaf's .grad in place touches nothing else (as Tensor._accumulate gives it)."""
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    f = compile(lambda x: ((a + b) * x).sum())
    x = np.array([5.0, 6.0])
    f(x)
    f(x).backward()
    assert a.grad is not b.grad
    a.grad += 1.0
    assert b.grad.tolist() == [5.0, 6.0]

    g = compile(lambda x: a + x)
    seed = np.array([1.0, 1.0])
    a.grad = None
    g(x)
    g(x).backward(grad=seed)
    seed[:] = 7.0
    assert a.grad.tolist() == [1.0, 1.0]


def test_backward_twice_accumulates_as_eager_does() -> None:
    f_eager, p_e = make_mlp()
    f_plain, p_c = make_mlp()
    f = compile(f_plain)
    f(X100, Y100)  # the trace
    le, lc = f_eager(X100, Y100), f(X100, Y100)
    for _ in range(2):
        le.backward()
        lc.backward()
    for pe, pc in zip(p_e, p_c, strict=True):
        assert bits(pc.grad) == bits(pe.grad)
    assert bits(lc.grad) == bits(le.grad)


def test_several_outputs() -> None:
    w = Tensor(np.array([[1.0], [2.0]]), requires_grad=True)

    def step(x: Any) -> tuple[Tensor, Tensor]:
        scores = Tensor(x) @ w
        return (scores**2).sum(), scores

    f = compile(step)
    f(np.ones((2, 2)))
    loss, scores = f(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert scores.data.tolist() == [[1.0], [2.0]] and loss.item() == 5.0
    loss.backward()
    assert w.grad.tolist() == [[2.0], [4.0]]


# --- refusals and fallbacks -------------------------------------------------------------------


def FLOAT(loss: Any) -> Any:
    return loss * float(loss)


@pytest.mark.parametrize(
    "body",
    [
        lambda loss: loss * 2 if loss > 1 else loss,
        FLOAT,
        lambda loss: loss * loss.item(),
        lambda loss: loss if bool(loss) else -loss,
    ],
    ids=["if loss > 1", "float()", ".item()", "bool()"],
)
@pytest.mark.parametrize("kind", ["Value", "Tensor"])
def test_control_flow_on_a_traced_value_is_refused(body: Callable[[Any], Any], kind: str) -> None:
    if kind == "Value":
        w = Value(2.0)
        f = compile(lambda x: body(w * x))
        arg: Any = Value(3.0)
    else:
        w = Tensor(2.0, requires_grad=True)
        f = compile(lambda x: body((w * x).sum()))
        arg = Tensor(3.0)
    if kind == "Tensor" and body is FLOAT:  # a Tensor has no float(), eagerly either
        with pytest.raises(TypeError, match="not 'Tensor'"):
            f(arg)
        return
    with pytest.raises(CompileError, match=r"test_compile.py:\d+: .*where\(cond, a, b\).*without"):
        f(arg)


def test_a_mask_used_as_a_python_bool_is_refused() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    f = compile(lambda x: w.sum() if (x > 0).any() else -w.sum())
    with pytest.raises(CompileError, match="where"):
        f(Tensor(np.ones(3)))


def test_an_error_in_the_generated_forward_is_raised_from_its_line() -> None:
    """No eager rerun hides it: the generated line raises, and the traceback shows that line
    (the source is registered with linecache). A Value step runs on the scalar program's tape,
    and raises from the op's own rule, naming the value."""
    w = Tensor(np.array([2.0]), requires_grad=True)
    f = compile(lambda x: (Tensor(x) @ w).log().sum())
    f(np.array([[1.0]]))
    assert f(np.array([[1.5]])).data == pytest.approx(np.log(3.0))
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError) as compiled_error:
        f(np.array([[-1.0]]))
    assert f.stats == {"traces": 1, "replays": 2, "eager": 0}
    shown = "".join(traceback.format_tb(compiled_error.tb))
    assert "<backproplab.compile forward" in shown and "log(" in shown

    v = Value(2.0)
    g = compile(lambda x: (x * v).log())
    g(Value(1.0))
    assert g(Value(1.5)).data == pytest.approx(np.log(3.0))
    with pytest.raises(ValueError, match=r"log\(-2\.0\)"):
        g(Value(-1.0))
    assert g.stats == {"traces": 1, "replays": 2, "eager": 0}


def test_an_error_in_the_generated_backward_writes_nothing() -> None:
    w = Value(2.0)
    f = compile(lambda x: (x * w).sqrt() + w)
    f(Value(1.0)).backward()
    w.grad = 0.0
    loss = f(Value(0.0))  # sqrt(0) is fine; its derivative 0.5 / 0 is not
    with pytest.raises(ArithmeticError) as compiled_error:
        loss.backward()
    assert w.grad == 0.0
    assert "is infinite: float division by zero" in str(compiled_error.value)


def test_create_graph_through_a_compiled_result_differentiates_again() -> None:
    """A recorded pass runs the function again eagerly on the op's parents: the gradient is a
    node, and its own gradient is the eager engine's (d/dw of sum(2 w x^2 ...))."""
    w = Tensor(np.array([0.5, -1.5]), requires_grad=True)
    w_e = Tensor(w.data.copy(), requires_grad=True)
    f = compile(lambda x: ((x * w) ** 3).sum())
    x = np.array([2.0, 3.0])
    for _ in range(2):
        for ww, fn in ((w, f), (w_e, lambda x: ((x * w_e) ** 3).sum())):
            ww.grad = None
            fn(x).backward(create_graph=True)
            assert isinstance(ww.grad, Tensor)
            gw = ww.grad
            ww.grad = None
            gw.sum().backward()
        assert bits(w.grad) == bits(w_e.grad)
        np.testing.assert_allclose(w.grad, 6 * x**3 * w.data)


def test_a_function_must_return_nodes() -> None:
    with pytest.raises(CompileError, match="must return a Value or a Tensor"):
        compile(lambda x: 3.0)(Tensor(1.0))


def test_a_node_with_an_outside_graph_is_refused() -> None:
    w = Tensor(np.ones(2), requires_grad=True)
    h = w * 2.0
    with pytest.raises(CompileError, match="detach"):
        compile(lambda x: (h * x).sum())(Tensor(np.ones(2)))


def test_source_before_any_call_is_refused() -> None:
    with pytest.raises(CompileError, match="call the compiled function first"):
        _ = compile(lambda: Value(1.0)).source


# --- the source ---------------------------------------------------------------------------------

HOSTILE = '"); import os; ("'
OUR_NAME = re.compile(r"^(x|p|t|g|k)\d+$")


def test_source_never_holds_a_users_string() -> None:
    a = Value(2.0, label=HOSTILE)
    b = Value(-3.0, label="__import__('os')")
    w = Tensor(np.ones((2, 2)), requires_grad=True, name=HOSTILE)

    fv = compile(lambda x: (a * x + b).tanh() * a)
    fv(Value(0.5, label=HOSTILE)).backward()
    ft = compile(lambda X: ((Tensor(X, name=HOSTILE) @ w).tanh() ** 2).sum())
    ft(np.ones((3, 2))).backward()
    for f in (fv, ft):
        source = f.source
        assert HOSTILE not in source and "import" not in source and "os" not in source.split()
        assert "__import__" not in source
    for f in (ft,):  # a Value step's program is a table the tape reads, not Python source
        tree = ast.parse(f.source)
        strings = [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
        assert strings == []
        program = f._last.program  # type: ignore[union-attr]
        program = getattr(getattr(program, "scalar", None), "_program", program)  # a Value step
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                assert (
                    OUR_NAME.match(node.id)
                    or node.id in ("A", "L", "S", "G")
                    or node.id in program.globals
                    or node.id.startswith(("forward", "backward"))
                ), node.id


def test_the_source_reads_as_the_math() -> None:
    f_plain, _ = make_mlp()
    f = compile(f_plain)
    f(X100, Y100)
    source = f.source
    assert "t0 = dot(x0, p0)  # MatMul" in source  # a small layer's product: see below
    assert "tanh(" in source and "def backward" in source
    assert source.startswith("# The names of this code:")
    assert re.search(r"    return \((g\d+|r\d+), ", source)  # a gradient per parent of the op


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_products_written_as_dot_give_the_bits_of_matmul(dtype: Any) -> None:
    """The code writes a small 2-D product as np.dot (_Emitter.matmul): @'s bits, signed
    zeros, infinities and NaN included. Shapes of a layer with one input (an inner dimension
    of 1 in its forward) and one output (the same in its backward); a big product stays @."""
    rng = np.random.default_rng(5)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-310, -3.0], dtype=dtype)

    def spiked(shape: tuple[int, ...]) -> np.ndarray:
        a = rng.standard_normal(shape).astype(dtype)
        a.flat[rng.choice(a.size, min(a.size, 7), replace=False)] = special[: min(a.size, 7)]
        return a

    X, W, V = spiked((6, 1)), spiked((1, 4)), spiked((4, 1))
    G = spiked((6, 1))

    def f(X: Any, W: Any, V: Any) -> Tensor:
        return (X @ W).tanh() @ V

    eager = [Tensor(a.copy(), requires_grad=True) for a in (X, W, V)]
    comp = [Tensor(a.copy(), requires_grad=True) for a in (X, W, V)]
    g = compile(f)
    with np.errstate(all="ignore"):  # inf - inf and 0 * inf on purpose
        g(*comp)  # the trace
        out_c, out_e = g(*comp), f(*eager)
        out_c.backward(G.copy())
        out_e.backward(G.copy())
    assert "dot(" in g.source and "@" not in g.source
    assert out_c.dtype == out_e.dtype == dtype
    assert bits(out_c.data) == bits(out_e.data)
    for c, e in zip(comp, eager, strict=True):
        assert bits(c.grad) == bits(e.grad)
    big = compile(lambda A, B: (A @ B).sum())
    big(np.ones((300, 300), dtype=dtype), Tensor(np.ones((300, 300), dtype=dtype)))
    assert "@" in big.source and "dot(" not in big.source


# --- the inline forms are the namespace functions ------------------------------------------------


@pytest.mark.parametrize("key", sorted(_INLINE, key=lambda k: (k[0].__name__, k[1])), ids=str)
def test_each_inline_form_is_its_namespace_function(key: tuple[Any, str]) -> None:
    space, name = key
    real = getattr(space, name)
    rng = np.random.default_rng(7)
    assert space is maths_mod.ArrayMath  # a Value trace has no generated code (scalar.py)
    x = rng.standard_normal((5, 3))
    x[0, 0] = 0.0
    cases: list[tuple[Any, ...]] = {
        "sum": [(x, None, False), (x, (0,), True), (x, 1, False)],
        "amax": [(x, None, False), (x, (0,), True)],
        "amin": [(x, None, False), (x, 1, True)],
        "reshape": [(x, (3, 5))],
        "transpose": [(x, (1, 0))],
        "mT": [(x,)],
        "dot": [
            (x, rng.standard_normal((3, 4))),
            (rng.standard_normal((300, 400)), rng.standard_normal((400, 3))),
        ],
        "sigmoid": [(x * 1000,), (x.astype(np.float32),)],
        "sum_squares": [(x,)],
        "row_sum": [(x,)],
        "positive": [(x,)],
        "relu": [(x,)],
    }[name]
    for args in cases:
        em = _Emitter(_Program(Tensor), "t")
        syms = [
            _Sym(em, f"x{i}", a)
            if i < 2 and not isinstance(a, (tuple, int, type(None), bool))
            else a
            for i, a in enumerate(args)
        ]
        out = _INLINE[key](em, *syms)
        want = real(*args)
        assert bits(out.val) == bits(want)
        # and the emitted line computes it too
        env = dict(em.program.globals)
        env.update({f"x{i}": a for i, a in enumerate(args)})
        for ln in em.lines:
            env[ln.target] = eval(ln.expr, env)
        assert bits(env[out.name]) == bits(want)
        assert type(env[out.name]) is type(want)


# --- nn's trainer ---------------------------------------------------------------------------------


def test_copying_a_compiled_function_keeps_it_working() -> None:
    f_plain, _ = make_mlp()
    f = compile(f_plain)
    g = copy.copy(f)
    assert bits(g(X100, Y100).data) == bits(f_plain(X100, Y100).data)


# --- size: chunks and the eager fallback ----------------------------------------------------------


def test_code_in_many_chunks_matches_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    module = sys.modules["backproplab.autograd.compile.source"]
    monkeypatch.setattr(module, "CHUNK", 4)
    traces = lockstep(make_mlp, lambda i: (X100, Y100), steps=5, lr=0.1)
    assert traces == 1
    f_plain, _ = make_mlp()
    f = compile(f_plain)
    f(X100, Y100)
    assert "def forward_3(" in f.source and "def backward0_2(" in f.source


def test_a_graph_above_max_ops_is_refused_or_run_eagerly_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    module = sys.modules["backproplab.autograd.compile.api"]
    monkeypatch.setattr(module, "MAX_OPS", 5)
    f_plain, params = make_mlp()
    with pytest.raises(CompileError, match=r"more than compile\.MAX_OPS"):
        compile(f_plain)(X100, Y100)
    f = compile(f_plain, fallback="eager")
    with pytest.warns(RuntimeWarning, match="runs eagerly: .*MAX_OPS"):
        f(X100, Y100)
    f(X100, Y100).backward()  # no second warning (pytest would turn one into an error here)
    assert f.stats == {"traces": 0, "replays": 0, "eager": 2}
    assert params[0].grad is not None


def test_numpy_on_data_of_a_traced_tensor_is_refused() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    f = compile(lambda x: (x * w).sum() * float(np.clip((x * w).data, 0, 1).sum()))
    with pytest.raises(CompileError, match=r"\.data"):
        f(Tensor(np.ones(3)))
    shape_only = compile(lambda x: (x * w).sum() * (x * w).shape[0])
    assert shape_only(Tensor(np.ones(3))).item() == 9.0
    with pytest.raises(CompileError, match=r"test_compile.py:\d+: \.data"):
        compile(lambda x: (x * w).sum() * (x * w).data.shape[0])(Tensor(np.ones(3)))


def test_a_leaf_takes_the_generated_gradient_array_without_a_copy() -> None:
    f_plain, params = make_mlp()
    f = compile(f_plain)
    f(X100, Y100)
    f(X100, Y100).backward()
    for p in params:
        assert p.grad.flags.writeable and p.grad.base is None
        p.grad += 1.0  # the leaf's own: adding into it in place touches nothing else


def test_backward_with_a_given_gradient_matches_eager() -> None:
    """An explicit grad= takes its own generated backward (the implied 1 is folded in the other)."""
    f_eager, p_e = make_mlp()
    f_plain, p_c = make_mlp()
    f = compile(lambda X, Y: f_plain(X, Y) * 1.0)
    seed = np.float64(0.37)
    for _ in range(3):
        (f_eager(X100, Y100) * 1.0).backward(grad=seed)
        f(X100, Y100).backward(grad=seed)
        f(X100, Y100).backward()
        (f_eager(X100, Y100) * 1.0).backward()
    for pe, pc in zip(p_e, p_c, strict=True):
        assert bits(pc.grad) == bits(pe.grad)


def test_the_forward_saves_only_what_the_backward_reads() -> None:
    """S holds the values the backward reads again (the input, both activations, the error)
    and the copies of the array arguments (a recorded backward checks them), not every value
    of the forward; a backward built later, for a gradient of another kind, reads no other."""
    f_plain, _ = make_mlp()
    f = compile(f_plain)
    f(X100, Y100)
    loss = f(X100, Y100)
    saved = re.findall(r"S\.extend\(\((.*)\)\)", f.source)
    read = re.findall(r"(\w+) = S\[\d+\]", f.source)
    assert saved == ["x0, x1, t2, t5, t8"] and sorted(set(read)) == ["t2", "t5", "t8", "x0"]
    assert len(loss.params[0].saved) == 5

    w = Tensor(RNG.standard_normal((2, 3)), requires_grad=True)
    w_e = Tensor(w.data.copy(), requires_grad=True)
    g = compile(lambda X: (Tensor(X) @ w).tanh() * 2.0)
    g(X100)
    out, out_e = g(X100), (Tensor(X100) @ w_e).tanh() * 2.0
    assert len(out.params[0].saved) == 2  # x0 and the tanh
    for seed in (np.ones((100, 3)), np.full((100, 3), 0.5, dtype=np.float32)):
        out.backward(seed)
        out_e.backward(seed)
        assert bits(w.grad) == bits(w_e.grad)


# --- tracing in one thread leaves other threads' eager code alone -------------------------------


def test_eager_code_in_another_thread_runs_unchanged_while_one_traces() -> None:
    import threading

    inside, release = threading.Event(), threading.Event()
    w = Value(0.5)

    def slow(x: Value) -> Value:
        y = x * w
        inside.set()
        assert release.wait(10)
        return y * y

    f = compile(slow)
    lt_before = Value.__dict__["__lt__"]
    errors: list[BaseException] = []

    def trace() -> None:
        try:
            f(Value(3.0))
        except BaseException as e:  # handed back to the test
            errors.append(e)

    th = threading.Thread(target=trace)
    th.start()
    assert inside.wait(10)
    try:
        # Python decisions on values, refused inside a trace, are this thread's own business.
        v = Value(2.0) * 3.0
        assert v > 1 and bool(v) and float(v) == 6.0 and v.item() == 6.0
        t = Tensor(np.array([1.0, -2.0]), requires_grad=True)
        mask = t > 0
        assert isinstance(mask, np.ndarray) and mask.tolist() == [True, False]
        (t * t).sum().backward()
        np.testing.assert_array_equal(t.grad, [2.0, -4.0])
    finally:
        release.set()
        th.join(10)
    assert not errors
    # what the other thread ran was not recorded into the trace: the replay is the function's
    x = Value(4.0)
    out = f(x)
    out.backward()
    assert out.data == (4.0 * 0.5) ** 2 and x.grad == 2 * 4.0 * 0.5**2
    assert Value.__dict__["__lt__"] is lt_before


def test_two_threads_trace_at_once_and_the_hooks_go_when_both_are_done() -> None:
    import threading

    originals = {n: Value.__dict__[n] for n in ("__lt__", "__bool__", "__init__")}
    barrier = threading.Barrier(2, timeout=10)
    results: dict[int, float] = {}
    errors: list[BaseException] = []

    def run(k: int) -> None:
        def fn(x: Value) -> Value:
            y = x * float(k)
            barrier.wait()  # both traces are open here at once
            return y + x

        try:
            f = compile(fn)
            f(Value(1.0))
            x = Value(2.0)
            out = f(x)
            out.backward()
            results[k] = out.data + x.grad
        except BaseException as e:  # handed back to the test
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in (2, 5)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert not errors
    assert results == {2: 2.0 * 3 + 3.0, 5: 2.0 * 6 + 6.0}
    assert {n: Value.__dict__[n] for n in originals} == originals


# --- a scalar trace that repeats one block (the scalar program batches it): as eager


def test_repeated_samples_match_eager() -> None:
    make = scalar_mlp(12)
    assert lockstep(make, lambda i: (), steps=10, lr=0.05) == 1


def test_a_big_scalar_trace_matches_eager() -> None:
    """30 samples of MLP(2, [16, 16, 1]): about 19,000 ops."""
    make = scalar_mlp(30, sizes=(2, 16, 16, 1))
    assert lockstep(make, lambda i: (), steps=2, lr=0.01) == 1


def test_an_argument_read_by_every_repetition_is_read_on_every_call() -> None:
    make = scalar_mlp(8)
    scales = [Value(1.0), Value(0.5), Value(-2.0), Value(3.0)]
    assert lockstep(make, lambda i: (scales[i % 4],), steps=8, lr=0.02) == 1


def test_signed_zero_gradients_sum_as_eager_does() -> None:
    """A weight behind a ReLU that is off for every sample gets -0.0 from each: eager sums them to
    -0.0, so the compiled sums must start from nothing rather than from 0.0."""
    xs = [0.5 + 0.1 * i for i in range(10)]

    def make() -> tuple[Callable[..., Any], list[Any]]:
        w, v = Value(-1.0), Value(0.3)

        def loss_fn() -> Value:
            total = Value(0.0)
            for x in xs:
                total = total + ((w * x).relu() + v * x - 1.0) ** 2
            return total

        return loss_fn, [w, v]

    f_eager, (w, _) = make()
    f_eager().backward()
    assert w.grad == 0.0 and math.copysign(1.0, w.grad) == -1.0
    assert lockstep(make, lambda i: (), steps=3, lr=0.01) == 1


@pytest.mark.parametrize(
    "odd",
    [
        lambda i, o: (o.tanh() if i == 5 else o) - 1.0,  # one sample with an extra op
        lambda i, o: o - (1.0 if i == 5 else -1.0),  # one sample's target differs only
        lambda i, o: o - 1.0 if i % 3 else o + 1.0,  # every third sample alike
    ],
    ids=["an extra op in one sample", "one number differs", "period of three samples"],
)
def test_a_block_that_differs_in_one_sample_matches_eager(odd: Callable[..., Any]) -> None:
    make = scalar_mlp(12, odd=odd)
    assert lockstep(make, lambda i: (), steps=4, lr=0.05) == 1


def test_a_rule_deciding_on_a_number_that_differs_matches_eager() -> None:
    """x ** p's rule branches on p (p == 2), with p different per sample."""
    ps = [2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]

    def make() -> tuple[Callable[..., Any], list[Any]]:
        w = Value(0.7)

        def loss_fn() -> Value:
            total = Value(0.0)
            for i, p in enumerate(ps):
                total = total + ((w * (i + 1.0)).tanh() + 0.5) ** p
            return total

        return loss_fn, [w]

    assert lockstep(make, lambda i: (), steps=3, lr=0.01) == 1


def test_a_scalar_source_never_holds_a_users_string() -> None:
    w = [Value(0.1 * k, label=HOSTILE) for k in range(3)]

    def loss_fn(x: Value) -> Value:
        total = Value(0.0, label=HOSTILE)
        for i in range(6):
            half = Value.constant(0.5 + i % 2, label=HOSTILE)  # a constant made inside
            total = total + (w[0] * x + w[1] * float(i) + w[2]).tanh() * half
        return total

    f = compile(loss_fn)
    f(Value(0.5, label=HOSTILE)).backward()
    assert HOSTILE not in f.source and "import" not in f.source


def test_an_output_from_inside_the_repetitions_is_returned_as_eager_does() -> None:
    w = Value(0.3)

    def step() -> tuple[Value, Value, Value]:
        total, third, last = Value(0.0), None, None
        for i in range(8):
            last = (w * (i + 1.0)).tanh() * (i - 2.0)
            third = last if i == 2 else third
            total = total + last
        return total, third, last  # type: ignore[return-value]

    f = compile(step)
    f()
    got = f()
    want = step()
    assert [bits(g.data) for g in got] == [bits(x.data) for x in want]
    got[0].backward()
    g_compiled = w.grad
    w.grad = 0.0
    want[0].backward()
    assert bits(g_compiled) == bits(w.grad)


def test_two_running_sums_and_code_after_the_samples_match_eager() -> None:
    """Two values carried from sample to sample, and ops after the last sample that read its
    values."""
    rng = np.random.default_rng(8)
    data = [(x, y) for x, y in rng.standard_normal((9, 2)).tolist()]

    def make() -> tuple[Callable[..., Any], list[Any]]:
        w, b = Value(0.4), Value(-0.1)

        def loss_fn() -> Value:
            s, m = Value(0.0), Value(0.0)
            for x, y in data:
                m = m * 0.5 + (w * x + b).tanh() - y  # a moving sum, carried
                s = s + m**2  # and the total, carried
            return (s * 0.1).tanh() * s

        return loss_fn, [w, b]

    assert lockstep(make, lambda i: (), steps=5, lr=0.1) == 1


def random_op(kind: str, h: Value, w: Value, x: list[float], k: int) -> Value:
    if kind in ("tanh", "relu", "sigmoid"):
        return getattr(h, kind)()  # type: ignore[no-any-return]
    if kind == "mul":
        return h * w
    if kind == "add":
        return h + w * x[1]
    if kind == "sub":
        return h - x[2]
    if kind == "square":
        return h**2
    return h * x[k % 3] if kind == "times_x" else h + w


@pytest.mark.parametrize("seed", range(24))
def test_random_repeated_steps_match_eager(seed: int) -> None:
    """Random per-sample blocks (one sample sometimes different, a second carried value, code
    after the samples), three steps each: the compiled step is the eager engine to the bit,
    overflows and NaN included."""
    rnd = np.random.default_rng(seed)
    kinds = ["mul", "add", "tanh", "relu", "sub", "square", "times_x", "plus_w", "sigmoid"]
    plan = [str(k) for k in rnd.choice(kinds, int(rnd.integers(2, 8)))]
    n_w, n = int(rnd.integers(1, 5)), int(rnd.integers(3, 10))
    data = rnd.uniform(-2, 2, (n, 3)).tolist()
    odd = int(rnd.integers(0, n)) if rnd.random() < 0.3 else -1
    two, after = rnd.random() < 0.5, str(rnd.choice(["none", "tanh", "square", "div"]))
    start = rnd.uniform(-1, 1, n_w).tolist()

    def make() -> tuple[Callable[..., Any], list[Any]]:
        ws = [Value(w) for w in start]

        def loss_fn() -> Value:
            s, m = Value(0.0), Value(0.0)
            for i, x in enumerate(data):
                h = ws[0] * x[0]
                for k, kind in enumerate(plan):
                    h = random_op(kind, h, ws[k % n_w], x, k)
                h = h.tanh() if i == odd else h
                if two:
                    m = m * 0.5 + h
                    s = s + m * m
                else:
                    s = s + h
            if after == "tanh":
                return s.tanh()
            return s * s if after == "square" else s / 7.0 if after == "div" else s

        return loss_fn, ws

    assert lockstep(make, lambda i: (), steps=3, lr=0.01) == 1


@pytest.mark.parametrize(
    "start",
    ["a leaf", "a constant", "a weight the block reads too", "a value computed before"],
)
def test_what_the_running_sum_starts_from(start: str) -> None:
    """The first sample reads the sum's start where the others read the sum so far: whatever
    that start is, the compiled step matches eager to the bit."""
    xs = [0.5, -1.0, 2.0, 0.25, -0.75, 1.5]

    def make() -> tuple[Callable[..., Any], list[Any]]:
        w, b = Value(0.3), Value(-0.2)

        def loss_fn() -> Value:
            s = {
                "a leaf": lambda: Value(0.0),
                "a constant": lambda: Value.constant(0.0),
                "a weight the block reads too": lambda: w,
                "a value computed before": lambda: (w * b).tanh(),
            }[start]()
            for x in xs:
                s = s + (w * x + b).tanh() * w
            return s

        return loss_fn, [w, b]

    assert lockstep(make, lambda i: (), steps=4, lr=0.05) == 1
