"""Graph behaviour of the engine shared by Value and Tensor.

Per-op derivatives live in test_ops.py; this file is about what the backward driver does with a
graph as a whole: reuse, depth, repeated passes, grad mode, memory, errors, dtypes and custom ops.
"""

from __future__ import annotations

import contextlib
import gc
import math
import random
import re
import sys
import tracemalloc
import weakref
from collections.abc import Iterator

import numpy as np
import numpy.testing as npt
import pytest
from backproplab.autograd import (
    OPS,
    AnomalyError,
    Node,
    Op,
    Tensor,
    Value,
    concatenate,
    detect_anomaly,
    dot,
    enable_grad,
    grad,
    gradcheck,
    gradients,
    is_grad_enabled,
    maximum,
    no_grad,
    where,
)

# --- reused nodes accumulate -----------------------------------------------------------------


def test_value_added_to_itself_gets_both_contributions() -> None:
    a = Value(3.0)
    (a + a).backward()
    assert a.grad == 2.0


def test_value_multiplied_by_itself_gets_both_contributions() -> None:
    a = Value(3.0)
    (a * a).backward()
    assert a.grad == 6.0


def test_value_reuse_two_levels_deep() -> None:
    a = Value(3.0)
    b = a + a
    c = b + b
    c.backward()
    assert (a.grad, b.grad, c.grad) == (4.0, 2.0, 1.0)


def test_tensor_reuse_accumulates() -> None:
    x = np.array([1.0, -2.0, 0.5])
    a = Tensor(x, requires_grad=True)
    (a + a).sum().backward()
    npt.assert_array_equal(a.grad, [2.0, 2.0, 2.0])

    a = Tensor(x, requires_grad=True)
    (a * a).sum().backward()
    npt.assert_array_equal(a.grad, 2 * x)

    a = Tensor(x, requires_grad=True)
    b = a + a
    c = b + b
    c.sum().backward()
    npt.assert_array_equal(a.grad, [4.0, 4.0, 4.0])
    npt.assert_array_equal(b.grad, [2.0, 2.0, 2.0])


def test_value_diamond() -> None:
    # x feeds two branches that meet again: both paths must reach x, each exactly once.
    x = Value(0.4)
    u = x.tanh()
    v = x.exp()
    y = u * v
    y.backward()
    t, e = math.tanh(0.4), math.exp(0.4)
    assert x.grad == pytest.approx((1 - t * t) * e + t * e, rel=1e-14)
    assert u.grad == pytest.approx(e, rel=1e-14)
    assert v.grad == pytest.approx(t, rel=1e-14)


def test_tensor_diamond() -> None:
    x0 = np.array([-0.3, 0.4, 1.2])
    x = Tensor(x0, requires_grad=True)
    (x.tanh() * x.exp()).sum().backward()
    t, e = np.tanh(x0), np.exp(x0)
    npt.assert_allclose(x.grad, (1 - t * t) * e + t * e, rtol=1e-14)


# --- depth -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_million_node_value_chain_at_default_recursion_limit() -> None:
    # The engine claims an iterative backward: a recursive one would need a million frames.
    assert sys.getrecursionlimit() == 1000
    n = 1_000_000
    x0 = Value(0.5)
    x = x0
    for _ in range(n):
        x = x.tanh()
    x.backward()

    # d tanh^n(x0)/dx0 = prod_k (1 - t_k^2) with t_k the k-th iterate, computed here on floats.
    t, expected = 0.5, 1.0
    for _ in range(n):
        t = math.tanh(t)
        expected *= 1.0 - t * t
    assert x.data == t
    assert x0.grad == pytest.approx(expected, rel=1e-9)
    del x  # freeing a million-deep chain must not recurse either


def test_ten_thousand_deep_tensor_chain() -> None:
    start = np.array([0.5, -1.0, 2.0])
    x0 = Tensor(start, requires_grad=True)
    x = x0
    for _ in range(10_000):
        x = x.tanh()
    x.sum().backward()

    t, expected = start.copy(), np.ones(3)
    for _ in range(10_000):
        t = np.tanh(t)
        expected *= 1.0 - t * t
    npt.assert_allclose(x0.grad, expected, rtol=1e-9)


# --- backward twice --------------------------------------------------------------------------


def _reused_value_graph() -> tuple[list[Value], Value]:
    a, b = Value(0.6), Value(-1.3)
    h = a * b  # used three times below
    k = h.tanh() + h  # used twice below
    y = k * h + k
    return [a, b, h, k, y], y


