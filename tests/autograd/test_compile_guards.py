"""compile's guard on modules: a parameter rebound as an attribute of a module the step reads
(in a global, a closure cell or an argument) retraces, and the next call equals the eager step.

Each test calls the step compiled and eagerly on the same model, forward and backward, and asserts
the same loss and the same gradients, bit for bit, before and after the model is changed, and one
more trace in ``f.stats`` for the change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from backproplab.autograd import CompileError, Node, Tensor
from backproplab.nn.layers import Linear
from backproplab.nn.losses import mse
from backproplab.nn.module import Module
from backproplab.nn.sequential import Sequential, Tanh

from backproplab import compile

RNG = np.random.default_rng(20)


def bits(a: Any) -> bytes:
    return np.asarray(a.data if isinstance(a, Node) else a, dtype=np.float64).tobytes()


def _both(
    f: Any, step: Callable[..., Tensor], params: Callable[[], list[Node]], *args: Any
) -> None:
    """One call compiled and one eager on the same parameters: loss and gradients to the bit."""
    got = f(*args)
    got.backward()
    grads = [p.grad.copy() for p in params()]
    for p in params():
        p.zero_grad()
    want = step(*args)
    want.backward()
    assert bits(got) == bits(want)
    for g, p in zip(grads, params(), strict=True):
        assert bits(g) == bits(p.grad)
        p.zero_grad()


def _data() -> tuple[np.ndarray, np.ndarray]:
    return RNG.standard_normal((8, 2)), RNG.standard_normal((8, 1))


def _new(shape: tuple[int, ...]) -> Tensor:
    return Tensor(RNG.standard_normal(shape), requires_grad=True)


class Affine(Module):
    """A user's own module: parameters set as attributes, one added later in some tests."""

    def __init__(self) -> None:
        self.W = _new((2, 1))
        self.b = _new((1,))

    def forward(self, x: Any) -> Any:
        out = x @ self.W + self.b
        extra = getattr(self, "extra", None)
        return out if extra is None else out * extra


def _rebind_weight(model: Sequential) -> None:
    model.layers[0].weight = _new((2, 4))


def _new_linear(model: Sequential) -> None:
    model.layers[2] = Linear(4, 1, "none", seed=7)


def _append(model: Sequential) -> None:
    model.layers.append(Linear(1, 1, "none", seed=8))


CHANGES = {"a weight rebound": _rebind_weight, "a new Linear": _new_linear, "appended": _append}


def _sequential() -> Sequential:
    return Sequential(Linear(2, 4, "none", seed=0), Tanh(), Linear(4, 1, "none", seed=1))


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_a_sequential_in_a_closure_changed(change: str) -> None:
    model = _sequential()

    def step(x: np.ndarray, y: np.ndarray) -> Tensor:
        return mse(model(x), y)

    f = compile(step)
    for _ in range(3):
        _both(f, step, model.parameters, *_data())
    assert f.stats["traces"] == 1
    CHANGES[change](model)
    for _ in range(3):
        _both(f, step, model.parameters, *_data())
    assert f.stats["traces"] == 2


MODEL = _sequential()


def _global_step(x: np.ndarray, y: np.ndarray) -> Tensor:
    return mse(MODEL(x), y)


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_a_sequential_in_a_global_changed(change: str) -> None:
    global MODEL
    MODEL = _sequential()
    f = compile(_global_step)
    for _ in range(2):
        _both(f, _global_step, MODEL.parameters, *_data())
    CHANGES[change](MODEL)
    for _ in range(2):
        _both(f, _global_step, MODEL.parameters, *_data())
    assert f.stats["traces"] == 2


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_a_model_passed_as_an_argument_changed(change: str) -> None:
    model = _sequential()

    def step(model: Sequential, x: np.ndarray, y: np.ndarray) -> Tensor:
        return mse(model(x), y)

    f = compile(step)
    for _ in range(2):
        _both(f, step, model.parameters, model, *_data())
    CHANGES[change](model)
    for _ in range(2):
        _both(f, step, model.parameters, model, *_data())
    assert f.stats["traces"] == 2


