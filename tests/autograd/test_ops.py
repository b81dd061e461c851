"""Every op in ``autograd.OPS`` checked against central differences, on Tensor and on Value.

The finite-difference helper lives here, independent of the engine's own gradcheck, so that this
file can serve as the reference gradcheck is itself tested against.
"""

from __future__ import annotations

import math
import operator
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import backproplab.autograd as autograd
import numpy as np
import pytest
from backproplab.autograd import OPS, Tensor, Value

EPS = 1e-6
RTOL, ATOL = 1e-5, 1e-7
F32_RTOL, F32_ATOL = 1e-3, 1e-4
MIN_GAP = 1e-3  # how far sampled points keep from kinks and ties

# The ops that take scalar Values: the elementwise ones plus the two n-ary scalar ones.
VALUE_OPS = {
    "Sin",
    "Cos",
    "AddNumber",
    "MulNumber",
    "DivNumber",
    "NumberSub",
    "NumberDiv",
    "NumberPow",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Pow",
    "Pow(a, b)",
    "Exp",
    "Log",
    "Tanh",
    "Sigmoid",
    "ReLU",
    "Abs",
    "Sqrt",
    "Maximum",
    "Minimum",
    "Sum(values)",
    "Dot",
}

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Case:
    op: str  # the OPS key this case exercises (checked against the recorded graph)
    name: str
    fn: Callable[..., Any]  # Tensors in, one Tensor out (Values in, one Value out for Value cases)
    shapes: tuple[Shape, ...]  # one per input; for Value-only cases only their number matters
    # Per input, or one for all: "real", "positive", "nonzero" (away from 0: kinks, divisors)
    # or "distinct" (no two elements of any "distinct" input equal: max/min and their ties).
    domain: str | tuple[str, ...] = "real"
    tensor: bool = True
    value: bool = False  # also run fn on scalar Values

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}"


def _shape_str(shape: Shape) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def _mask(shape: Shape) -> np.ndarray:
    """A fixed boolean mask with both values in it, for where() and boolean indexing."""
    return np.arange(int(np.prod(shape))).reshape(shape) % 3 != 1


# --- the case table ------------------------------------------------------------------------------

CASES: list[Case] = []


def _add(op: str, name: str, fn: Callable[..., Any], *shapes: Shape, **kw: Any) -> None:
    CASES.append(Case(op, name, fn, shapes, **kw))


# Elementwise unary ops, on Tensor and Value.
for _op, _name, _fn, _dom in [
    ("Neg", "-x", lambda x: -x, "real"),
    ("Exp", "exp", lambda x: x.exp(), "real"),
    ("Log", "log", lambda x: x.log(), "positive"),
    ("Tanh", "tanh", lambda x: x.tanh(), "real"),
    ("Sigmoid", "sigmoid", lambda x: x.sigmoid(), "real"),
    ("ReLU", "relu", lambda x: x.relu(), "nonzero"),
    ("Abs", "abs", lambda x: x.abs(), "nonzero"),
    ("Sqrt", "sqrt", lambda x: x.sqrt(), "positive"),
    ("Pow", "x**2", lambda x: x**2, "real"),
    ("Pow", "x**3", lambda x: x**3, "real"),
    ("Pow", "x**1", lambda x: x**1, "real"),
    ("Pow", "x**0", lambda x: x**0, "real"),
    ("Pow", "x**0.5", lambda x: x**0.5, "positive"),
    ("Pow", "x**-1.5", lambda x: x**-1.5, "positive"),
    ("Pow", "x**-2", lambda x: x**-2, "nonzero"),
    # A Python number on either side of every binary operator.
    ("Sin", "sin", lambda x: x.sin(), "real"),
    ("Cos", "cos", lambda x: x.cos(), "real"),
    # A Python number on either side of every binary operator: a param of the op, not a leaf.
    ("AddNumber", "x+2", lambda x: x + 2, "real"),
    ("AddNumber", "2.5+x", lambda x: 2.5 + x, "real"),
    ("AddNumber", "x-3", lambda x: x - 3, "real"),
    ("NumberSub", "3.5-x", lambda x: 3.5 - x, "real"),
    ("MulNumber", "x*2", lambda x: x * 2, "real"),
    ("MulNumber", "-1.5*x", lambda x: -1.5 * x, "real"),
    ("DivNumber", "x/3", lambda x: x / 3, "real"),
    ("NumberDiv", "2/x", lambda x: 2 / x, "nonzero"),
    ("NumberPow", "2**x", lambda x: 2**x, "real"),
    ("NumberPow", "0.5**x", lambda x: 0.5**x, "real"),
    ("Maximum", "x.maximum(0)", lambda x: x.maximum(0.0), "nonzero"),
    ("Minimum", "x.minimum(0)", lambda x: x.minimum(0), "nonzero"),
]:
    _add(_op, _name, _fn, (3, 4), domain=_dom, value=True)