def test_value_backward_twice_adds_the_same_gradients_again() -> None:
    # An engine that sends each node's accumulated .grad onward (rather than this pass's
    # contribution) would push the first pass through again below every reused node, giving
    # more than 2x there. The documented behaviour is exactly 2x, leaves and intermediates alike.
    nodes, y = _reused_value_graph()
    y.backward()
    first = [n.grad for n in nodes]
    y.backward()
    assert [n.grad for n in nodes] == [2 * g for g in first]


def test_value_backward_first_pass_is_right_on_reused_nodes() -> None:
    # 2x of a wrong first pass would still be 2x: pin the first pass to the closed form too.
    (a, b, h, k, y), _ = _reused_value_graph()
    y.backward()
    hv = -0.78
    kv = math.tanh(hv) + hv
    dk = hv + 1.0
    dh = kv + dk * (1.0 - math.tanh(hv) ** 2 + 1.0)
    assert y.grad == 1.0
    assert k.grad == pytest.approx(dk, rel=1e-14)
    assert h.grad == pytest.approx(dh, rel=1e-14)
    assert a.grad == pytest.approx(dh * -1.3, rel=1e-14)
    assert b.grad == pytest.approx(dh * 0.6, rel=1e-14)


def test_tensor_backward_twice_adds_the_same_gradients_again() -> None:
    a = Tensor([0.6, -0.2], requires_grad=True)
    b = Tensor([[-1.3], [0.7]], requires_grad=True)  # broadcasts against a
    h = a * b
    k = h.tanh() + h
    y = (k * h + k).sum()
    nodes = [a, b, h, k, y]
    y.backward()
    first = [n.grad.copy() for n in nodes]
    y.backward()
    for node, g in zip(nodes, first, strict=True):
        npt.assert_array_equal(node.grad, 2 * g)


def test_two_graphs_sharing_a_leaf_accumulate_into_it() -> None:
    x = Value(0.8)
    (x * x).backward()
    x.exp().backward()
    assert x.grad == pytest.approx(2 * 0.8 + math.exp(0.8), rel=1e-14)

    t = Tensor([0.8, -0.1], requires_grad=True)
    (t * t).sum().backward()
    t.exp().sum().backward()
    npt.assert_allclose(t.grad, 2 * t.data + np.exp(t.data), rtol=1e-14)


def test_gradients_leaves_grad_untouched_and_zero_for_unused_inputs() -> None:
    x, unused = Value(2.0), Value(5.0)
    y = x * x
    gx, gu = gradients(y, [x, unused])
    assert (gx, gu) == (4.0, 0.0)
    assert x.grad == 0.0 and y.grad == 0.0

    t, other = Tensor([1.0, 2.0], requires_grad=True), Tensor([[3.0]], requires_grad=True)
    gt, go = gradients((t * t).sum(), [t, other])
    npt.assert_array_equal(gt, [2.0, 4.0])
    npt.assert_array_equal(go, [[0.0]])
    assert t.grad is None


def test_leaf_gradients_are_separate_writable_arrays() -> None:
    # Gradient clipping and in-place zeroing write into .grad; two leaves must not share one
    # array (or a read-only broadcast view), or scaling one leaf's gradient changes the other's.
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad, b.grad)
    a.grad *= 0.5
    npt.assert_array_equal(b.grad, np.ones(3))