@pytest.mark.parametrize("how", ["rebound", "added"])
def test_a_users_module_with_a_parameter_rebound_or_added(how: str) -> None:
    layer = Affine()

    def step(x: np.ndarray, y: np.ndarray) -> Tensor:
        return mse(layer(x), y)

    f = compile(step)
    for _ in range(2):
        _both(f, step, layer.parameters, *_data())
    if how == "rebound":
        layer.W = _new((2, 1))
    else:
        layer.extra = _new((1,))
    for _ in range(2):
        _both(f, step, layer.parameters, *_data())
    assert f.stats["traces"] == 2


def test_a_list_of_layers_in_a_closure_as_the_bench_writes_it() -> None:
    layers = [Linear(2, 16, "tanh", seed=0), Linear(16, 1, "tanh", use_act=False, seed=2)]

    def params() -> list[Node]:
        return [p for layer in layers for p in layer.parameters()]

    def step(x: np.ndarray, y: np.ndarray) -> Tensor:
        h: Any = x
        for layer in layers:
            h = layer(h)
        return mse(h, y)

    f = compile(step)
    for _ in range(2):
        _both(f, step, params, *_data())
    layers[1] = Linear(16, 1, "tanh", use_act=False, seed=3)
    for _ in range(2):
        _both(f, step, params, *_data())
    layers[0].bias = _new((16,))
    _both(f, step, params, *_data())
    assert f.stats["traces"] == 3


def test_a_training_loop_with_the_update_as_users_write_it_and_a_layer_swapped() -> None:
    model = _sequential()
    twin = _sequential()
    lr = 0.1

    def step(model: Any, x: Tensor, y: Tensor) -> Tensor:
        return mse(model(x), y)

    f = compile(lambda x, y: step(model, x, y))
    for k in range(6):
        if k == 3:  # the same swap in both
            model.layers[2] = Linear(4, 1, "none", seed=5)
            twin.layers[2] = Linear(4, 1, "none", seed=5)
        x, y = _data()
        got, want = f(x, y), step(twin, x, y)
        got.backward()
        want.backward()
        assert bits(got) == bits(want)
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            assert bits(p.grad) == bits(q.grad)
            p.data -= lr * p.grad
            q.data -= lr * q.grad
            p.zero_grad()
            q.zero_grad()
    assert f.stats["traces"] == 2


def test_a_frozen_parameter_rebound_retraces_too() -> None:
    model = _sequential()
    model.layers[0].weight.requires_grad = False

    def step(x: np.ndarray, y: np.ndarray) -> Tensor:
        return mse(model(x), y)

    f = compile(step)
    for _ in range(2):
        _both(f, step, model.parameters, *_data())
    model.layers[0].weight = Tensor(RNG.standard_normal((2, 4)))
    for _ in range(2):
        _both(f, step, model.parameters, *_data())
    assert f.stats["traces"] == 2


class Keeps(Module):
    """A module that keeps what its forward computed, as hand-written backprop does."""

    def __init__(self) -> None:
        self.W = _new((2, 1))
        self.out: Any = None

    def forward(self, x: Any) -> Any:
        self.out = (x @ self.W).tanh()
        return self.out


def test_an_attribute_the_forward_sets_to_what_it_computed_is_refused() -> None:
    """A replay runs the generated code alone: ``layer.out`` would keep the first call's
    Tensor where the eager step sets a new one each call (it was kept silently, stale)."""
    layer = Keeps()

    def step(x: np.ndarray, y: np.ndarray) -> Tensor:
        return mse(layer(x), y)

    with pytest.raises(CompileError, match=r"layer\.out holds a value the function computed"):
        compile(step)(*_data())
    f = compile(step, fallback="eager")
    with pytest.warns(RuntimeWarning, match="layer.out"):
        _both(f, step, layer.parameters, *_data())
    x, y = _data()
    f(x, y)
    assert bits(layer.out) == bits((x @ layer.W).tanh())  # the eager run set it, this call
    assert f.stats == {"traces": 0, "replays": 0, "eager": 2}


@pytest.mark.parametrize("kind", [dict, OrderedDict], ids=["dict", "OrderedDict"])
def test_a_dict_of_parameters_in_a_closure_with_one_rebound(kind: type) -> None:
    params = kind(W=_new((2, 1)), b=_new((1,)))

    def step(x: np.ndarray, y: np.ndarray) -> Tensor:
        return mse(x @ params["W"] + params["b"], y)

    f = compile(step)
    for _ in range(3):
        _both(f, step, lambda: list(params.values()), *_data())
    assert f.stats["traces"] == 1
    params["W"] = _new((2, 1))
    for _ in range(2):
        _both(f, step, lambda: list(params.values()), *_data())
    assert f.stats["traces"] == 2