_add("Maximum", "maximum(0,x)", lambda x: autograd.maximum(0.0, x), (3, 4), domain="nonzero")
_add("Minimum", "minimum(x,0)", lambda x: autograd.minimum(x, 0.0), (3, 4), domain="nonzero")
_add("Neg", "0d", lambda x: -x, ())
_add("Exp", "3d", lambda x: x.exp(), (2, 3, 4))

# Elementwise binary ops: on Value, and on Tensor for every broadcasting pattern, both orders.
BINARY: list[tuple[str, str, Callable[..., Any], str | tuple[str, ...]]] = [
    ("Add", "+", lambda a, b: a + b, "real"),
    ("Sub", "-", lambda a, b: a - b, "real"),
    ("Mul", "*", lambda a, b: a * b, "real"),
    ("Div", "/", lambda a, b: a / b, ("real", "nonzero")),
    ("Pow(a, b)", "**", lambda a, b: a**b, ("positive", "real")),
    ("Maximum", ".maximum", lambda a, b: a.maximum(b), "distinct"),
    ("Minimum", ".minimum", lambda a, b: a.minimum(b), "distinct"),
]
BROADCAST_SHAPES: list[tuple[Shape, Shape]] = [
    ((3, 4), (4,)),
    ((4,), (3, 4)),
    ((3, 1), (1, 4)),
    ((1, 4), (3, 1)),
    ((2, 3, 4), (3, 1)),
    ((3, 1), (2, 3, 4)),
    ((), (3,)),
    ((3,), ()),
    ((2, 1, 4), (3, 1)),
]
for _op, _sym, _fn, _dom in BINARY:
    _add(_op, f"3x4{_sym}3x4", _fn, (3, 4), (3, 4), domain=_dom, value=True)
    for _sa, _sb in BROADCAST_SHAPES:
        _add(_op, f"{_shape_str(_sa)}{_sym}{_shape_str(_sb)}", _fn, _sa, _sb, domain=_dom)
_add("Maximum", "maximum(a,b)", autograd.maximum, (3, 1), (4,), domain="distinct")
_add("Minimum", "minimum(a,b)", autograd.minimum, (4,), (2, 1, 4), domain="distinct")


def _where(a: Tensor, b: Tensor) -> Tensor:
    return autograd.where(_mask(np.broadcast_shapes(a.shape, b.shape)), a, b)


_add("Where", "same-shape", _where, (3, 4), (3, 4))
for _sa, _sb in BROADCAST_SHAPES:
    _add("Where", f"{_shape_str(_sa)},{_shape_str(_sb)}", _where, _sa, _sb)
_add("Where", "mask-broadcast", lambda a, b: autograd.where(_mask((4,)), a, b), (3, 4), (3, 4))
_add(
    "Where", "mask-grows-inputs", lambda a, b: autograd.where(_mask((2, 3, 4)), a, b), (4,), (3, 1)
)
_add("Where", "else-constant", lambda a: autograd.where(_mask((3, 4)), a, 0.0), (3, 4))
_add("Where", "then-constant", lambda b: autograd.where(_mask((3, 4)), 1.5, b), (3, 4))

# Value-only n-ary ops; the shapes only give the number of inputs.
_S2, _S3, _S4 = ((),) * 2, ((),) * 3, ((),) * 4
for _op, _name, _fn, _shapes in [
    ("Sum(values)", "one", lambda a: autograd.sum_values([a]), ((),)),
    ("Sum(values)", "three", lambda a, b, c: autograd.sum_values([a, b, c]), _S3),
    ("Sum(values)", "with-numbers", lambda a, b: autograd.sum_values([a, 2, b, 0.5]), _S2),
    ("Sum(values)", "repeated", lambda a, b: autograd.sum_values([a, b, a, a]), _S2),
    ("Dot", "one-pair", lambda w, x: autograd.dot([w], [x]), _S2),
    ("Dot", "two-pairs", lambda w1, w2, x1, x2: autograd.dot([w1, w2], [x1, x2]), _S4),
    ("Dot", "numbers-repeats", lambda a, b: autograd.dot([a, 2.0, b], [b, a, 3]), _S2),
    ("Dot", "square", lambda a: autograd.dot([a], [a]), ((),)),
]:
    _add(_op, _name, _fn, *_shapes, tensor=False, value=True)