def test_leaf_gradient_does_not_alias_the_grad_passed_to_backward() -> None:
    # The caller's array is theirs to reuse: writing into it afterwards must not change .grad.
    x = Tensor(np.ones(3), requires_grad=True)
    seed = np.array([1.0, 2.0, 3.0])
    (x + 0.0).backward(seed)
    seed[:] = 0.0
    npt.assert_array_equal(x.grad, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("count", [1, 2, 3])
def test_each_leaf_owns_its_gradient_array(restore_ops, count) -> None:
    # A rule may hand one array to several inputs (Add does); writing into one leaf's .grad
    # must not change another's, nor the array the rule returned.
    handed: list[np.ndarray] = []

    class Scale(Op):
        """out = sum of the inputs, times 3;  dxᵢ = 3 g (one array for all)"""

        @staticmethod
        def forward(xp, *xs):
            return 3.0 * sum(xs)

        @staticmethod
        def backward(xp, g, out, *xs):
            d = 3.0 * g
            handed.append(d)
            return (d,) * len(xs)

    ws = [Tensor(np.full((4, 3), float(i)), requires_grad=True) for i in range(count)]
    Tensor.apply(Scale, *ws).sum().backward(retain_grads=False)
    ws[0].grad += 1.0
    npt.assert_array_equal(ws[0].grad, np.full((4, 3), 4.0))
    for w in ws[1:]:
        npt.assert_array_equal(w.grad, np.full((4, 3), 3.0))
    npt.assert_array_equal(handed[0], np.full((4, 3), 3.0))


def test_zero_grad_restarts_accumulation() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    old = x.grad
    x.zero_grad()
    assert x.grad is None
    (x * 3.0).sum().backward()
    npt.assert_array_equal(x.grad, [3.0, 3.0])
    npt.assert_array_equal(old, [2.0, 4.0])  # the old array is never written into

    v = Value(2.0)
    (v * v).backward()
    v.zero_grad()
    assert v.grad == 0.0
    (v * 3.0).backward()
    assert v.grad == 3.0


def test_zero_grad_on_one_node_leaves_other_gradients_alone() -> None:
    # u and v receive the very same incoming gradient from the Add; zeroing one node's
    # gradient must not zero its sibling's, the root's, or the caller's seed array.
    a = Tensor([1.0, 1.0, 1.0], requires_grad=True)
    b = Tensor([1.0, 1.0, 1.0], requires_grad=True)
    u, v = a * 1.0, b * 1.0
    y = u + v
    seed = np.array([1.0, 2.0, 3.0])
    y.backward(seed)
    u.zero_grad()
    npt.assert_array_equal(u.grad if u.grad is not None else 0.0, 0.0)
    npt.assert_array_equal(v.grad, [1.0, 2.0, 3.0])
    npt.assert_array_equal(y.grad, [1.0, 2.0, 3.0])
    npt.assert_array_equal(seed, [1.0, 2.0, 3.0])


def test_failed_backward_restores_grad_mode_and_leaves_no_partial_sums(restore_ops) -> None:
    calls: list[int] = []

    class FailsOnce(Op):
        """out = x;  dx = g, except that the first backward call raises"""

        @staticmethod
        def forward(xp, x):
            return x * 1.0

        @staticmethod
        def backward(xp, g, out, x):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("first call fails")
            return (g,)

    x = Value(2.0)
    y = Value.apply(FailsOnce, x * x) + x  # the Add hands x its share before FailsOnce runs
    with no_grad():
        # A recorded pass turns grad mode on while it runs; the failure must turn it off again.
        with pytest.raises(RuntimeError, match="first call fails"):
            y.backward(create_graph=True)
        assert not is_grad_enabled()
    # The failed pass had already sent x part of its gradient; none of it may linger.
    y.backward()
    assert x.grad == 5.0


# --- grad mode -------------------------------------------------------------------------------


def _assert_constant(node: Node) -> None:
    assert node.requires_grad is False
    assert node.parents == ()
    assert node.op is None


def test_no_grad_context_records_nothing() -> None:
    x = Value(2.0)
    t = Tensor([1.0, 2.0], requires_grad=True)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = (x * x + 1).tanh()
        s = (t * t).sum()
    assert is_grad_enabled()
    _assert_constant(y)
    _assert_constant(s)
    assert y.data == pytest.approx(math.tanh(5.0))
    assert s.item() == 5.0


def test_no_grad_decorator_records_nothing() -> None:
    @no_grad()
    def square(n: Node) -> Node:
        assert not is_grad_enabled()
        return n * n

    _assert_constant(square(Value(2.0)))
    _assert_constant(square(Tensor([1.0], requires_grad=True)))
    assert is_grad_enabled()


def test_no_grad_decorator_survives_recursion() -> None:
    # One decorator instance is re-entered on each recursive call; each exit must restore the
    # mode its own entry saw, not the outermost one.
    @no_grad()
    def power(n: Value, k: int) -> Value:
        return n if k == 1 else n * power(n, k - 1)

    _assert_constant(power(Value(2.0), 5))
    assert is_grad_enabled()


def test_enable_grad_inside_no_grad() -> None:
    x = Value(3.0)
    with no_grad():
        with enable_grad():
            assert is_grad_enabled()
            y = x * x
        assert not is_grad_enabled()
        z = x * x
    assert y.requires_grad and y.op is not None and y.parents == (x, x)
    _assert_constant(z)
    y.backward()
    assert x.grad == 6.0


def test_enable_grad_decorator_inside_no_grad() -> None:
    @enable_grad()
    def record(n: Value) -> Value:
        return n.exp()

    with no_grad():
        y = record(Value(0.0))
        assert not is_grad_enabled()
    assert y.requires_grad and y.op is not None


def test_nested_no_grad_restores_outer_mode() -> None:
    with no_grad():
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_grad_mode_restored_after_exception() -> None:
    with pytest.raises(KeyError), no_grad():
        raise KeyError("boom")
    assert is_grad_enabled()

    @no_grad()
    def fails() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        fails()
    assert is_grad_enabled()

    with no_grad():
        with pytest.raises(KeyError), enable_grad():
            raise KeyError("boom")
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_constant_leaves_get_no_gradient() -> None:
    x = Value(1.5)
    c = Value.constant(2.0)
    d = Value(3.0, requires_grad=False)
    (x * c + d * x).backward()
    assert x.grad == 5.0
    assert c.grad == 0.0
    assert d.grad == 0.0

    w = Tensor([1.0, 2.0], requires_grad=True)
    t = Tensor([3.0, 4.0])  # Tensors are constants unless asked otherwise
    assert t.requires_grad is False
    (w * t).sum().backward()
    npt.assert_array_equal(w.grad, [3.0, 4.0])
    assert t.grad is None


def test_node_built_from_constants_has_no_history() -> None:
    # A subgraph of constants collapses into one parentless node: backward cannot even see it.
    k = (Value.constant(2.0) * 3.0).tanh() + Value(1.0, requires_grad=False)
    _assert_constant(k)
    s = (Tensor([1.0, 2.0]).exp() @ Tensor([3.0, 4.0])).sum()
    _assert_constant(s)


@pytest.mark.parametrize(
    "root",
    [
        pytest.param(lambda: (Value.constant(2.0) * 3.0).tanh(), id="Value"),
        pytest.param(lambda: Tensor([1.0, 2.0]).exp().sum(), id="Tensor"),
    ],
)
def test_backward_on_a_constant_root_says_why(root) -> None:
    with pytest.raises(RuntimeError, match=r"does not require grad.*constants"):
        root().backward()


@pytest.fixture
def spy(restore_ops) -> tuple[type[Op], list[object]]:
    """An identity op that records every call of its backward rule."""
    calls: list[object] = []

    class Spy(Op):
        """out = x;  dx = g"""

        @staticmethod
        def forward(xp, x):
            return x * 1.0

        @staticmethod
        def backward(xp, g, out, x):
            calls.append(x)
            return (g,)

    return Spy, calls


def test_constants_are_never_visited_by_backward(spy) -> None:
    op, calls = spy
    x = Value(2.0)
    k = Value.apply(op, Value.constant(3.0))
    (x * k).backward()
    assert calls == []
    assert x.grad == 3.0

    t = Tensor([2.0], requires_grad=True)
    (t * Tensor.apply(op, Tensor([3.0]))).sum().backward()
    assert calls == []

    # The spy does see a node that needs a gradient, so the silence above means something.
    Value.apply(op, x).backward()
    assert len(calls) == 1


# --- memory ----------------------------------------------------------------------------------


def _fill_free_lists() -> None:
    """CPython keeps freed small tuples, floats, lists and dicts on free lists, and tracemalloc
    counts those as still allocated; a long loop fills them slowly and looks like a leak. Filling
    them up front means whatever stays allocated later is really held by someone."""
    junk = [tuple([None] * n) for n in range(1, 21) for _ in range(2100)]
    junk += [[float(i) + 0.5] for i in range(200)]
    junk += [{i: i} for i in range(200)]
    del junk


@contextlib.contextmanager
def _traced() -> Iterator[None]:
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        yield
    finally:
        if not was_tracing:
            tracemalloc.stop()


def _live_nodes() -> int:
    return sum(isinstance(o, Node) for o in gc.get_objects())


def _build_mixed_graph() -> list[object]:
    xs = [Value(0.01 * i) for i in range(300)]
    acc = Value(0.0)
    for x in xs:
        acc = acc + (x * x).tanh() * x
    acc.backward()
    t = Tensor(np.linspace(-1, 1, 2500).reshape(50, 50), requires_grad=True)
    r = ((t @ t).tanh().sum(axis=0) ** 2).mean()
    r.backward()
    return [xs, acc, t, r]


def test_nodes_cannot_be_weakly_referenced() -> None:
    # Nodes use __slots__ without __weakref__, which is why the tests below watch memory and
    # live objects instead of weakrefs.
    for node in (Value(1.0), Tensor([1.0])):
        with pytest.raises(TypeError):
            weakref.ref(node)


def test_graph_is_freed_by_refcounting_alone() -> None:
    # With the cycle collector off, only reference counting frees anything: if the graph had a
    # cycle (a node pointing at its child, a closure holding its output), it would stay.
    _build_mixed_graph()  # warm up caches (NumPy's, the interpreter's) outside the measurement
    gc.collect()
    gc.disable()
    try:
        _fill_free_lists()
        nodes_before = _live_nodes()
        with _traced():
            baseline = tracemalloc.get_traced_memory()[0]
            graph = _build_mixed_graph()
            built = tracemalloc.get_traced_memory()[0]
            assert _live_nodes() > nodes_before + 1000
            del graph
            after = tracemalloc.get_traced_memory()[0]
        assert _live_nodes() == nodes_before
    finally:
        gc.enable()
    assert built - baseline > 100_000  # the measurement saw the graph
    assert after - baseline < 16 * 1024


def _tensor_mlp_step_factory():
    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(32, 4)))
    y = Tensor(rng.normal(size=(32, 1)))
    params = [
        Tensor(rng.normal(size=(4, 16)) * 0.5, requires_grad=True),
        Tensor(np.zeros(16), requires_grad=True),
        Tensor(rng.normal(size=(16, 1)) * 0.5, requires_grad=True),
        Tensor(np.zeros(1), requires_grad=True),
    ]
    w1, b1, w2, b2 = params

    def step() -> float:
        hidden = (x @ w1 + b1).tanh()
        loss = ((hidden @ w2 + b2 - y) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data = p.data - 0.05 * p.grad
        return loss.item()

    return step


def _value_net_step_factory():
    rnd = random.Random(0)
    w = [[Value(rnd.uniform(-1, 1)) for _ in range(3)] for _ in range(8)]
    v = [Value(rnd.uniform(-1, 1)) for _ in range(8)]
    params = [p for row in w for p in row] + v
    data = [([rnd.uniform(-1, 1) for _ in range(3)], rnd.uniform(-1, 1)) for _ in range(8)]

    def step() -> float:
        loss = Value(0.0)
        for xs, target in data:
            hidden = [dot(row, xs).tanh() for row in w]
            loss = loss + (dot(v, hidden) - target) ** 2
        for p in params:
            p.grad = 0.0
        loss.backward()
        for p in params:
            p.data -= 0.05 * p.grad
        return loss.data

    return step


@pytest.mark.parametrize(
    ("factory", "steps"),
    [
        pytest.param(_tensor_mlp_step_factory, 1000, id="Tensor-MLP-1000-steps"),
        pytest.param(_value_net_step_factory, 200, id="Value-net-200-steps"),
    ],
)
def test_training_memory_stays_flat(factory, steps) -> None:
    step = factory()
    losses = []
    _fill_free_lists()
    with _traced():
        for i in range(1, steps + 1):
            losses.append(step())
            if i == 10:
                early = tracemalloc.get_traced_memory()[0]
        late = tracemalloc.get_traced_memory()[0]
    assert losses[-1] < losses[0]  # it really trained, so every step built and used a graph
    assert late - early < 64 * 1024


# --- error paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Value(1.0) + Tensor([1.0]), id="Value+Tensor"),
        pytest.param(lambda: Tensor([1.0]) + Value(1.0), id="Tensor+Value"),
        pytest.param(lambda: Value(1.0) * Tensor([1.0]), id="Value*Tensor"),
        pytest.param(lambda: Tensor([1.0]) @ Value(1.0), id="Tensor@Value"),
        pytest.param(lambda: Tensor(Value(1.0)), id="Tensor(Value)"),
        pytest.param(lambda: Value(Tensor([1.0])), id="Value(Tensor)"),
        pytest.param(lambda: Value(Tensor(1.0)), id="Value(0-d Tensor)"),
    ],
)
def test_mixing_value_and_tensor_is_a_type_error_naming_both(make) -> None:
    with pytest.raises(TypeError) as info:
        make()
    assert "Value" in str(info.value) and "Tensor" in str(info.value)


