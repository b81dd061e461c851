"""Property test of compile: random small steps, compiled and eager, equal on every call.

A step is a straight-line program over its arguments, two parameters and a constant, each line
one op on earlier results (so results are reused). It is compiled once and called three times
with new arguments, as a training loop calls it; every call's output and every parameter's
gradient must be the eager engine's to the bit, as the self-check demands on the first call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from backproplab.autograd import Tensor, Value, maximum, sum_values, where
from hypothesis import given, settings
from hypothesis import strategies as st

from backproplab import compile

TENSOR_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "tanh": lambda a, b: a.tanh(),
    "relu": lambda a, b: a.relu(),
    "sigmoid": lambda a, b: a.sigmoid(),
    "scale": lambda a, b: a * 2.5 - 1.0,
    "where": lambda a, b: where(a > 0.1, a, b),
    "maximum": lambda a, b: maximum(a, b),
    "mask_and": lambda a, b: where((a > -0.5) & (b < 0.5), b, a * 0.5),
    "sum_keep": lambda a, b: a * a.sum(),
}
VALUE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "tanh": lambda a, b: a.tanh(),
    "relu": lambda a, b: a.relu(),
    "sigmoid": lambda a, b: a.sigmoid(),
    "scale": lambda a, b: 2.5 * a - 1.0,
    "square": lambda a, b: a**2,
}

Program = list[tuple[str, int, int]]


def programs(ops: dict[str, Any]) -> st.SearchStrategy[Program]:
    def line(i: int) -> st.SearchStrategy[tuple[str, int, int]]:
        earlier = st.integers(0, i - 1)
        return st.tuples(st.sampled_from(sorted(ops)), earlier, earlier)

    return st.integers(1, 8).flatmap(
        lambda n: st.tuples(*[line(5 + i) for i in range(n)]).map(list)
    )


def run(program: Program, ops: dict[str, Any], pool: list[Any]) -> Any:
    values = list(pool)
    for name, a, b in program:
        values.append(ops[name](values[a], values[b]))
    return values[-1]


def bits(x: Any) -> bytes:
    return np.asarray(x, dtype=np.float64).tobytes()


@settings(max_examples=40, deadline=None)
@given(
    program=programs(TENSOR_OPS),
    calls=st.lists(st.lists(st.floats(-2, 2), min_size=6, max_size=6), min_size=3, max_size=3),
)
def test_random_tensor_steps_compiled_equal_eager_on_every_call(
    program: Program, calls: list[list[float]]
) -> None:
    w, v = (
        Tensor([0.3, -0.7, 1.1], requires_grad=True),
        Tensor([0.5, 0.2, -0.4], requires_grad=True),
    )
    we, ve = Tensor(w.data.copy(), requires_grad=True), Tensor(v.data.copy(), requires_grad=True)

    def step(x: Any, y: Any, params: tuple[Tensor, Tensor]) -> Tensor:
        const = Tensor([1.0, -1.0, 0.5])  # made inside, as Tensor(x) is from an argument
        pool = [Tensor(x), Tensor(y), *params, const]
        return (run(program, TENSOR_OPS, pool) * params[0]).sum()

    f = compile(lambda x, y: step(x, y, (w, v)))
    for numbers in calls:
        x, y = np.array(numbers[:3]), Tensor(numbers[3:])  # an array and a Tensor
        got, want = f(x, y), step(x, y, (we, ve))
        assert bits(got.data) == bits(want.data)
        got.backward()
        want.backward()
        assert bits(w.grad) == bits(we.grad) and bits(v.grad) == bits(ve.grad)
        for p in (w, v, we, ve):
            p.grad = None
    assert f.stats["eager"] == 0 and f.stats["replays"] == 3


@settings(max_examples=40, deadline=None)
@given(
    program=programs(VALUE_OPS),
    calls=st.lists(st.tuples(st.floats(-2, 2), st.floats(-2, 2)), min_size=3, max_size=3),
)
def test_random_value_steps_compiled_equal_eager_on_every_call(
    program: Program, calls: list[tuple[float, float]]
) -> None:
    w, v = Value(0.3), Value(-0.7)
    we, ve = Value(0.3), Value(-0.7)

    def step(x: Value, y: Value, params: tuple[Value, Value]) -> Value:
        return run(program, VALUE_OPS, [x, y, *params, Value(1.5, requires_grad=False)])

    f = compile(lambda x, y: step(x, y, (w, v)) * w)
    for a, b in calls:
        xs, xe = (Value(a), Value(b)), (Value(a), Value(b))
        got, want = f(*xs), step(*xe, (we, ve)) * we
        assert bits(got.data) == bits(want.data)
        got.backward()
        want.backward()
        assert (bits(w.grad), bits(v.grad)) == (bits(we.grad), bits(ve.grad))
        assert (bits(xs[0].grad), bits(xs[1].grad)) == (bits(xe[0].grad), bits(xe[1].grad))
        for p in (w, v, we, ve):
            p.grad = 0.0


def random_step(n_ops: int, seed: int) -> tuple[list[Value], Callable[[Value, Value], Value]]:
    """A step of random structure, written as a user writes one: parameters read from the
    closure (one of them used by every tenth op), two Value arguments, each op reading one
    result from anywhere and one of the last few, some results never used (dead code), the
    loss a sum of the last results times a parameter."""
    rng = np.random.default_rng(seed)
    params = [Value(float(p)) for p in rng.uniform(-1.0, 1.0, 12)]
    plan = rng.integers(0, 1 << 30, size=(n_ops, 3)).tolist()

    def step(x: Value, y: Value) -> Value:
        nodes: list[Any] = [x, y, *params]
        for kind, i, j in plan:
            a, b = nodes[i % len(nodes)], nodes[-1 - j % min(6, len(nodes))]
            if kind % 10 == 0:
                b = params[0]  # a parameter with many uses: its gradient sums them in order
            k = kind % 7
            if k == 0:
                out = a + b
            elif k == 1:
                out = a * b * 0.5
            elif k == 2:
                out = (a - b).tanh()
            elif k == 3:
                out = a.sigmoid() * b
            elif k == 4:
                out = (a * 0.9).relu()
            elif k == 5:
                out = 2.0 - a * b
                _ = out * 3.0  # computed and dropped: no output needs it
            else:
                out = (a * 0.5) ** 2
            # bounded (no op makes a result larger than its inputs but + and **, squashed
            # here): no infinity, no NaN, whose sign bit the order of a sum decides
            nodes.append(out.tanh() if k in (0, 5, 6) or i % 3 == 0 else out)
        return sum_values(nodes[-40:]) * params[1]

    return params, step


@pytest.mark.parametrize("n_ops, seed", [(200, 0), (3_000, 1), (12_000, 2)])
def test_a_random_value_step_compiled_equals_eager_on_every_call(n_ops: int, seed: int) -> None:
    """The scalar program on a graph of no particular shape (wide and deep at once, batches
    and tapes, nodes with many uses): every call of a training loop, arguments and parameters
    changing, gives the eager engine's loss and gradients to the bit."""
    params, step = random_step(n_ops, seed)
    twins, eager_step = random_step(n_ops, seed)
    f = compile(step)
    rng = np.random.default_rng(seed + 100)
    for _ in range(4):
        a, b = rng.uniform(-1.0, 1.0, 2).tolist()
        xs, xe = (Value(a), Value(b)), (Value(a), Value(b))
        got, want = f(*xs), eager_step(*xe)
        assert bits(got.data) == bits(want.data)
        got.backward()
        want.backward()
        assert [bits(p.grad) for p in params] == [bits(p.grad) for p in twins]
        assert [bits(x.grad) for x in xs] == [bits(x.grad) for x in xe]
        for p, q in zip(params, twins, strict=True):
            p.data -= 0.01 * p.grad
            q.data -= 0.01 * q.grad
            p.grad = q.grad = 0.0
    assert f.stats == {"traces": 1, "replays": 4, "eager": 0}