# Reductions over every kind of axis, with and without keepdims.
AXES: list[Any] = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]
for _axis in AXES:
    for _keep in (False, True):
        _tag = f"axis={_axis},keepdims={_keep}".replace(" ", "")
        _add("Sum", f"sum-{_tag}", lambda x, a=_axis, k=_keep: x.sum(a, k), (2, 3, 4))
        _add("Sum", f"mean-{_tag}", lambda x, a=_axis, k=_keep: x.mean(a, k), (2, 3, 4))
        _add("Max", _tag, lambda x, a=_axis, k=_keep: x.max(a, k), (2, 3, 4), domain="distinct")
        _add("Min", _tag, lambda x, a=_axis, k=_keep: x.min(a, k), (2, 3, 4), domain="distinct")
        _add("LogSumExp", _tag, lambda x, a=_axis, k=_keep: x.logsumexp(a, k), (2, 3, 4))
_add("Sum", "1d", lambda x: x.sum(), (5,))
_add("Sum", "0d", lambda x: x.sum(), ())
_add("Max", "1d", lambda x: x.max(), (5,), domain="distinct")
_add("Min", "1d-axis=0", lambda x: x.min(axis=0), (5,), domain="distinct")
_add("LogSumExp", "1d", lambda x: x.logsumexp(), (5,))

for _axis in (0, 1, 2, -1, -2):
    _add("Softmax", f"axis={_axis}", lambda x, a=_axis: x.softmax(a), (2, 3, 4))
    _add("LogSoftmax", f"axis={_axis}", lambda x, a=_axis: x.log_softmax(a), (2, 3, 4))
_add("Softmax", "1d-default-axis", lambda x: x.softmax(), (5,))
_add("LogSoftmax", "1d-default-axis", lambda x: x.log_softmax(), (5,))

for _name, _sa, _sb in [
    ("1d@1d", (4,), (4,)),
    ("1d@2d", (4,), (4, 3)),
    ("2d@1d", (3, 4), (4,)),
    ("2d@2d", (3, 4), (4, 2)),
    ("3d@3d", (2, 3, 4), (2, 4, 5)),
    ("3d@2d", (2, 3, 4), (4, 2)),
    ("2d@3d", (3, 4), (2, 4, 2)),
    ("1d@3d", (4,), (2, 4, 3)),
    ("3d@1d", (2, 3, 4), (4,)),
    ("4d@3d", (2, 1, 3, 4), (3, 4, 2)),
]:
    _add("MatMul", _name, operator.matmul, _sa, _sb)
_M = np.linspace(-1.0, 1.0, 12).reshape(4, 3)
_add("MatMul", "tensor@array", lambda a: a @ _M, (2, 4))
_add("MatMul", "array@tensor", lambda b: _M.T @ b, (4, 2))

# A whole dense layer as one node: every activation, with and without a bias, and a constant
# batch (no gradient for x). Relu's kink is in z = x @ W + b, away from which the draws keep.
for _act in ("none", "tanh", "sigmoid", "relu"):
    _add(
        "Dense", f"{_act}", lambda x, w, b, a=_act: autograd.dense(x, w, b, a), (5, 3), (3, 4), (4,)
    )
    _add(
        "Dense",
        f"{_act}-no-bias",
        lambda x, w, a=_act: autograd.dense(x, w, None, a),
        (5, 3),
        (3, 2),
    )
_X = np.linspace(-1.0, 1.0, 15).reshape(5, 3)
_add("Dense", "array-batch", lambda w, b: autograd.dense(_X, w, b, "tanh"), (3, 4), (4,))

_add("SquaredError", "mean", lambda p, t: autograd.squared_error(p, t), (4, 3), (4, 3))
_add("SquaredError", "sum", lambda p, t: autograd.squared_error(p, t, "sum"), (5, 1), (5, 1))
_add("SquaredError", "array-target", lambda p: autograd.squared_error(p, _M), (4, 3))

for _name, _fn in [
    ("-1", lambda x: x.reshape(-1)),
    ("4,-1", lambda x: x.reshape(4, -1)),
    ("(2,-1,2)", lambda x: x.reshape((2, -1, 2))),
    ("12,1", lambda x: x.reshape(12, 1)),
]:
    _add("Reshape", _name, _fn, (3, 4))
_add("Reshape", "to-0d", lambda x: x.reshape(()), (1,))

for _name, _fn in [
    ("2,0,1", lambda x: x.transpose(2, 0, 1)),
    ("(1,2,0)", lambda x: x.transpose((1, 2, 0))),
    ("-1,0,-2", lambda x: x.transpose(-1, 0, -2)),
    ("reversed", lambda x: x.transpose()),
    (".T-3d", lambda x: x.T),
]:
    _add("Transpose", _name, _fn, (2, 3, 4))