def test_non_scalar_backward_without_grad_names_the_shape() -> None:
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=re.escape("(2, 3)")):
        y.backward()


def test_backward_with_wrong_grad_shape_names_both_shapes() -> None:
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(ValueError) as info:
        y.backward(np.ones((3, 2)))
    assert "(3, 2)" in str(info.value) and "(2, 3)" in str(info.value)


@pytest.mark.parametrize(
    ("make", "op", "shapes"),
    [
        pytest.param(
            lambda: Tensor(np.ones(2)) + Tensor(np.ones(3)), "Add", ("(2,)", "(3,)"), id="add"
        ),
        pytest.param(
            lambda: Tensor(np.ones((2, 3))) @ Tensor(np.ones((2, 4))),
            "MatMul",
            ("(2, 3)", "(2, 4)"),
            id="matmul",
        ),
    ],
)
def test_shape_mismatch_names_op_and_both_shapes(make, op, shapes) -> None:
    with pytest.raises(ValueError) as info:
        make()
    message = str(info.value)
    assert op in message
    for shape in shapes:
        assert shape in message


@pytest.mark.parametrize(
    ("make", "error", "names"),
    [
        pytest.param(lambda: Value(-2.0).log(), ValueError, "-2.0", id="log(-2)"),
        pytest.param(lambda: Value(0.0).log(), ValueError, "0.0", id="log(0)"),
        pytest.param(lambda: Value(-1.0).sqrt(), ValueError, "-1.0", id="sqrt(-1)"),
        pytest.param(lambda: Value(1.5) / 0, ZeroDivisionError, "1.5", id="Value/0"),
        pytest.param(
            lambda: Value(1.5) / Value(0.0), ZeroDivisionError, "1.5", id="Value/Value(0)"
        ),
        pytest.param(lambda: 1.5 / Value(0.0), ZeroDivisionError, "1.5", id="1.5/Value(0)"),
        pytest.param(lambda: Value(-8.0) ** (1 / 3), ValueError, "-8.0", id="(-8)**(1/3)"),
    ],
)
def test_value_domain_errors_name_the_value(make, error, names) -> None:
    with pytest.raises(error) as info:
        make()
    assert names in str(info.value)


