"""compile, made sound (issue 20): each kind of silent wrong the issue lists, written as a user
writes the step, against the eager engine. Each of these failed (a wrong number, a missing
gradient, an error in another thread, a silent eager run) before the compiled call became one op
of the graph, traced with stand-ins and checked against an eager run."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import numpy as np
import pytest
from backproplab.autograd import (
    CompileError,
    Tensor,
    Value,
    grad,
    no_grad,
    where,
)
from backproplab.nn.losses import cross_entropy

from backproplab import compile

RNG = np.random.default_rng(20)


def bits(x: Any) -> bytes:
    return np.asarray(x, dtype=np.float64).tobytes()


# --- numbers computed from the arguments are recomputed, never frozen -------------------------


def test_array_arguments_are_recomputed_a_scaled_target_and_a_mask() -> None:
    w = Tensor(np.array([[1.0], [2.0]]), requires_grad=True)

    def step(x: np.ndarray, y: np.ndarray) -> Tensor:
        pred = x @ w
        return (where(x[:, :1] > 0, pred - y * 2, pred) ** 2).sum()

    f = compile(step)
    for scale in (1.0, 10.0, -3.0):
        x, y = np.array([[scale, 1.0], [2.0, scale]]), np.array([[scale], [5.0]])
        assert bits(f(x, y).data) == bits(step(x, y).data)
    assert f.stats["replays"] == 3 and f.stats["eager"] == 0


# --- a compiled result is a node: composition, grad, nesting ----------------------------------


def _two_params() -> tuple[Tensor, Tensor]:
    return (
        Tensor(np.array([0.5, -1.0]), requires_grad=True),
        Tensor(np.array([2.0, 0.25]), requires_grad=True),
    )


@pytest.mark.parametrize("use", ["times two", "sum of two calls", "divided by n"])
def test_a_compiled_result_composes_on_every_call(use: str) -> None:
    a, b = _two_params()
    a_e, b_e = Tensor(a.data.copy(), requires_grad=True), Tensor(b.data.copy(), requires_grad=True)
    f = compile(lambda x: ((x * a + b) ** 2).sum())
    for step in range(3):
        x = np.array([1.0, 2.0 + step])

        def eager(x: Any = x) -> Tensor:
            return ((x * a_e + b_e) ** 2).sum()

        if use == "times two":
            got, want = f(x) * 2, eager() * 2
        elif use == "sum of two calls":
            got, want = f(x) + f(x + 1.0), eager() + eager(x + 1.0)
        else:
            got, want = f(x) / 3.0, eager() / 3.0
        got.backward()
        want.backward()
        assert bits(got.data) == bits(want.data)
        assert bits(a.grad) == bits(a_e.grad) and bits(b.grad) == bits(b_e.grad), step
        for p in (a, b, a_e, b_e):
            p.grad = None


def test_grad_of_a_compiled_function_on_every_call() -> None:
    w = Value(1.5)
    f = compile(lambda x: (x * w).tanh() * x)
    df = grad(f)
    for x in (0.3, -0.7, 1.1):
        want = grad(lambda x: (x * w).tanh() * x)(x)
        assert df(x) == want != 0.0


def test_a_compiled_function_calling_another() -> None:
    w = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    inner = compile(lambda x: (x * w).tanh())
    outer = compile(lambda x: (inner(x) * inner(x * 2.0)).sum())
    w_e = Tensor(w.data.copy(), requires_grad=True)
    for step in range(3):
        x = np.array([0.5, 0.1 * step])
        got = outer(x)
        want = ((x * w_e).tanh() * (x * 2.0 * w_e).tanh()).sum()
        got.backward()
        want.backward()
        assert bits(got.data) == bits(want.data) and bits(w.grad) == bits(w_e.grad)
        w.grad = w_e.grad = None


def test_an_explicit_gradient_on_a_compiled_value_runs_the_generated_backward() -> None:
    w = Value(2.0)
    calls = itertools.count()  # not a list: compile refuses a step that appends to one

    def step(x: Value) -> Value:
        next(calls)
        return (x * w).tanh()

    f = compile(step)
    f(Value(0.1)).backward()  # the trace, the self-check's eager run
    w.grad = 0.0
    before = next(calls)
    f(Value(0.2)).backward(0.5)
    assert next(calls) == before + 1  # the step did not run again
    w_e = Value(2.0)
    (Value(0.2) * w_e).tanh().backward(0.5)
    assert w.grad == w_e.grad


# --- the makemore exercise's step: embedding, batchnorm, cross-entropy, batches of indices ------


def test_makemore_step_with_each_batch_passed_as_tensors_of_indices() -> None:
    rng = np.random.default_rng(0)
    vocab, block, emb, hidden = 27, 3, 4, 16
    params = [
        Tensor(rng.standard_normal(s) * 0.3, requires_grad=True)
        for s in ((vocab, emb), (block * emb, hidden), (hidden,), (hidden,), (hidden, vocab))
    ]

    def step(xb: Tensor, yb: Tensor, ps: list[Tensor]) -> Tensor:
        c, w1, gain, bias, w2 = ps
        e = c[xb].reshape(xb.shape[0], block * emb)
        h = e @ w1
        mean = h.mean(axis=0, keepdims=True)
        var = ((h - mean) ** 2).mean(axis=0, keepdims=True)
        h = gain * (h - mean) * (var + 1e-5) ** -0.5 + bias
        return cross_entropy(h.tanh() @ w2, yb)

    f = compile(lambda xb, yb: step(xb, yb, params))
    eager_params = [Tensor(p.data.copy(), requires_grad=True) for p in params]
    losses = set()
    for _ in range(3):
        xb = Tensor(rng.integers(0, vocab, (8, block)))
        yb = Tensor(rng.integers(0, vocab, 8))
        got, want = f(xb, yb), step(xb, yb, eager_params)
        got.backward()
        want.backward()
        assert bits(got.data) == bits(want.data)
        for p, q in zip(params, eager_params, strict=True):
            assert bits(p.grad) == bits(q.grad)
            p.grad = q.grad = None
        losses.add(got.item())
    assert len(losses) == 3


@pytest.mark.parametrize("dtype", [np.int32, np.int64, "tensor"])
def test_cross_entropy_labels_of_each_kind_are_each_calls_own(dtype: Any) -> None:
    """(int64 labels were read afresh before too: the control of the other two.)"""
    w = Tensor(RNG.standard_normal((3, 4)), requires_grad=True)
    f = compile(lambda x, y: cross_entropy(x @ w, y))
    x = RNG.standard_normal((5, 3))
    for labels in ([0, 1, 2, 3, 0], [3, 3, 1, 0, 2]):
        y = Tensor(np.array(labels)) if dtype == "tensor" else np.array(labels, dtype=dtype)
        assert bits(f(x, y).data) == bits(cross_entropy(Tensor(x) @ w, y).data)


# --- reading numbers inside is refused at the user's line, or caught by the self-check ---------


@pytest.mark.parametrize(
    "body",
    [
        lambda x, w: (x * w).sum() * (x * w).data.sum(),  # .data of a traced value
        lambda x, w: (x * w).sum() * float(np.asarray(w.data).sum()),  # NumPy on a parameter
        lambda x, w: (x * w).sum() * Tensor(x.data[0]),  # t.data[0]
        lambda x, w: (x * w).sum() * (x * w).sum().item(),
        lambda x, w: (x * w).sum() if (x * w).sum() > 0 else -(x * w).sum(),  # a Python decision
        lambda x, w: (x * w).sum() + len(f"{(x * w).sum()}"),  # formatting
    ],
    ids=[".data", "numpy on a parameter", "t.data[0]", ".item()", "if", "format"],
)
def test_a_number_read_inside_is_refused_at_the_users_line(body: Any) -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    f = compile(body)
    with pytest.raises(CompileError, match=r"test_compile_sound.py:\d+: "):
        f(np.array([1.0, 3.0]), w)


def test_v_data_of_a_value_is_refused() -> None:
    w = Value(2.0)
    with pytest.raises(CompileError, match=r"test_compile_sound.py:\d+: .* of a Value"):
        compile(lambda x: x * w + w.data)(Value(1.0))


def test_detach_is_read_again_on_every_call() -> None:
    w = Tensor(np.array([1.0, -1.0]), requires_grad=True)

    def step(x: np.ndarray) -> Tensor:
        h = x * w
        return (h * h.detach()).sum()

    f = compile(step)
    for s in (1.0, 4.0, -2.0):
        x = np.array([s, 2.0])
        got, want = f(x), step(x)
        assert bits(got.data) == bits(want.data)
        got.backward()
        g = w.grad
        w.grad = None
        want.backward()
        assert bits(g) == bits(w.grad)
        w.grad = None


def test_a_random_draw_inside_is_caught_by_the_self_check() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    f = compile(lambda x: (x * w * Tensor(np.random.default_rng().random(3))).sum())
    with pytest.raises(CompileError, match=r"self-check .* output 0"):
        f(np.ones(3))


def test_fallback_eager_warns_once_and_counts() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    f = compile(lambda x: (x * w).sum() * (x * w).sum().item(), fallback="eager")
    with pytest.warns(RuntimeWarning, match="runs eagerly"):
        f(np.ones(3))
    with pytest.raises(CompileError):  # the same reason, refused outright without fallback
        compile(f.fn)(np.ones(3))
    f(np.ones(3))
    assert f.stats == {"traces": 0, "replays": 0, "eager": 2} and f.eager_reason


# --- grad mode, requires_grad and versions come from the engine --------------------------------


def test_requires_grad_turned_off_after_the_first_call() -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([0.5, 0.5]), requires_grad=True)
    f = compile(lambda x: ((x * w + b) ** 2).sum())
    f(np.ones(2)).backward()
    w.grad = b.grad = None
    w.requires_grad = False
    f(np.ones(2)).backward()
    assert w.grad is None and b.grad is not None


def test_a_first_call_under_no_grad_then_backward() -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    f = compile(lambda x: ((x * w) ** 2).sum())
    with no_grad():
        assert not f(np.ones(2)).requires_grad
    f(np.ones(2)).backward()
    np.testing.assert_array_equal(w.grad, [2.0, 4.0])


def test_an_output_written_before_its_backward_is_refused() -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    f = compile(lambda x: (x * w) ** 2)
    f(np.ones(2))
    out = f(np.ones(2))
    out.data *= 2
    with pytest.raises(RuntimeError, match="was changed after"):
        out.backward(np.ones(2))


def test_a_rebound_global_number_retraces() -> None:
    f = compile(_scaled)
    global SCALE
    assert f(np.ones(2)).item() == 2.0
    SCALE = 3.0
    try:
        assert f(np.ones(2)).item() == 6.0 and f.traces == 2
    finally:
        SCALE = 1.0


SCALE = 1.0
W_GLOBAL = Tensor(np.array([1.0, 1.0]), requires_grad=True)


def _scaled(x: np.ndarray) -> Tensor:
    return (x * W_GLOBAL).sum() * SCALE


# --- threads --------------------------------------------------------------------------------


def test_np_array_of_a_tensor_in_another_thread_while_one_traces() -> None:
    inside, release = threading.Event(), threading.Event()
    w = Tensor(np.ones(2), requires_grad=True)

    def slow(x: np.ndarray) -> Tensor:
        y = x * w
        inside.set()
        assert release.wait(10)
        return y.sum()

    f = compile(slow)
    th = threading.Thread(target=f, args=(np.ones(2),))
    th.start()
    assert inside.wait(10)
    try:
        t = Tensor(np.array([1.0, 2.0]))
        assert np.array(t).tolist() == [1.0, 2.0] and np.asarray(t, dtype=np.float32).sum() == 3
        assert float(Value(2.0)) == 2.0 and t.data.sum() == 3.0 and not Value(0.0)
    finally:
        release.set()
        th.join(10)
    assert f.traces == 1


def test_the_self_check_compares_gradients_at_the_first_backward() -> None:
    """A rule that reads a number outside the graph at backward time (FACTOR): the trace writes
    the number it saw; by the first backward it has changed, and the eager pass's gradient
    differs. The check names the parameter; the trace is never replayed again."""
    from backproplab.autograd import OPS, Op

    factor = [2.0]
    before = dict(OPS)
    try:

        class Scaled(Op):
            @staticmethod
            def forward(xp: Any, x: Any) -> Any:
                return x * 1.0

            @staticmethod
            def backward(xp: Any, g: Any, out: Any, x: Any) -> tuple[Any, ...]:
                return (g * factor[0],)

        w = Tensor(np.array([1.0, 2.0]), requires_grad=True, label="w")
        f = compile(lambda x: Tensor.apply(Scaled, x * w).sum())
        loss = f(np.ones(2))
        factor[0] = 3.0
        with pytest.raises(CompileError, match=r"self-check.*'w' of shape \(2,\).*differs"):
            loss.backward()
        with pytest.raises(CompileError, match="self-check"):
            f(np.ones(2))
    finally:
        OPS.clear()
        OPS.update(before)


def test_a_users_step_a_module_a_helper_an_l2_penalty_and_inputs_made_inside() -> None:
    """Written as a user writes it: an nn.MLP, a helper computing the loss, Tensor(X) made
    inside, a penalty summed over the parameters with Python's sum, the update outside."""
    from backproplab.nn.layers import MLP
    from backproplab.nn.losses import mse

    models = [MLP(2, 1, [8, 8], "tanh", seed=0), MLP(2, 1, [8, 8], "tanh", seed=0)]

    def loss_of(model: MLP, X: np.ndarray, y: np.ndarray) -> Tensor:
        pred = model(Tensor(X, name="x"))
        penalty = sum((p * p).sum() for p in model.parameters())
        return mse(pred, Tensor(y)) + 1e-3 * penalty

    f = compile(lambda X, y: loss_of(models[0], X, y))
    rng = np.random.default_rng(5)
    for _ in range(4):
        X, y = rng.standard_normal((16, 2)), rng.standard_normal((16, 1))
        losses = [f(X, y), loss_of(models[1], X, y)]
        assert bits(losses[0].data) == bits(losses[1].data)
        for loss, model in zip(losses, models, strict=True):
            loss.backward()
            for p in model.parameters():
                p.data -= 0.1 * p.grad
                p.grad = None
    for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert bits(p.data) == bits(q.data)
    assert f.stats == {"traces": 1, "replays": 4, "eager": 0}