_add("Transpose", ".T-2d", lambda x: x.T, (3, 4))

for _src, _dst in [((3, 1), (2, 3, 4)), ((4,), (3, 4)), ((), (2, 3)), ((1,), (5,))]:
    _add(
        "BroadcastTo",
        f"{_shape_str(_src)}->{_shape_str(_dst)}",
        lambda x, s=_dst: x.broadcast_to(s),
        _src,
    )

# Indexing on a 4x5 input: every index kind NumPy has, including repeats that must accumulate.
for _name, _fn in [
    ("slice", lambda x: x[1:3]),
    ("slices-2d", lambda x: x[1:, :3]),
    ("negative-step", lambda x: x[::-1]),
    ("negative-steps-2d", lambda x: x[3:0:-2, ::-2]),
    ("int", lambda x: x[2]),
    ("negative-int-pair", lambda x: x[-1, 2]),
    ("int-array", lambda x: x[[0, 2, 3]]),
    ("repeated-ints", lambda x: x[[0, 0, 1, 3, 3, 3]]),
    ("2d-int-array", lambda x: x[np.array([[0, 1], [2, 2]])]),
    ("negative-int-array", lambda x: x[np.array([-1, -4, -1])]),
    ("bool-mask", lambda x: x[_mask((4, 5))]),
    ("bool-row-mask", lambda x: x[np.array([True, False, True, True])]),
    ("slice-and-array", lambda x: x[1:, [0, 2, 2]]),
    ("array-and-slice", lambda x: x[[3, 1], ::-2]),
    ("array-pair-repeated", lambda x: x[[0, 1, 1], [4, 2, 2]]),
    ("none", lambda x: x[None]),
    ("none-ellipsis-int", lambda x: x[None, ..., 1]),
    ("ellipsis-none-slice", lambda x: x[..., None, 1:3]),
    ("ellipsis-negative-int", lambda x: x[..., -1]),
    ("tensor-index", lambda x: x[Tensor([0.0, 2.0, 2.0])]),
]:
    _add("Index", _name, _fn, (4, 5))
_add("Index", "3d-split-arrays", lambda x: x[[1, 0], :, [3, 3]], (2, 3, 4))
_add("Index", "3d-bool-and-slice", lambda x: x[:, _mask((3,)), 1:], (2, 3, 4))

# Scatter has no public front end (only a recorded backward of Index builds one), so the
# table reaches it through Tensor.apply, the custom-op entry point.
_add(
    "Scatter",
    "repeated-rows",
    lambda x: Tensor.apply(OPS["Scatter"], x, params=((5, 4), np.array([0, 2, 2]))),
    (3, 4),
)
_add(
    "Scatter",
    "slices",
    lambda x: Tensor.apply(OPS["Scatter"], x, params=((4, 5), (slice(None), slice(3, 0, -2)))),
    (4, 2),
)

for _axis, _shapes in [
    (0, ((2, 3), (1, 3), (3, 3))),
    (1, ((2, 1), (2, 3))),
    (-1, ((2, 3, 1), (2, 3, 2))),
    (-2, ((2, 1, 2), (2, 3, 2))),
    (0, ((4,),)),
]:
    _tag = f"axis={_axis},{len(_shapes)}-inputs"
    _add("Concatenate", _tag, lambda *xs, a=_axis: autograd.concatenate(xs, a), *_shapes)
_add(
    "Concatenate",
    "with-array",
    lambda a: autograd.concatenate([np.ones((1, 3)), a], axis=0),
    (2, 3),
)
for _axis in (0, 1, 2, -1, -3):
    _add(
        "Concatenate",
        f"stack-axis={_axis}",
        lambda *xs, a=_axis: autograd.stack(xs, a),
        (2, 3),
        (2, 3),
        (2, 3),
    )

TENSOR_CASES = [c for c in CASES if c.tensor]
VALUE_CASES = [c for c in CASES if c.value]


# --- helpers -------------------------------------------------------------------------------------


def _rng(case: Case) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(case.id.encode()))