def test_division_by_zero_names_both_operands() -> None:
    with pytest.raises(ZeroDivisionError) as info:
        Value(1.5) / Value(0.0)
    assert "1.5" in str(info.value) and "0.0" in str(info.value)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Value("abc"), id="Value('abc')"),
        pytest.param(lambda: Value([1.0]), id="Value([1.0])"),
        pytest.param(lambda: Tensor(["a"]), id="Tensor(['a'])"),
        pytest.param(lambda: Tensor([1.0, "a"]), id="Tensor([1.0, 'a'])"),
        pytest.param(lambda: Tensor([1 + 2j]), id="Tensor(complex)"),
    ],
)
def test_non_numbers_are_type_errors(make) -> None:
    with pytest.raises(TypeError):
        make()


@pytest.mark.parametrize(
    ("make", "op", "axis"),
    [
        pytest.param(lambda t: t.sum(axis=2), "Sum", "2", id="sum"),
        pytest.param(lambda t: t.sum(axis=(0, -3)), "Sum", "(0, -3)", id="sum-tuple"),
        pytest.param(lambda t: t.max(axis=5), "Max", "5", id="max"),
        pytest.param(lambda t: t.softmax(axis=-3), "Softmax", "-3", id="softmax"),
        pytest.param(lambda t: t.log_softmax(axis=2), "LogSoftmax", "2", id="log_softmax"),
    ],
)
def test_bad_axis_names_axis_and_shape(make, op, axis) -> None:
    with pytest.raises(ValueError) as info:
        make(Tensor(np.ones((2, 3))))
    message = str(info.value)
    assert op in message and f"axis {axis}" in message and "(2, 3)" in message


