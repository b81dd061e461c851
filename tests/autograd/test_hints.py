"""Coming from PyTorch: unknown attributes and keywords name ours or a near miss; var, std,
argmax, zeros_like and ones_like; help() shows each recorded op's formula from ops.py; lazy
names are listed by dir()."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import backproplab.viz
import numpy as np
import numpy.testing as npt
import pytest
import torch
from backproplab.autograd import tensor as tensor_module
from backproplab.autograd import value as value_module
from backproplab.autograd.ops import Op

import backproplab
from backproplab import Tensor, Value, concatenate, gradcheck, ones_like, stack, zeros_like

X = np.array([[0.3, -1.2, 2.0], [1.5, 0.1, -0.7]])


def message(f: Callable[[], Any], kind: type[Exception]) -> str:
    with pytest.raises(kind) as info:
        f()
    return str(info.value)


# --- attributes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("view", "'Tensor' object has no attribute 'view': PyTorch's view is reshape here"),
        ("unsqueeze", "x[:, None]"),
        ("permute", "transpose"),
        ("t", "x.T"),
        ("dim", "x.ndim"),
        ("numel", "x.size"),
        ("values", "x.max(axis) returns the values themselves; x.argmax(axis) the indices"),
        ("retain_grad", "not needed here: after loss.backward() every node keeps its .grad"),
        ("clamp", "x.maximum(low).minimum(high)"),
        ("pow", "x ** p"),
        ("exp_", "in-place ops (PyTorch's exp_) are not recorded in the graph; write x = x.exp("),
        ("reshpe", "did you mean 'reshape'"),
        ("softmx", "did you mean 'softmax'"),
        ("zero_gard", "did you mean 'zero_grad'"),
    ],
)
def test_a_tensor_attribute_from_pytorch_or_mistyped_names_ours(name: str, expected: str) -> None:
    assert expected in message(lambda: getattr(Tensor(X), name), AttributeError)


def test_a_value_gets_only_hints_that_fit_a_value() -> None:
    v = Value(0.5)
    assert "did you mean 'tanh'" in message(lambda: v.tanhh, AttributeError)
    assert "write x = x.relu(...)" in message(lambda: v.relu_, AttributeError)
    assert "retain_grads=True is the default" in message(lambda: v.retain_grad, AttributeError)
    # a Value has no reshape: no hint that names one
    assert message(lambda: v.view, AttributeError) == "'Value' object has no attribute 'view'"


def test_missing_attributes_still_behave_as_missing() -> None:
    t = Tensor(X)
    with pytest.raises(AttributeError) as info:
        t.view(-1)
    assert type(info.value) is AttributeError  # a traceback names it AttributeError
    assert not hasattr(t, "view") and getattr(t, "nothing_like_it", 7) == 7
    assert not hasattr(Value(1.0), "shape")
    assert message(lambda: t.nothing_like_it, AttributeError) == (
        "'Tensor' object has no attribute 'nothing_like_it'"
    )


# --- keywords -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.sum(1, keepdim=True),
        lambda t: t.mean(0, keepdim=True),
        lambda t: t.max(1, keepdim=True),
        lambda t: t.min(1, keepdim=True),
        lambda t: t.var(0, keepdim=True),
        lambda t: t.std(0, keepdim=True),
        lambda t: t.logsumexp(1, keepdim=True),
        lambda t: t.argmax(1, keepdim=True),
    ],
)
def test_keepdim_names_keepdims(call: Callable[[Tensor], Any]) -> None:
    text = message(lambda: call(Tensor(X)), TypeError)
    assert "got an unexpected keyword argument 'keepdim': PyTorch's keepdim is keepdims" in text


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.sum(dim=1),
        lambda t: t.softmax(dim=1),
        lambda t: t.log_softmax(dim=-1),
        lambda t: t.argmax(dim=1),
        lambda t: concatenate([t, t], dim=0),
        lambda t: stack([t, t], dim=0),
    ],
)
def test_dim_names_axis(call: Callable[[Tensor], Any]) -> None:
    text = message(lambda: call(Tensor(X)), TypeError)
    assert "keyword argument 'dim': PyTorch's dim is axis here: axis=" in text


def test_bessels_correction_by_pytorchs_names_says_ddof() -> None:
    t = Tensor(X)
    assert "unbiased=True is ddof=1" in message(lambda: t.var(0, unbiased=True), TypeError)
    assert "correction=1 is ddof=1" in message(lambda: t.std(correction=1), TypeError)


def test_other_keywords_get_a_near_miss_or_the_list() -> None:
    t = Tensor(X)
    assert "did you mean 'axis'?" in message(lambda: t.sum(axes=1), TypeError)
    assert "Tensor.mean() got an unexpected keyword argument 'foo'; it takes axis, keepdims" in (
        message(lambda: t.mean(foo=1), TypeError)
    )


def test_known_keywords_pass_through_and_the_signature_shows() -> None:
    t = Tensor(X)
    npt.assert_array_equal(t.sum(axis=1, keepdims=True).data, X.sum(axis=1, keepdims=True))
    assert list(inspect.signature(Tensor.sum).parameters) == ["self", "axis", "keepdims"]


# --- var, std, argmax, zeros_like, ones_like ----------------------------------------------------


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_var_and_std_are_numpys_with_pytorchs_gradients(
    axis: Any, ddof: int, keepdims: bool
) -> None:
    for name in ("var", "std"):
        x = Tensor(X, requires_grad=True)
        out = getattr(x, name)(axis, keepdims=keepdims, ddof=ddof)
        npt.assert_allclose(out.data, getattr(np, name)(X, axis, ddof=ddof, keepdims=keepdims))
        weights = np.random.default_rng(0).uniform(0.5, 1.5, out.shape)
        (out * weights).sum().backward()
        theirs = torch.tensor(X, requires_grad=True)
        dim = axis if axis is not None else (0, 1)
        their_out = getattr(theirs, name)(dim=dim, correction=ddof, keepdim=keepdims)
        (their_out * torch.tensor(weights)).sum().backward()
        npt.assert_allclose(x.grad, theirs.grad.numpy(), rtol=1e-10, err_msg=name)  # type: ignore[union-attr]


def test_var_and_std_against_central_differences() -> None:
    assert gradcheck(lambda x: x.var(0, ddof=1), X)
    assert gradcheck(lambda x: x.std(1, keepdims=True), X)


def test_var_refuses_a_ddof_it_cannot_divide_by() -> None:
    with pytest.raises(ValueError, match=r"ddof must be an int in \[0, 2\) for 2 elements"):
        Tensor(X).var(0, ddof=2)
    with pytest.raises(ValueError, match=r"got 0\.5"):
        Tensor(X).var(ddof=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        Tensor(X).std(2)


def test_argmax_is_an_int_array_with_no_graph() -> None:
    x = Tensor(X, requires_grad=True)
    rows = x.argmax(1)
    assert isinstance(rows, np.ndarray) and rows.dtype.kind == "i"
    npt.assert_array_equal(rows, X.argmax(1))
    npt.assert_array_equal(x.argmax(0, keepdims=True), X.argmax(0, keepdims=True))
    assert int(x.argmax()) == int(X.argmax())
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        x.argmax(3)


def test_zeros_like_and_ones_like() -> None:
    c = Tensor(X, requires_grad=True)
    z, o = zeros_like(c), ones_like(X.astype(np.float32))
    assert isinstance(z, Tensor) and z.shape == X.shape and not z.requires_grad
    npt.assert_array_equal(z.data, 0.0)
    assert o.dtype == np.float32 and np.all(o.data == 1.0)
    np.add.at(z.data, [0, 0], 1.0)  # the lecture's dC[ix] += ..., on the array
    assert z.data[0, 0] == 2.0 and c.data[0, 0] == X[0, 0]
    assert zeros_like(c, requires_grad=True).requires_grad
    with pytest.raises(TypeError, match="zeros_like takes a Tensor or an array, got a Value"):
        zeros_like(Value(1.0))


# --- help() shows each recorded op's formula ----------------------------------------------------

RECORDS_NOTHING = {
    "Value": {"apply", "backward", "constant", "detach", "fit_gradient", "item", "zero_grad"}
    | {"zeros_like"},
    "Tensor": {"apply", "backward", "detach", "fit_gradient", "item", "numpy", "zero_grad"}
    | {"zeros_like", "argmax"},
}
ARITHMETIC = [
    *("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__"),
    *("__rtruediv__", "__pow__", "__rpow__", "__neg__", "__matmul__", "__rmatmul__"),
    "__getitem__",
]
SQUARE = np.array([[0.3, 1.2], [1.5, 0.4]])  # positive: log, sqrt and x ** x are defined
CALLS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "Value": {
        "__add__": lambda x: [x + x, x + 2.0],
        "__radd__": lambda x: 2.0 + x,
        "__sub__": lambda x: [x - x, x - 2.0],
        "__rsub__": lambda x: 2.0 - x,
        "__mul__": lambda x: [x * x, x * 2.0],
        "__rmul__": lambda x: 2.0 * x,
        "__truediv__": lambda x: [x / x, x / 2.0],
        "__rtruediv__": lambda x: 2.0 / x,
        "__pow__": lambda x: [x**2.0, x**x],
        "__rpow__": lambda x: 2.0**x,
        "__neg__": lambda x: -x,
        "maximum": lambda x: x.maximum(x),
        "minimum": lambda x: x.minimum(x),
    },
    "Tensor": {
        "__add__": lambda x: [x + x, x + 2.0],
        "__radd__": lambda x: [2.0 + x, SQUARE + x],
        "__sub__": lambda x: [x - x, x - 2.0],
        "__rsub__": lambda x: [2.0 - x, SQUARE - x],
        "__mul__": lambda x: [x * x, x * 2.0],
        "__rmul__": lambda x: [2.0 * x, SQUARE * x],
        "__truediv__": lambda x: [x / x, x / 2.0],
        "__rtruediv__": lambda x: [2.0 / x, SQUARE / x],
        "__pow__": lambda x: [x**2.0, x**x],
        "__rpow__": lambda x: [2.0**x, SQUARE**x],
        "__matmul__": lambda x: x @ x,
        "__rmatmul__": lambda x: SQUARE @ x,
        "__getitem__": lambda x: x[0],
        "maximum": lambda x: x.maximum(x),
        "minimum": lambda x: x.minimum(x),
        "reshape": lambda x: x.reshape(4),
        "transpose": lambda x: x.transpose(),
        "T": lambda x: x.T,
        "broadcast_to": lambda x: x.broadcast_to((3, 2, 2)),
        "var": lambda x: x.var(0),
        "std": lambda x: x.std(0),
    },
}
FUNCTIONS = {
    "sum_values": lambda x: value_module.sum_values([x, x]),
    "dot": lambda x: value_module.dot([x], [x]),
    "concatenate": lambda x: tensor_module.concatenate([x, x]),
    "stack": lambda x: tensor_module.stack([x, x]),
    "where": lambda x: tensor_module.where(SQUARE > 0, x, x),
    "maximum": lambda x: tensor_module.maximum(x, x),
    "minimum": lambda x: tensor_module.minimum(x, x),
    "dense": lambda x: tensor_module.dense(x, x, Tensor([0.1, 0.2], requires_grad=True), "tanh"),
    "squared_error": lambda x: tensor_module.squared_error(x, SQUARE),
}


def methods(cls: type) -> list[str]:
    """The public methods of cls, and the arithmetic it defines."""
    names = []
    for name in dir(cls):
        member = inspect.getattr_static(cls, name)
        is_method = isinstance(member, (staticmethod, classmethod)) or inspect.isfunction(member)
        if is_method and (not name.startswith("_") or name in ARITHMETIC):
            names.append(name)
    return names + (["T"] if cls is Tensor else [])


def recorded_ops(out: Any) -> set[type[Op]]:
    seen, stack_, ops = set(), [*out] if isinstance(out, list) else [out], set()
    while stack_:
        node = stack_.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.op is not None:
            ops.add(node.op)
            stack_.extend(node.parents)
    return ops


def assert_formulas_in(doc: str | None, ops: set[type[Op]], where: str) -> None:
    assert ops, f"{where} recorded no op"
    for op in ops:
        formula = (op.__doc__ or "").strip().split("\n\n")[0].splitlines()
        for line in formula:
            assert line.strip() in (doc or ""), f"{where}'s docstring lacks {op.name}: {line}"


@pytest.mark.parametrize("cls", [Value, Tensor], ids=["Value", "Tensor"])
def test_every_method_that_records_an_op_shows_its_formula(cls: type) -> None:
    kind = cls.__name__
    calls = {
        name: CALLS[kind].get(name, lambda x, n=name: getattr(x, n)()) for name in methods(cls)
    }
    for name in RECORDS_NOTHING[kind]:
        calls.pop(name)
    assert len(calls) >= (13 if cls is Value else 35)
    for name, call in calls.items():
        x = Value(0.7) if cls is Value else Tensor(SQUARE, requires_grad=True)
        member = inspect.getattr_static(cls, name)
        doc = member.__doc__ if isinstance(member, property) else getattr(cls, name).__doc__
        assert_formulas_in(doc, recorded_ops(call(x)), f"{kind}.{name}")


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_that_records_an_op_shows_its_formula(name: str) -> None:
    is_value = name in ("sum_values", "dot")
    x = Value(0.7) if is_value else Tensor(SQUARE, requires_grad=True)
    module = value_module if is_value else tensor_module
    assert_formulas_in(getattr(module, name).__doc__, recorded_ops(FUNCTIONS[name](x)), name)


def test_help_of_tanh_teaches_its_derivative() -> None:
    from backproplab.autograd.ops import Tanh

    assert Tanh.__doc__ is not None and "dx = g * (1 - out ** 2)" in Tanh.__doc__
    for cls in (Value, Tensor):
        assert "Tanh: out = tanh(x);  dx = g * (1 - out ** 2)" in (cls.tanh.__doc__ or "")
    assert "Records the ops (out; derivatives):" in (Tensor.mean.__doc__ or "")


# --- dir() lists the lazy names -----------------------------------------------------------------


def test_dir_lists_the_lazy_names() -> None:
    listed = dir(backproplab.viz)
    assert {"draw_graph", "play", "render", "plots"} <= set(listed)
    assert {"compare", "Tensor", "nn", "viz"} <= set(dir(backproplab))
    assert backproplab.nn.MLPTrainer.__name__ == "MLPTrainer"


def test_pytorchs_functions_on_the_package_name_ours() -> None:
    assert "concatenate([a, b], axis=0)" in message(lambda: backproplab.cat, AttributeError)
    assert "Tensor(data, requires_grad=True)" in message(lambda: backproplab.tensor, AttributeError)
    assert "did you mean 'gradcheck'?" in message(lambda: backproplab.grad_check, AttributeError)
    assert not hasattr(backproplab, "nothing_like_it")
