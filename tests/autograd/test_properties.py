"""Property tests: random expressions against central differences.

An expression is a straight-line program: each step applies one op to earlier results, picked at
random, so subexpressions get reused (the case where accumulation goes wrong) as often as not.
The same program runs on plain floats or arrays (for central differences) and on the engine.
Programs that would leave the ops' smooth region (a tiny denominator, a relu input near its kink,
an exp overflowing) are rejected with assume(), before the engine runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.testing as npt
from backproplab.autograd import Tensor, Value, sum_values
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

EPS = 1e-6
LIMIT = 50.0  # every intermediate stays within ±LIMIT, so round-off in the differences is small
KINK_GAP = 1e-2  # how far relu inputs stay from 0: far more than an EPS step can move them
POLE_GAP = 0.5  # how far denominators (and bases of negative powers) stay from 0
EXP_MAX = 3.0  # the largest argument exp gets


class Unsafe(Exception):
    """A program left the region where central differences are trustworthy."""


UNSAFE = (Unsafe, FloatingPointError, ZeroDivisionError)


@dataclass(frozen=True)
class Step:
    op: str
    a: int  # indices of earlier results (inputs come first)
    b: int
    p: int = 2  # the exponent, for "pow"


UNARY = ("tanh", "sigmoid", "exp", "relu", "neg", "pow", "scale", "shift")
BINARY = ("add", "sub", "mul", "div")
POWERS = (-2, -1, 0, 1, 2, 3)


@st.composite
def programs(draw: st.DrawFn, n_inputs: int, max_steps: int) -> list[Step]:
    steps = []
    for k in range(draw(st.integers(1, max_steps))):
        available = n_inputs + k
        # Lean on the newest result so programs grow deep as well as wide.
        a = draw(st.one_of(st.just(available - 1), st.integers(0, available - 1)))
        b = draw(st.integers(0, available - 1))
        op = draw(st.sampled_from(UNARY + BINARY))
        steps.append(Step(op, a, b, draw(st.sampled_from(POWERS))))
    return steps


# --- one evaluator, three kinds of number --------------------------------------------------------


def _check(x: Any, ok: Callable[[Any], Any]) -> None:
    if not np.all(ok(np.asarray(x))):
        raise Unsafe


def run(steps: Sequence[Step], inputs: Sequence[Any], plain: bool) -> Any:
    """Run a program; on plain floats/arrays (plain=True) also check every op stays safe.

    The return value is the sum of the inputs and every step's result, so every step matters,
    and every Tensor input is broadcast to the full shape at least once.
    """
    xs = list(inputs)
    for s in steps:
        a, b = xs[s.a], xs[s.b]
        if s.op == "add":
            r = a + b
        elif s.op == "sub":
            r = a - b
        elif s.op == "mul":
            r = a * b
        elif s.op == "div":
            if plain:
                _check(b, lambda v: np.abs(v) >= POLE_GAP)
            r = a / b
        elif s.op == "tanh":
            r = np.tanh(a) if plain else a.tanh()
        elif s.op == "sigmoid":
            r = 1 / (1 + np.exp(-a)) if plain else a.sigmoid()
        elif s.op == "exp":
            if plain:
                _check(a, lambda v: v <= EXP_MAX)
            r = np.exp(a) if plain else a.exp()
        elif s.op == "relu":
            if plain:
                _check(a, lambda v: np.abs(v) >= KINK_GAP)
            r = np.maximum(a, 0.0) if plain else a.relu()
        elif s.op == "neg":
            r = -a
        elif s.op == "pow":
            if plain and s.p < 0:
                _check(a, lambda v: np.abs(v) >= POLE_GAP)
            r = a**s.p
        elif s.op == "scale":
            r = 0.5 * a
        elif s.op == "shift":
            r = 1.5 - a
        else:  # pragma: no cover - the strategy only draws the ops above
            raise AssertionError(s.op)
        if plain:
            _check(r, lambda v: np.abs(v) <= LIMIT)
        xs.append(r)
    total = xs[0]
    for r in xs[1:]:
        total = total + r
    return total


def central_differences(f: Callable[..., float], inputs: Sequence[Any]) -> list[Any]:
    """(f(x + EPS e_i) - f(x - EPS e_i)) / 2 EPS for every element of every input."""
    inputs = [np.array(x, dtype=np.float64) for x in inputs]
    result = []
    for x in inputs:
        g = np.zeros_like(x)
        for j in np.ndindex(x.shape):
            keep = x[j]
            x[j] = keep + EPS
            up = f(*inputs)
            x[j] = keep - EPS
            down = f(*inputs)
            x[j] = keep
            g[j] = (up - down) / (2 * EPS)
        result.append(g)
    return result


# --- scalar Values -------------------------------------------------------------------------------

away_from_zero = st.tuples(st.floats(0.1, 2.0), st.booleans()).map(
    lambda t: -t[0] if t[1] else t[0]
)


@st.composite
def value_cases(draw: st.DrawFn) -> tuple[list[float], list[Step]]:
    n = draw(st.integers(1, 3))
    inputs = [draw(away_from_zero) for _ in range(n)]
    return inputs, draw(programs(n, max_steps=10))


@settings(max_examples=100)
@given(value_cases())
def test_value_expressions_match_central_differences(case) -> None:
    inputs, steps = case

    def f(*xs: np.ndarray) -> float:
        return float(run(steps, [float(x) for x in xs], plain=True))

    # The differences evaluate the program EPS either side of every input, through the same
    # safety checks: a program that crosses a kink or a pole there is rejected, not failed.
    try:
        with np.errstate(all="raise"):
            f(*inputs)
            numeric = central_differences(f, inputs)
    except UNSAFE:
        assume(False)

    leaves = [Value(x) for x in inputs]
    run(steps, leaves, plain=False).backward()
    for leaf, n in zip(leaves, numeric, strict=True):
        npt.assert_allclose(leaf.grad, n, rtol=1e-4, atol=1e-5)


@settings(max_examples=50)
@given(value_cases())
def test_value_backward_twice_is_exactly_double(case) -> None:
    # Whatever the graph's shape, a second pass adds exactly the first pass's gradients again.
    inputs, steps = case
    try:
        with np.errstate(all="raise"):
            run(steps, inputs, plain=True)
    except UNSAFE:
        assume(False)
    leaves = [Value(x) for x in inputs]
    out = run(steps, leaves, plain=False)
    out.backward()
    first = [leaf.grad for leaf in leaves]
    out.backward()
    assert [leaf.grad for leaf in leaves] == [2 * g for g in first]


# --- broadcasting Tensors ------------------------------------------------------------------------


@st.composite
def tensor_cases(draw: st.DrawFn) -> tuple[list[np.ndarray], list[Step], np.ndarray]:
    n = draw(st.integers(2, 3))
    # Shapes drawn against a base shape with sides of 2 and 3, so that most inputs really are
    # broadcast (a 1 against a 3, a missing leading axis) rather than all of one shape.
    base = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=3))
    shapes = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=n, base_shape=base, max_dims=3, max_side=3)
    ).input_shapes
    result_shape = np.broadcast_shapes(*shapes)
    inputs = [draw(hnp.arrays(np.float64, shape, elements=away_from_zero)) for shape in shapes]
    steps = draw(programs(n, max_steps=6))
    # Weights for the final reduction: a plain sum would hide a gradient summed over the wrong
    # axis whenever the entries it mixes happen to be equal.
    weights = draw(hnp.arrays(np.float64, result_shape, elements=st.floats(0.5, 1.5)))
    return inputs, steps, weights


@settings(max_examples=80)
@given(tensor_cases())
def test_broadcasting_tensor_expressions_match_central_differences(case) -> None:
    inputs, steps, weights = case

    def f(*xs: np.ndarray) -> float:
        return float(np.sum(run(steps, list(xs), plain=True) * weights))

    try:
        with np.errstate(all="raise"):
            f(*inputs)
            numeric = central_differences(f, inputs)
    except UNSAFE:
        assume(False)

    leaves = [Tensor(x, requires_grad=True) for x in inputs]
    (run(steps, leaves, plain=False) * weights).sum().backward()
    for leaf, x, n in zip(leaves, inputs, numeric, strict=True):
        assert leaf.grad.shape == x.shape  # broadcasting undone, back to the input's own shape
        npt.assert_allclose(leaf.grad, n, rtol=1e-4, atol=1e-5)


# --- the order backward walks ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["tanh", "add", "mul", "sum3"]), st.integers(0, 10**6)),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 4),
)
def test_the_backward_order_puts_each_node_once_after_its_inputs(steps, leaves) -> None:
    # Mixed one-, two- and three-input nodes and reuse: every computed node must come once,
    # before every computed input (the backward order: root first).
    from backproplab.autograd.engine import toposort

    nodes = [Value(0.1 * (i + 1), requires_grad=True) for i in range(leaves)]
    for op, pick in steps:
        a, b, c = (nodes[(pick // k) % len(nodes)] for k in (1, 7, 49))
        if op == "tanh":
            nodes.append(a.tanh())
        elif op == "add":
            nodes.append(a + b)
        elif op == "mul":
            nodes.append(a * b)
        else:
            nodes.append(sum_values([a, b, c]))
    root = nodes[-1]
    order = toposort(root)
    assert order[0] is root
    assert len(set(map(id, order))) == len(order)
    place = {id(n): i for i, n in enumerate(order)}
    reachable, todo = set(), [root]
    while todo:
        n = todo.pop()
        if id(n) in reachable or n.op is None:
            continue
        reachable.add(id(n))
        todo.extend(n.parents)
    assert set(place) == reachable  # the computed nodes root depends on; no leaf
    for n in order:
        for p in n.parents:
            if p.op is not None:
                assert place[id(p)] > place[id(n)]