def test_index_out_of_bounds_is_an_index_error() -> None:
    t = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(IndexError, match="5"):
        t[5]
    with pytest.raises(IndexError):
        t[[0, 3]]


def test_item_on_several_elements_names_the_shape() -> None:
    with pytest.raises(ValueError, match=re.escape("(3,)")):
        Tensor([1.0, 2.0, 3.0]).item()
    assert Tensor([[2.5]]).item() == 2.5


# --- anomaly detection -----------------------------------------------------------------------


def test_anomaly_in_forward_names_the_op() -> None:
    with np.errstate(all="ignore"), detect_anomaly(), pytest.raises(AnomalyError, match="Log"):
        Tensor([0.0]).log()


def test_anomaly_in_tensor_backward_names_the_op() -> None:
    # sqrt at 0 is fine going forward (0) and infinite only on the way back (g * 0.5 / 0).
    with np.errstate(all="ignore"), detect_anomaly():
        x = Tensor([0.0, 4.0], requires_grad=True)
        y = x.sqrt().sum()
        with pytest.raises(AnomalyError, match="backward of Sqrt"):
            y.backward()


def test_anomaly_in_value_backward_names_the_op() -> None:
    # detect_anomaly promises AnomalyError "at the first op whose output or gradient is NaN or
    # infinite"; Value computes on Python floats, but the promise is the same.
    with detect_anomaly():
        x = Value(0.0)
        y = x.sqrt()
        with pytest.raises(AnomalyError, match="Sqrt"):
            y.backward()


def test_no_anomaly_check_outside_the_context() -> None:
    with np.errstate(all="ignore"):
        assert Tensor([0.0]).log().data[0] == -np.inf
        x = Tensor([0.0], requires_grad=True)
        x.sqrt().sum().backward()
    assert x.grad[0] == np.inf


def test_anomaly_mode_restored_after_error() -> None:
    with np.errstate(all="ignore"):
        with pytest.raises(AnomalyError), detect_anomaly():
            Tensor([-1.0]).sqrt()
        assert np.isnan(Tensor([-1.0]).sqrt().data[0])