def test_a_number_an_object_holds_retraces_when_it_changes() -> None:
    """A plain object of the user's (no parameters() method) holding a weight and a number the
    forward reads: changing the number replays nothing stale."""

    class Scaled:
        def __init__(self) -> None:
            self.w = _new((2,))
            self.temperature = 1.0

        def __call__(self, x: Any) -> Any:
            return (x * self.w / self.temperature).sum()

    net = Scaled()
    step = lambda x: net(Tensor(x))  # noqa: E731
    f = compile(step)
    x = RNG.standard_normal((3, 2))
    _both(f, step, lambda: [net.w], x)
    _both(f, step, lambda: [net.w], x)
    assert f.stats["traces"] == 1
    net.temperature = 4.0
    _both(f, step, lambda: [net.w], x)
    assert f.stats["traces"] == 2


def test_a_model_switched_from_eval_to_train_is_not_replayed_without_its_dropout() -> None:
    """A Dropout-holding MLP traced in eval mode: switching its layers to training mode changes a
    flag of modules that hold no parameter of their own; the next call traces again, and that
    trace is refused aloud rather than replaying the eval step: the training forward sets the
    layer's last_mask, which a replay would never set again (and its self-check would refuse the
    random mask)."""
    from backproplab.autograd import CompileError
    from backproplab.nn.layers import MLP

    mlp = MLP(2, 1, [8], "tanh", layer_dropout=0.5, eval=False, seed=0)
    step = lambda x: mlp(Tensor(x).reshape(1, 2)).sum()  # noqa: E731
    f = compile(step)
    x = np.array([0.3, -0.7])
    _both(f, step, mlp.parameters, x)
    for layer in mlp.layers:
        layer.training = True
    with pytest.raises(CompileError, match=r"mlp\.layers\[0\]\.last_mask was changed"):
        f(x)
    assert f.stats["traces"] == 1


OUTSIDE = np.array([1.0, 0.5])


def test_an_array_from_outside_written_in_place_is_read_anew() -> None:
    """A global array the step makes a Tensor from: eager reads its numbers on every call, so a
    write into it in place must not leave the replay with the trace's numbers."""
    w = _new((2,))
    step = lambda x: (Tensor(x) * w * Tensor(OUTSIDE)).sum()  # noqa: E731
    f = compile(step)
    x = RNG.standard_normal((3, 2))
    _both(f, step, lambda: [w], x)
    _both(f, step, lambda: [w], x)
    assert f.stats["traces"] == 1
    OUTSIDE[:] = OUTSIDE * 3.0
    _both(f, step, lambda: [w], x)
    assert f.stats["traces"] == 2
    view = OUTSIDE[:1]  # a view of it, read through a closure cell
    g = compile(lambda x: (Tensor(x[:, :1]) * Tensor(view)).sum() * w.sum())
    g(x)
    OUTSIDE[0] = -2.0
    assert bits(g(x)) == bits((Tensor(x[:, :1]) * Tensor(view)).sum() * w.sum())


def test_a_recorded_backward_after_an_array_argument_was_written_is_refused() -> None:
    """backward(create_graph=True) runs the function again on the call's arguments: after a
    write into a NumPy argument it would differentiate the new numbers, so it refuses, writing
    no gradient; without the write it equals the eager recorded pass."""
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    f = compile(lambda x: ((Tensor(x) * w) ** 2).sum())
    f(np.ones(2)).backward()
    w.grad = None
    x = np.array([1.0, 3.0])
    f(x).backward(create_graph=True)
    compiled = w.grad.data.copy()
    w.grad = None
    ((Tensor(x) * w) ** 2).sum().backward(create_graph=True)
    assert bits(compiled) == bits(w.grad)
    w.grad = None
    loss = f(x)
    x *= 10
    with pytest.raises(RuntimeError, match=r"argument 0 of the compiled call.*written after"):
        loss.backward(create_graph=True)
    assert w.grad is None