def test_a_grad_used_inside_the_step_as_it_is_is_refused() -> None:
    # its numbers would be a constant of the trace: a replay never reads .grad again
    W = Tensor(np.array([[0.5], [-1.0]]), requires_grad=True, name="W")
    X = np.array([[1.0, 2.0], [3.0, 0.5]])
    (Tensor(X) @ W).sum().backward()

    @compile
    def scaled(X: np.ndarray) -> Tensor:
        return ((Tensor(X) @ W) * W.grad.T).sum()

    with pytest.raises(CompileError, match=r"reads the \.grad of a Tensor 'W' of shape \(2, 1\)"):
        scaled(X)
    v = Value(2.0, label="v")
    (v * v).backward()

    @compile
    def times_grad(a: Value) -> Value:
        return a * v * v.grad

    with pytest.raises(CompileError, match=r"reads the \.grad of a Value 'v'"):
        times_grad(Value(1.0))

    @compile
    def made_from_grad(a: Value) -> Value:
        return a * v * Value(v.grad)

    with pytest.raises(CompileError, match=r"reads the \.grad of a Value 'v'"):
        made_from_grad(Value(1.0))


def test_numbers_equal_to_a_grad_are_not_taken_for_a_grad_read() -> None:
    v = Value(2.0, label="v")
    (v * v).backward()  # v.grad is 4.0

    @compile
    def f(a: Value) -> Value:
        return a * v * 4.0 + a * 0.0

    for x in (1.0, 2.0, -3.0):
        assert f(Value(x)).data == x * 2.0 * 4.0