# --- dtype and NumPy interplay -----------------------------------------------------------------

FLOAT32_OPS = {
    "x+1": lambda x: x + 1,
    "1-x": lambda x: 1 - x,
    "x*2": lambda x: x * 2,
    "2.5*x": lambda x: 2.5 * x,
    "x/3": lambda x: x / 3,
    "2/x": lambda x: 2 / x,
    "x**2": lambda x: x**2,
    "x**3": lambda x: x**3,
    "2**x": lambda x: 2**x,
    "-x": lambda x: -x,
    "exp": lambda x: x.exp(),
    "log": lambda x: x.log(),
    "tanh": lambda x: x.tanh(),
    "sigmoid": lambda x: x.sigmoid(),
    "relu": lambda x: x.relu(),
    "abs": lambda x: x.abs(),
    "sqrt": lambda x: x.sqrt(),
    "softmax": lambda x: x.softmax(),
    "log_softmax": lambda x: x.log_softmax(),
    "logsumexp": lambda x: x.logsumexp(),
    "mean": lambda x: x.mean(),
    "max": lambda x: x.max(),
    "min": lambda x: x.min(),
    "maximum": lambda x: maximum(x, 1.0),
    "where": lambda x: where(np.array([True, False]), x, 0.0),
    "matmul": lambda x: x @ np.ones(2),
    "index": lambda x: x[1],
    "concatenate": lambda x: concatenate([x, [1.0]]),
}


@pytest.mark.parametrize("f", FLOAT32_OPS.values(), ids=FLOAT32_OPS.keys())
def test_float32_stays_float32_forward_and_backward(f) -> None:
    x = Tensor(np.array([0.5, 1.5], dtype=np.float32), requires_grad=True)
    y = f(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_integer_input_becomes_float64() -> None:
    assert Tensor([1, 2, 3]).dtype == np.float64
    assert Tensor(np.arange(3, dtype=np.int32)).dtype == np.float64
    assert Tensor(True).dtype == np.bool_  # a boolean stays a mask, as in PyTorch
    assert (Tensor([1, 2]) * 2).dtype == np.float64


def test_numpy_interplay() -> None:
    x = Tensor([1.0, -2.0], requires_grad=True)
    npt.assert_array_equal(np.asarray(x), [1.0, -2.0])

    # NumPy defers to Tensor's reflected operators, so the result stays on the graph.
    y = np.array([3.0, 4.0]) * x + np.ones(2)
    assert isinstance(y, Tensor) and y.requires_grad
    y.sum().backward()
    npt.assert_array_equal(x.grad, [3.0, 4.0])


def test_comparisons_return_plain_bools() -> None:
    x = Tensor([1.0, -2.0])
    for result in (x < 0, x <= 0, x > 0, x >= 0, x == 1.0, x != 1.0, x == Tensor([1.0, 1.0])):
        assert type(result) is np.ndarray and result.dtype == bool
    npt.assert_array_equal(x < 0, [False, True])
    assert (Value(1.0) < Value(2.0)) is True
    assert (Value(1.0) >= 2.0) is False


def test_tensors_and_values_hash_by_identity() -> None:
    a, b = Tensor([1.0]), Tensor([1.0])
    assert len({a, b}) == 2 and a in {a}
    v, w = Value(1.0), Value(1.0)
    assert len({v, w}) == 2 and v != w


# --- detach --------------------------------------------------------------------------------------


def test_tensor_detach_shares_data_without_history() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    _assert_constant(d)
    assert d.grad is None
    assert np.shares_memory(d.data, y.data)
    # Gradient stops at the detached copy: x is reached only through the direct factor.
    (d * x).sum().backward()
    npt.assert_array_equal(x.grad, [2.0, 4.0])


def test_value_detach_is_a_fresh_leaf() -> None:
    v = Value(2.0)
    w = v * 3
    d = w.detach()
    assert d.data == 6.0 and d.parents == () and d.op is None
    (d * v).backward()
    assert v.grad == 6.0
    assert w.grad == 0.0


# --- custom ops --------------------------------------------------------------------------------


@pytest.fixture
def cube(restore_ops) -> type[Op]:
    class Cube(Op):
        """out = x ** 3;  dx = g * 3 x ** 2"""

        @staticmethod
        def forward(xp, x):
            return x * x * x

        @staticmethod
        def backward(xp, g, out, x):
            # xp.pow, not **: the same rule then runs on floats, arrays and recorded nodes.
            return (g * (3.0 * xp.pow(x, 2.0)),)

    return Cube


def test_custom_op_is_registered(cube) -> None:
    assert OPS["Cube"] is cube


def test_custom_op_on_tensor(cube) -> None:
    x = Tensor([0.5, -1.5, 2.0], requires_grad=True)
    y = Tensor.apply(cube, x)
    assert y.op is cube and y.parents == (x,)
    npt.assert_allclose(y.data, x.data**3)
    y.sum().backward()
    npt.assert_allclose(x.grad, 3 * x.data**2)
    assert gradcheck(lambda t: Tensor.apply(cube, t), np.array([0.5, -1.5, 2.0]))


def test_custom_op_on_value(cube) -> None:
    v = Value(-1.5)
    y = Value.apply(cube, v)
    assert y.data == -3.375
    y.backward()
    assert v.grad == 6.75
    assert gradcheck(lambda a: Value.apply(cube, a) * a, 0.7)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("bare", "returned a ndarray, not a tuple"),
        ("two", "returned 2 gradients: it must return a tuple of one gradient (or None) per input"),
        ("none", "returned 0 gradients"),
    ],
)
def test_a_custom_rule_returning_the_wrong_count_is_named(restore_ops, returned, message) -> None:
    class Sloppy(Op):
        """out = 2 x;  dx = 2 g, returned in the wrong form"""

        @staticmethod
        def forward(xp, x):
            return 2.0 * x

        @staticmethod
        def backward(xp, g, out, x):
            d = 2.0 * g
            return {"bare": d, "two": (d, d), "none": ()}[returned]

    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=re.escape(message)) as caught:
        Tensor.apply(Sloppy, x).sum().backward()
    assert "the backward of Sloppy" in str(caught.value)
    assert "1 input" in str(caught.value)
    assert x.grad is None  # a failed pass delivers nothing