def _draw(rng: np.random.Generator, shapes: tuple[Shape, ...], domain: Any) -> list[np.ndarray]:
    domains = (domain,) * len(shapes) if isinstance(domain, str) else domain
    sizes = [int(np.prod(s)) for s in shapes]
    # One shuffled pool of values at least MIN_GAP apart serves every "distinct" input, so no
    # pair ties within an input (reductions) or across inputs (maximum/minimum, any broadcast).
    n = sum(size for size, d in zip(sizes, domains, strict=True) if d == "distinct")
    step = 4.0 / max(n, 1)
    assert step / 2 >= MIN_GAP
    pool = iter(rng.permutation(-2.0 + step * (np.arange(n) + rng.uniform(0.25, 0.75, n))))
    out = []
    for shape, size, d in zip(shapes, sizes, domains, strict=True):
        if d == "real":
            x = rng.uniform(-2.0, 2.0, size)
        elif d == "positive":
            x = rng.uniform(0.5, 2.0, size)
        elif d == "nonzero":
            x = rng.choice([-1.0, 1.0], size) * rng.uniform(0.2, 2.0, size)
        elif d == "distinct":
            x = np.array([next(pool) for _ in range(size)])
        else:
            raise ValueError(d)
        out.append(x.reshape(shape))
    return out


def _ops_in_graph(root: Any) -> set[str]:
    seen, stack, names = set(), [root], set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.op is not None:
            names.add(n.op.name)
        stack.extend(n.parents)
    return names


def _forward_shape(case: Case, arrays: list[np.ndarray]) -> Shape:
    with autograd.no_grad():
        return case.fn(*[Tensor(a) for a in arrays]).shape


def _engine_grads(
    case: Case, arrays: list[np.ndarray], w: np.ndarray
) -> tuple[Tensor, list[np.ndarray]]:
    xs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = case.fn(*xs)
    assert case.op in _ops_in_graph(out), f"the case never reaches {case.op}"
    (out * Tensor(w)).sum().backward()
    for x in xs:
        # Tensor documents .grad as an ndarray; a NumPy scalar, say, could not be zeroed in place.
        assert isinstance(x.grad, np.ndarray), f"grad is {type(x.grad).__name__}"
        assert x.grad.shape == x.shape
        assert x.grad.dtype == x.dtype
    return out, [x.grad for x in xs]


def _numeric_grads(case: Case, arrays: list[np.ndarray], w: np.ndarray) -> list[np.ndarray]:
    """Central differences of sum(fn(*arrays) * w), one element at a time, in float64."""
    arrays = [a.astype(np.float64) for a in arrays]

    def loss() -> float:
        with autograd.no_grad():
            out = case.fn(*[Tensor(a.copy()) for a in arrays])
        return float(np.sum(out.data * w))

    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            x0 = a[i]
            a[i] = x0 + EPS
            hi = loss()
            a[i] = x0 - EPS
            lo = loss()
            a[i] = x0
            g[i] = (hi - lo) / (2 * EPS)
        grads.append(g)
    return grads


def _numeric_value_grads(case: Case, xs: list[float]) -> list[float]:
    def f(ys: list[float]) -> float:
        with autograd.no_grad():
            return case.fn(*[Value(y) for y in ys]).data

    grads = []
    for i in range(len(xs)):
        hi, lo = list(xs), list(xs)
        hi[i] += EPS
        lo[i] -= EPS
        grads.append((f(hi) - f(lo)) / (2 * EPS))
    return grads


# --- the table is complete -----------------------------------------------------------------------


def test_every_op_has_a_case() -> None:
    missing = set(OPS) - {c.op for c in CASES}
    assert not missing, f"ops with no gradient test: {sorted(missing)}"


def test_every_case_names_a_real_op() -> None:
    assert {c.op for c in CASES} <= set(OPS)


def test_value_cases_cover_the_scalar_ops() -> None:
    assert {c.op for c in VALUE_CASES} == VALUE_OPS


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


# --- gradients against central differences -------------------------------------------------------


@pytest.mark.parametrize("case", TENSOR_CASES, ids=lambda c: c.id)
def test_tensor_gradient(case: Case) -> None:
    rng = _rng(case)
    arrays = _draw(rng, case.shapes, case.domain)
    w = np.asarray(rng.normal(size=_forward_shape(case, arrays)))
    out, grads = _engine_grads(case, arrays, w)
    assert out.dtype == np.float64
    for i, (g, n) in enumerate(zip(grads, _numeric_grads(case, arrays, w), strict=True)):
        np.testing.assert_allclose(g, n, rtol=RTOL, atol=ATOL, err_msg=f"input {i}")


@pytest.mark.parametrize("case", VALUE_CASES, ids=lambda c: c.id)
def test_value_gradient(case: Case) -> None:
    xs = [float(a) for a in _draw(_rng(case), ((),) * len(case.shapes), case.domain)]
    vs = [Value(x) for x in xs]
    out = case.fn(*vs)
    assert isinstance(out, Value)
    assert case.op in _ops_in_graph(out)
    out.backward()
    for i, (v, n) in enumerate(zip(vs, _numeric_value_grads(case, xs), strict=True)):
        assert type(v.grad) is float
        assert v.grad == pytest.approx(n, rel=RTOL, abs=ATOL), f"input {i}"


