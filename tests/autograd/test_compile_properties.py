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
from backproplab.autograd import Tensor, Value, maximum, where
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