def test_a_custom_rule_may_return_a_list(restore_ops) -> None:
    class Listed(Op):
        """out = a b;  da = g b,  db = g a, as a list"""

        @staticmethod
        def forward(xp, a, b):
            return a * b

        @staticmethod
        def backward(xp, g, out, a, b):
            return [g * b, g * a]

    a, b = Value(3.0), Value(-2.0)
    Value.apply(Listed, a, b).backward()
    assert (a.grad, b.grad) == (-2.0, 3.0)


def test_custom_op_second_derivative(cube) -> None:
    assert grad(grad(lambda v: Value.apply(cube, v)))(0.7) == pytest.approx(6 * 0.7, rel=1e-14)

    x0, direction = np.array([0.5, -1.5]), np.array([1.0, 3.0])

    def first(x: Tensor) -> Tensor:
        return grad(lambda t: Tensor.apply(cube, t).sum())(x)

    hvp = grad(lambda x: (first(x) * direction).sum())(x0)
    npt.assert_allclose(hvp, 6 * x0 * direction, rtol=1e-14)


def test_retain_grads_false_keeps_only_the_leaves_gradients() -> None:
    w = Tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
    x = Tensor([1.0, 2.0])
    h = (w @ x).tanh()
    loss = (h * h).sum()
    loss.backward(retain_grads=False)
    assert h.grad is None
    assert loss.grad is None
    # d/dw sum(tanh(w x)^2) = 2 tanh (1 - tanh^2) x^T, derived by hand
    t = np.tanh(w.data @ x.data)
    npt.assert_allclose(w.grad, np.outer(2 * t * (1 - t**2), x.data), rtol=1e-12)

    v = Value(0.3)
    u = v.tanh()
    out = u * u
    out.backward(retain_grads=False)
    assert u.grad == 0.0  # an intermediate Value keeps its initial 0.0
    assert v.grad == pytest.approx(2 * math.tanh(0.3) * (1 - math.tanh(0.3) ** 2))


def test_a_training_pass_from_a_shared_seed_leaves_every_gradient_writable() -> None:
    # backward(retain_grads=False) on a scalar starts from a shared read-only 1: a leaf root
    # must get an array of its own, and the next pass must not find the seed changed.
    x = Tensor(3.0, requires_grad=True)
    x.backward(retain_grads=False)
    assert x.grad.flags.writeable and x.grad == 1.0
    x.grad += 1.0  # ours to write into
    w = Tensor([1.0, 2.0], requires_grad=True)
    for _ in range(2):
        (w * w).sum().backward(retain_grads=False)
    npt.assert_array_equal(w.grad, [4.0, 8.0])
    y = Tensor(2.0, requires_grad=True)
    (y * y).backward(retain_grads=False)
    assert y.grad == 4.0
    loss = (y * 3.0).sum()
    loss.backward()  # the default keeps every gradient: the root's is its own array
    assert loss.grad.flags.writeable