@pytest.mark.parametrize("case", TENSOR_CASES, ids=lambda c: c.id)
def test_float32_stays_float32(case: Case) -> None:
    rng = _rng(case)
    arrays = [a.astype(np.float32) for a in _draw(rng, case.shapes, case.domain)]
    w = np.asarray(rng.normal(size=_forward_shape(case, arrays))).astype(np.float32)
    out, grads = _engine_grads(case, arrays, w)  # also checks each grad is float32
    assert out.dtype == np.float32
    # The float64 gradient at the very same (float32-representable) points.
    _, reference = _engine_grads(case, [a.astype(np.float64) for a in arrays], w.astype(np.float64))
    for i, (g, r) in enumerate(zip(grads, reference, strict=True)):
        np.testing.assert_allclose(g, r, rtol=F32_RTOL, atol=F32_ATOL, err_msg=f"input {i}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", TENSOR_CASES, ids=lambda c: c.id)
def test_a_training_pass_gives_the_default_pass_gradients(case: Case, dtype: Any) -> None:
    # backward(retain_grads=False) on a scalar root starts from a shared NumPy scalar 1 rather
    # than a fresh array: whatever rule meets it first (the op itself, when its output is a
    # scalar), the leaves must get the same gradients, as arrays of their own shape and dtype.
    rng = _rng(case)
    arrays = [a.astype(dtype) for a in _draw(rng, case.shapes, case.domain)]
    w = np.asarray(rng.normal(size=_forward_shape(case, arrays))).astype(dtype)
    grads = []
    for retain in (True, False):
        xs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
        out = case.fn(*xs)
        root = out if out.shape == () else (out * Tensor(w)).sum()
        root.backward(retain_grads=retain)
        for x in xs:
            assert isinstance(x.grad, np.ndarray), f"grad is {type(x.grad).__name__}"
            assert x.grad.shape == x.shape and x.grad.dtype == x.dtype
            assert x.grad.flags.writeable
        grads.append([x.grad for x in xs])
    for i, (kept, trained) in enumerate(zip(*grads, strict=True)):
        np.testing.assert_array_equal(trained, kept, err_msg=f"input {i}")


# --- ties and repeated indices: exact values, where finite differences cannot look ---------------


@pytest.mark.parametrize(
    ("x", "reduce", "expected"),
    [
        ([1.0, 3.0, 3.0], lambda x: x.max(), [0.0, 0.5, 0.5]),
        ([2.0, 1.0, 1.0, 5.0], lambda x: x.min(), [0.0, 0.5, 0.5, 0.0]),
        ([4.0, 4.0, 4.0, 4.0], lambda x: x.max(), [0.25] * 4),
        (
            [[3.0, 3.0, 1.0], [2.0, 5.0, 5.0]],
            lambda x: x.max(axis=1),
            [[0.5, 0.5, 0], [0, 0.5, 0.5]],
        ),
        ([[1.0, 2.0], [1.0, 0.0]], lambda x: x.max(axis=0), [[0.5, 1.0], [0.5, 0.0]]),
        ([[1.0, 2.0], [1.0, 0.0]], lambda x: x.min(-1, keepdims=True), [[1.0, 0.0], [0.0, 1.0]]),
        ([[7.0, 1.0], [7.0, 7.0]], lambda x: x.max((0, 1)), [[1 / 3, 0.0], [1 / 3, 1 / 3]]),
    ],
    ids=["max", "min", "max-all-equal", "max-axis1", "max-axis0", "min-keepdims", "max-tuple"],
)
def test_reduction_ties_split_evenly(x: Any, reduce: Callable[..., Any], expected: Any) -> None:
    t = Tensor(x, requires_grad=True)
    reduce(t).sum().backward()
    np.testing.assert_array_equal(t.grad, expected)


def test_elementwise_ties_split_evenly() -> None:
    a = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = Tensor([1.0, 0.0, 3.0], requires_grad=True)
    (autograd.maximum(a, b) + 10 * autograd.minimum(a, b)).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.5 + 5, 1.0, 0.5 + 5])
    np.testing.assert_array_equal(b.grad, [0.5 + 5, 10.0, 0.5 + 5])

    u, v = Value(2.0), Value(2.0)
    (u.maximum(v) + 10 * u.minimum(v)).backward()
    assert (u.grad, v.grad) == (5.5, 5.5)


def test_maximum_of_a_node_with_itself_has_gradient_one() -> None:
    x = Tensor([1.0, -2.0], requires_grad=True)
    (x.maximum(x) + x.minimum(x)).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    v = Value(3.0)
    v.maximum(v).backward()
    assert v.grad == 1.0


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        ([0, 0, 1], [2, 1, 0, 0, 0]),
        (np.array([4, 4, 4, -1]), [0, 0, 0, 0, 4]),
        (np.array([[0, 1], [1, 1]]), [1, 3, 0, 0, 0]),
    ],
    ids=["list", "negative-repeats", "2d-index"],
)
def test_repeated_indices_accumulate(index: Any, expected: list[float]) -> None:
    x = Tensor(np.arange(5.0), requires_grad=True)
    x[index].sum().backward()
    np.testing.assert_array_equal(x.grad, expected)


def test_repeated_index_pairs_accumulate_in_2d() -> None:
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    x[[0, 0, 1], [2, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0, 2], [1, 0, 0]])


# --- stability at |x| = 1000 ---------------------------------------------------------------------

EXTREME = np.array([[-1000.0, 0.0, 1000.0], [1000.0, 1000.0, -1000.0]])


def _logsumexp_ref(x: np.ndarray, axis: Any, keepdims: bool = False) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    out = np.log(np.exp(x - top).sum(axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


@pytest.mark.parametrize(
    ("fn", "reference"),
    [
        (lambda x: x.sigmoid(), lambda x: (np.sign(x) + 1) / 2),
        (lambda x: x.tanh(), np.sign),
        *[
            (lambda x, a=a: x.softmax(a), lambda x, a=a: np.exp(x - _logsumexp_ref(x, a, True)))
            for a in (0, 1, -1)
        ],
        *[
            (lambda x, a=a: x.log_softmax(a), lambda x, a=a: x - _logsumexp_ref(x, a, True))
            for a in (0, -1)
        ],
        *[
            (lambda x, a=a: x.logsumexp(a), lambda x, a=a: _logsumexp_ref(x, a))
            for a in (None, 0, 1, (0, 1))
        ],
    ],
    ids=["sigmoid", "tanh"]
    + [f"softmax-axis={a}" for a in (0, 1, -1)]
    + [f"log_softmax-axis={a}" for a in (0, -1)]
    + [f"logsumexp-axis={a}" for a in (None, 0, 1, (0, 1))],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stable_at_large_magnitudes(
    fn: Callable[..., Any], reference: Callable[..., Any], dtype: Any
) -> None:
    x = Tensor(EXTREME.astype(dtype), requires_grad=True)
    with np.errstate(all="raise", under="ignore"):  # an overflow inside counts too
        out = fn(x)
        w = np.linspace(1.0, 2.0, out.size).reshape(out.shape)
        (out * w.astype(dtype)).sum().backward()
    assert np.all(np.isfinite(out.data))
    assert np.all(np.isfinite(x.grad))
    assert out.dtype == x.grad.dtype == dtype
    # float32 holds 1000 only to about 1e-4, so its outputs can be no closer than that.
    out_atol = max(1e-9, 4 * np.finfo(dtype).eps * 1000)
    np.testing.assert_allclose(out.data, reference(EXTREME), rtol=1e-6, atol=out_atol)
    (numeric,) = _numeric_grads(Case("-", "-", fn, (EXTREME.shape,)), [EXTREME.copy()], w)
    tol = 1e-5 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(x.grad, numeric, rtol=tol, atol=tol)


@pytest.mark.parametrize("x", [-1000.0, 1000.0])
def test_value_sigmoid_and_tanh_stable(x: float) -> None:
    v = Value(x)
    s, t = v.sigmoid(), v.tanh()
    assert s.data == (1.0 if x > 0 else 0.0)
    assert t.data == math.copysign(1.0, x)
    (s + t).backward()
    assert math.isfinite(v.grad)
    assert v.grad == 0.0


def test_value_exp_overflows_to_inf() -> None:
    assert Value(1000.0).exp().data == math.inf


# --- Value specifics -----------------------------------------------------------------------------

_LN2, _LN3 = math.log(2.0), math.log(3.0)


@pytest.mark.parametrize(
    ("expr", "value", "grad"),
    [
        (lambda v: 2 + v, 5.0, 1.0),
        (lambda v: v + 2.5, 5.5, 1.0),
        (lambda v: v - 3, 0.0, 1.0),
        (lambda v: 3.5 - v, 0.5, -1.0),
        (lambda v: 2 * v, 6.0, 2.0),
        (lambda v: v * 0.5, 1.5, 0.5),
        (lambda v: 2 / v, 2 / 3, -2 / 9),
        (lambda v: v / 2, 1.5, 0.5),
        (lambda v: 2**v, 8.0, 8.0 * _LN2),
        (lambda v: 2.0**v, 8.0, 8.0 * _LN2),
        (lambda v: v**2, 9.0, 6.0),
        (lambda v: v**2.0, 9.0, 6.0),
        (lambda v: v**-1, 1 / 3, -1 / 9),
        (lambda v: v**0.5, math.sqrt(3.0), 0.5 / math.sqrt(3.0)),
        (lambda v: v ** Value(2.0), 9.0, 6.0),
        (lambda v: Value(2.0) ** v, 8.0, 8.0 * _LN2),
        (lambda v: v**v, 27.0, 27.0 * (1 + _LN3)),
        (lambda v: -v, -3.0, -1.0),
    ],
    ids=[
        "2+v",
        "v+2.5",
        "v-3",
        "3.5-v",
        "2*v",
        "v*0.5",
        "2/v",
        "v/2",
        "2**v",
        "2.0**v",
        "v**2",
        "v**2.0",
        "v**-1",
        "v**0.5",
        "v**Value",
        "Value**v",
        "v**v",
        "-v",
    ],
)
def test_value_operators_with_numbers(expr: Callable[..., Any], value: float, grad: float) -> None:
    v = Value(3.0)
    out = expr(v)
    assert isinstance(out, Value)
    assert out.data == pytest.approx(value, rel=1e-12)
    out.backward()
    assert v.grad == pytest.approx(grad, rel=1e-12)


def test_value_power_of_value_exponent_gradient() -> None:
    a, b = Value(3.0), Value(2.0)
    (a**b).backward()
    assert a.grad == pytest.approx(6.0, rel=1e-12)
    assert b.grad == pytest.approx(9.0 * _LN3, rel=1e-12)


@pytest.mark.parametrize("fn", [lambda x: x.relu(), lambda x: x.abs()], ids=["relu", "abs"])
def test_kink_gradient_is_zero_at_zero(fn: Callable[..., Any]) -> None:
    v = Value(0.0)
    fn(v).backward()
    assert v.grad == 0.0
    t = Tensor([0.0, -0.0], requires_grad=True)
    fn(t).sum().backward()
    np.testing.assert_array_equal(t.grad, [0.0, 0.0])


def test_power_zero_at_zero_has_zero_gradient() -> None:
    v = Value(0.0)
    (v**0).backward()
    assert v.grad == 0.0
    t = Tensor([0.0, 1.0], requires_grad=True)
    (t**0).sum().backward()
    np.testing.assert_array_equal(t.grad, [0.0, 0.0])


# --- the fused layer and loss refuse what does not fit, naming the shapes ------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (np.ones((5, 3)), np.ones((4, 2))),
            r"x of shape \(5, 3\) does not fit weight of shape \(4, 2\)",
        ),
        ((np.ones(3), np.ones((3, 2))), r"x of shape \(3,\) does not fit weight of shape \(3, 2\)"),
        ((np.ones((5, 3)), np.ones(3)), r"x of shape \(5, 3\) does not fit weight of shape \(3,\)"),
        (
            (np.ones((5, 3)), np.ones((3, 2)), np.ones(3)),
            r"bias of shape \(3,\) does not fit weight",
        ),
        ((np.ones((5, 3)), np.ones((3, 2)), None, "softplus"), r"unknown activation 'softplus'"),
    ],
)
def test_dense_refuses_misfits(args: tuple[Any, ...], message: str) -> None:
    x, w, *rest = args
    with pytest.raises(ValueError, match=message):
        autograd.dense(x, Tensor(w, requires_grad=True), *rest)


def test_squared_error_refuses_different_shapes_and_reductions() -> None:
    p = Tensor(np.ones((4, 1)), requires_grad=True)
    with pytest.raises(
        ValueError, match=r"pred of shape \(4, 1\) and target of shape \(4,\) differ"
    ):
        autograd.squared_error(p, np.ones(4))
    with pytest.raises(ValueError, match=r"reduction must be 'mean' or 'sum', got 'max'"):
        autograd.squared_error(p, np.ones((4, 1)), "max")


def test_squared_error_value_by_hand() -> None:
    p, t = np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[0.0, 2.0], [1.0, 1.0]])
    assert autograd.squared_error(Tensor(p), t).item() == pytest.approx((1 + 0 + 4 + 16) / 4)
    assert autograd.squared_error(Tensor(p), t, "sum").item() == pytest.approx(21.0)
