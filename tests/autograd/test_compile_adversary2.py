"""compile against the eager engine, second review: steps as students, teachers and researchers
write them (models as objects, methods, partials, defaults, running statistics, stores).

Each test runs a step compiled and the same step eagerly on twins of the same starting values,
over several calls with changing data (and changes to the model between them), and asserts the
same losses and gradients to the bit, or the CompileError the reference documents. Each case
here was a silent wrong (or a confusing crash) before the fix it names in
/work/coord/compile-findings2.md.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from backproplab.autograd import CompileError, Node, Tensor, grad, no_grad
from backproplab.nn.losses import mse
from backproplab.nn.module import Module

from backproplab import compile, nn


def bits(x: Any) -> bytes:
    if isinstance(x, Node):
        x = x.data
    return np.asarray(x, dtype=np.float64).tobytes()


def data(k: int, shape: tuple[int, ...] = (4, 3)) -> np.ndarray:
    return np.random.default_rng(100 + k).standard_normal(shape)


def weight(shape: tuple[int, ...] = (3, 1), seed: int = 0) -> Tensor:
    return Tensor(np.random.default_rng(seed).standard_normal(shape) * 0.5, requires_grad=True)


def same_step(
    f: Callable[..., Any],
    g: Callable[..., Any],
    pf: Callable[[], list[Node]],
    pg: Callable[[], list[Node]],
    *args: Any,
) -> None:
    """One call compiled (f, over parameters pf()) and one eager (g, over pg()): the same loss
    and gradients to the bit; both then updated with p.data -= 0.1 * p.grad."""
    got, want = f(*args), g(*args)
    assert bits(got) == bits(want), f"{got.data} compiled, {want.data} eager"
    got.backward()
    want.backward()
    for p, q in zip(pf(), pg(), strict=True):
        assert (p.grad is None) == (q.grad is None)
        if q.grad is not None:
            assert bits(p.grad) == bits(q.grad)
            p.data -= 0.1 * p.grad
            q.data -= 0.1 * q.grad
        p.grad = q.grad = None


# --- the state a function holds besides the names its code reads -----------------------------


class Holder:
    def __init__(self, seed: int = 0) -> None:
        self.W = weight(seed=seed)

    def loss(self, x: Any) -> Tensor:
        return ((x @ self.W).tanh() ** 2).sum()


def test_a_bound_method_whose_object_gets_a_new_parameter() -> None:
    """compile(m.loss): the bound self was not guarded, so m.W = Tensor(...) replayed the old W
    (6.0 where eager gave 12.0)."""
    mc, me = Holder(), Holder()
    f = compile(mc.loss)
    for k in range(5):
        if k == 2:
            mc.W, me.W = weight(seed=7), weight(seed=7)
        same_step(f, me.loss, lambda: [mc.W], lambda: [me.W], data(k))
    assert f.stats["traces"] == 2


class Scaled(Module):
    def __init__(self, seed: int = 0) -> None:
        self.inner = nn.Linear(3, 2, "tanh", seed=seed)
        self.W = weight((2, 1), seed)

    def forward(self, x: Any) -> Tensor:
        return self.inner(x) @ self.W


@pytest.mark.parametrize("how", ["compile(model)", "compile(model.forward)", "partial"])
def test_a_callable_model_or_a_partial_whose_parameter_is_rebound(how: str) -> None:
    mc, me = Scaled(), Scaled()

    def loss(model: Any, x: Any) -> Tensor:
        return (model(x) ** 2).sum()

    if how == "partial":
        f: Any = compile(functools.partial(loss, mc))
    else:
        inner = compile(mc if how == "compile(model)" else mc.forward)
        f = compile(lambda x: (inner(x) ** 2).sum())
    for k in range(5):
        if k == 2:
            mc.inner.weight = Tensor(np.full((3, 2), 0.3), requires_grad=True)
            me.inner.weight = Tensor(np.full((3, 2), 0.3), requires_grad=True)
        same_step(f, functools.partial(loss, me), mc.parameters, me.parameters, data(k))


def test_a_default_argument_holding_parameters_and_an_array() -> None:
    """def step(x, ps=ps, M=M): the defaults were not guarded: ps[0] = new and M *= 3 replayed
    the first ones."""

    def make(ps: list[Tensor], m: np.ndarray) -> Callable[..., Tensor]:
        def step(x: Any, ps: list[Tensor] = ps, m: np.ndarray = m) -> Tensor:
            return ((x @ ps[0]) * Tensor(m)).sum()

        return step

    pc, pe = [weight()], [weight()]
    mc, me = np.ones((4, 1)), np.ones((4, 1))
    f, g = compile(make(pc, mc)), make(pe, me)
    for k in range(6):
        if k == 2:
            pc[0], pe[0] = weight(seed=3), weight(seed=3)
        if k == 4:
            mc *= 3.0
            me *= 3.0
        same_step(f, g, lambda: pc, lambda: pe, data(k))


def test_a_parameter_in_a_slots_dataclass_rebound() -> None:
    @dataclasses.dataclass(slots=True)
    class Params:
        W: Tensor
        scale: float = 1.0

    pc, pe = Params(weight()), Params(weight())

    def make(p: Params) -> Callable[..., Tensor]:
        return lambda x: ((x @ p.W) * p.scale).sum()

    f, g = compile(make(pc)), make(pe)
    for k in range(6):
        if k == 2:
            pc.W, pe.W = weight(seed=5), weight(seed=5)
        if k == 4:
            pc.scale = pe.scale = 2.5
        same_step(f, g, lambda: [pc.W], lambda: [pe.W], data(k))
    assert f.stats["traces"] == 3


SCALE = 1.0


class GlobalScaled(Module):
    scale = 1.0  # a class attribute, set on the class between calls

    def __init__(self) -> None:
        self.W = weight()

    def forward(self, x: Any) -> Tensor:
        return (x @ self.W) * SCALE * self.scale


def test_a_global_and_a_class_attribute_read_by_a_models_forward() -> None:
    """The forward of the user's module reads a global and a class attribute: neither was
    guarded (only the names of the step's own code and of the functions it holds were)."""
    global SCALE
    mc, me = GlobalScaled(), GlobalScaled()

    def make(m: GlobalScaled) -> Callable[..., Tensor]:
        return lambda x: (m(x) ** 2).sum()

    f, g = compile(make(mc)), make(me)
    try:
        for k in range(6):
            if k == 2:
                SCALE = 2.0
            if k == 4:
                GlobalScaled.scale = 0.5
            same_step(f, g, mc.parameters, me.parameters, data(k))
    finally:
        SCALE = 1.0
        GlobalScaled.scale = 1.0
    assert f.stats["traces"] == 3


def test_compile_as_a_method_decorator() -> None:
    """@compile in a class body: m.loss(x) raised 'missing 1 required positional argument'."""

    class Model:
        def __init__(self) -> None:
            self.W = weight()

        @compile
        def loss(self, x: Any) -> Tensor:
            return ((x @ self.W) ** 2).sum()

    a, b = Model(), Model()
    b.W = weight(seed=9)
    for k in range(3):
        for m in (a, b):
            got, want = m.loss(data(k)), Model.loss.fn(m, data(k))
            assert bits(got) == bits(want)
            got.backward()
            grad = m.W.grad.copy()
            m.W.grad = None
            want.backward()
            assert bits(grad) == bits(m.W.grad)
            m.W.grad = None
    assert Model.loss.stats["traces"] == 2  # one per object


def test_a_hot_compiled_function_called_inside_another_ones_trace() -> None:
    """The inner function, replaying from its hot guard, was replayed inside the outer trace:
    'a compiled op runs through its Compiled function, not on its own' at every outer call."""
    W = Tensor(np.full((3, 3), 0.4), requires_grad=True)
    inner = compile(lambda h: (h @ W).tanh())
    for k in range(3):
        inner(Tensor(data(k)))
    outer = compile(lambda x: (inner(Tensor(x) * 2.0) ** 2).sum())
    eager = lambda x: (inner.fn(Tensor(x) * 2.0) ** 2).sum()  # noqa: E731
    for k in range(4):
        got, want = outer(data(k)), eager(data(k))
        assert bits(got) == bits(want)
        got.backward()
        gw = W.grad.copy()
        W.grad = None
        want.backward()
        assert bits(gw) == bits(W.grad)
        W.grad = None
    assert outer.stats == {"traces": 1, "replays": 4, "eager": 0}


# --- values the function stores where they outlive the call --------------------------------


class BatchNorm(Module):
    """makemore's BatchNorm1d: running statistics set as attributes inside the forward."""

    def __init__(self, n: int) -> None:
        self.gamma = Tensor(np.ones(n), requires_grad=True)
        self.beta = Tensor(np.zeros(n), requires_grad=True)
        self.running_mean = Tensor(np.zeros(n))

    def forward(self, x: Any) -> Tensor:
        mean = x.mean(axis=0)
        with no_grad():
            self.running_mean = 0.9 * self.running_mean + 0.1 * mean
        return (x - mean) * self.gamma + self.beta


def test_running_statistics_set_inside_the_step_are_refused() -> None:
    """The running mean was set at the trace (and by the self-check's eager run) and never again:
    after four calls it held the second call's mean where eager's held all four's."""
    bn = BatchNorm(3)

    def step(x: Any) -> Tensor:
        return (bn(x) ** 2).sum()

    with pytest.raises(CompileError, match=r"bn\.running_mean holds a value the function"):
        compile(step)(data(0))


def test_a_loss_appended_to_a_history_list_is_refused() -> None:
    W = weight()
    history: list[Tensor] = []

    def step(x: Any) -> Tensor:
        loss = ((x @ W) ** 2).sum()
        history.append(loss)
        return loss

    with pytest.raises(CompileError, match=r"history\[0\] holds"):
        compile(step)(data(0))
    assert history == [] or all(isinstance(h, Tensor) for h in history)


def test_a_list_argument_written_into_is_refused() -> None:
    W = weight()

    def step(x: Any, log: list[Any]) -> Tensor:
        loss = ((x @ W) ** 2).sum()
        log.append(loss)
        return loss

    with pytest.raises(CompileError, match="wrote into a list it was given as an argument"):
        compile(step)(data(0), [])


def test_a_number_stored_or_a_counter_stepped_inside_is_refused() -> None:
    """A counter or a number set inside the step changed at the trace (and in the self-check's
    eager run) only; a replay never changed it again."""
    W = weight()
    seen: dict[str, Any] = {}

    def step(x: Any) -> Tensor:
        seen["rows"] = x.shape[0]
        return mse(x @ W, np.zeros((x.shape[0], 1)))

    with pytest.raises(CompileError, match=r"seen\ \(its keys\) was changed by the function"):
        compile(step)(data(0))

    class Counting(Module):
        def __init__(self) -> None:
            self.W = weight()
            self.calls = 0

        def forward(self, x: Any) -> Tensor:
            self.calls += 1
            return x @ self.W

    model = Counting()
    with pytest.raises(CompileError, match=r"model\.calls was changed by the function"):
        compile(lambda x: model(x).sum())(data(0))


def test_an_equal_shape_set_again_inside_is_not_refused() -> None:
    """What the forward sets to what it held already (an equal tuple, the same None) changes
    nothing a replay would miss."""

    class Shaped(Module):
        def __init__(self) -> None:
            self.W = weight()
            self.shape: tuple[int, ...] = (4, 3)
            self.last: Any = None

        def forward(self, x: Any) -> Tensor:
            self.shape = x.shape
            self.last = None
            return x @ self.W

    mc, me = Shaped(), Shaped()
    f = compile(lambda x: (mc(x) ** 2).sum())
    for k in range(3):
        same_step(f, lambda x: (me(x) ** 2).sum(), mc.parameters, me.parameters, data(k))
    assert f.stats == {"traces": 1, "replays": 3, "eager": 0}


# --- gradients and parameters changed outside the graph, inside the step ----------------------


@pytest.mark.parametrize("where", ["model.zero_grad()", "opt.zero_grad()", "W.zero_grad()"])
def test_zero_grad_inside_the_step_is_refused(where: str) -> None:
    """zero_grad() at the top of the step ran at the trace only: from the third call on the
    gradients piled up over calls where eager reset them (W went -20.9 where eager went 40.7)."""
    model = nn.MLP(3, 1, [4], "tanh", seed=0)
    opt = nn.SGD(model.parameters(), lr=0.1)
    W = model.layers[0].weight

    def step(x: Any, y: Any) -> Tensor:
        if where == "model.zero_grad()":
            model.zero_grad()
        elif where == "opt.zero_grad()":
            opt.zero_grad()
        else:
            W.zero_grad()
        return mse(model(x), y)

    with pytest.raises(CompileError, match=r"zero_grad\(\) inside a compiled function"):
        compile(step)(data(0), data(1, (4, 1)))


def test_a_value_zero_grad_inside_the_step_is_refused() -> None:
    from backproplab.autograd import Value

    w = Value(0.5)

    def step(x: Value) -> Value:
        w.zero_grad()
        return (w * x).tanh()

    with pytest.raises(CompileError, match=r"test_compile_adversary2\.py:\d+: zero_grad"):
        compile(step)(Value(1.0))


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_an_optimizer_step_inside_the_step_is_refused(kind: str) -> None:
    """opt.step() inside, with no gradient yet at the trace, did nothing there and nothing on
    any replay: the parameters never moved (eager's moved each call)."""
    model = nn.MLP(3, 1, [4], "tanh", seed=0)
    opt = nn.SGD(model.parameters(), lr=0.1) if kind == "SGD" else nn.Adam(model.parameters())

    def step(x: Any, y: Any) -> Tensor:
        loss = mse(model(x), y)
        opt.step()
        return loss

    with pytest.raises(CompileError, match=rf"{kind}\.step\(\) inside a compiled function"):
        compile(step)(data(0), data(1, (4, 1)))


@pytest.mark.parametrize("kind", ["SGD momentum", "Adam"])
def test_optimizers_stepping_between_compiled_calls(kind: str) -> None:
    """The same loop written the usual way (zero_grad, the compiled loss, backward, step) trains
    to the eager numbers, bit for bit, with an optimizer's state carried between calls."""
    runs = []
    for compiled in (True, False):
        model = nn.MLP(3, 2, [5], "relu", is_softmax=True, seed=4)
        params = model.parameters()
        opt = nn.SGD(params, 0.05, momentum=0.9) if kind != "Adam" else nn.Adam(params, 0.01)

        def step(x: Any, y: Any, model: Any = model) -> Tensor:
            return nn.cross_entropy(model.logits(x), y)

        f = compile(step) if compiled else step
        losses = []
        for k in range(6):
            opt.zero_grad()
            loss = f(data(k), np.random.default_rng(k).integers(0, 2, 4))
            loss.backward()
            opt.step()
            losses.append(bits(loss))
        runs.append((losses, [bits(p) for p in params]))
    assert runs[0] == runs[1]


# --- compiled functions inside compiled functions ---------------------------------------------


def test_a_value_step_calling_a_compiled_function_twice() -> None:
    """The outer trace inlines the inner function; the self-check's eager run called the inner
    one compiled, whose two calls' gradients meet at the parameters in another order: the
    self-check refused a sound step ('differs ... 3.5e-18'). Its eager run is eager throughout."""
    from backproplab.autograd import Value
    from backproplab.nn.scalar import MLP as ScalarMLP

    mc, me = ScalarMLP(2, [4, 1], seed=0), ScalarMLP(2, [4, 1], seed=0)
    inner = compile(lambda x: mc(x).tanh())
    f = compile(lambda xs: sum(inner(x) * inner(x) for x in xs))

    def g(xs: list[list[Value]]) -> Value:
        return sum(me(x).tanh() * me(x).tanh() for x in xs)  # type: ignore[return-value]

    for k in range(4):
        rng = np.random.default_rng(k)
        xs = [[Value(float(v)) for v in rng.standard_normal(2)] for _ in range(5)]
        got, want = f(xs), g(xs)
        assert got.data == want.data
        got.backward()
        want.backward()
        assert [p.grad for p in mc.parameters()] == [p.grad for p in me.parameters()]
        for p, q in zip(mc.parameters(), me.parameters(), strict=True):
            p.data -= 0.05 * p.grad
            q.data -= 0.05 * q.grad
            p.grad = q.grad = 0.0


def test_a_tensor_step_calling_a_compiled_layer_twice() -> None:
    Wc, We = weight((3, 3)), weight((3, 3))
    layer = compile(lambda h: (h @ Wc).tanh())
    f = compile(lambda x: ((layer(Tensor(x)) * layer(Tensor(x) * 0.5)) ** 2).sum())

    def g(x: Any) -> Tensor:
        return ((((Tensor(x) @ We).tanh()) * ((Tensor(x) * 0.5) @ We).tanh()) ** 2).sum()

    for k in range(4):
        same_step(f, g, lambda: [Wc], lambda: [We], data(k))
    assert f.stats["traces"] == 1


# --- numbers held by a dict, a list or an object the step reads --------------------------------


class HParams:
    def __init__(self) -> None:
        self.temperature = 1.0


def test_numbers_in_a_dict_a_list_and_an_object_changed_between_calls() -> None:
    """cfg["scale"], coefs[1] and hp.temperature changed between calls: each was a constant of
    the trace, replayed stale (6.0 where eager gave 12.0), since none of them leads to a
    parameter (the reference listed this as unseen; it is now guarded)."""
    Wc, We = weight(), weight()
    cfg = {"scale": 1.0, "name": "run"}
    coefs = [0.5, 2.0]
    hp = HParams()

    def make(W: Tensor) -> Callable[..., Tensor]:
        return lambda x: (((x @ W) * cfg["scale"] + coefs[1]) / hp.temperature).tanh().sum()

    f, g = compile(make(Wc)), make(We)
    changes = [
        lambda: None,
        lambda: cfg.update(scale=2.0),
        lambda: coefs.__setitem__(1, -1.0),
        lambda: setattr(hp, "temperature", 0.25),
        lambda: None,
    ]
    for k, change in enumerate(changes):
        change()
        same_step(f, g, lambda: [Wc], lambda: [We], data(k))
    assert f.stats["traces"] == 4


def test_a_micrograd_dataset_as_lists_of_floats_edited_between_calls() -> None:
    """micrograd's demo keeps its data as Python lists, read by the step: an edited row was a
    constant of the trace (Values made inside from floats)."""
    from backproplab.autograd import Value
    from backproplab.nn.scalar import MLP as ScalarMLP

    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    mc, me = ScalarMLP(3, [4, 4, 1], seed=1), ScalarMLP(3, [4, 4, 1], seed=1)

    def make(m: Any) -> Callable[[], Value]:
        def step() -> Value:
            preds = [m([Value(v) for v in x]) for x in xs]
            return sum(((p - y) ** 2 for p, y in zip(preds, ys, strict=True)), Value(0.0))

        return step

    f, g = compile(make(mc)), make(me)
    for k in range(5):
        if k == 2:
            xs[1][2] = -4.0
        if k == 3:
            ys[0] = -1.0
        got, want = f(), g()
        assert got.data == want.data
        got.backward()
        want.backward()
        assert [p.grad for p in mc.parameters()] == [p.grad for p in me.parameters()]
        for p, q in zip(mc.parameters(), me.parameters(), strict=True):
            p.data -= 0.05 * p.grad
            q.data -= 0.05 * q.grad
            p.grad = q.grad = 0.0


# --- array arguments of another dtype than the parameters -------------------------------------


def test_float32_batches_met_by_float64_weights_are_refused_at_the_first_call() -> None:
    """x @ W with x a float32 array: eagerly x is cast to W's float64 first; the stand-in is a
    float32 Tensor, so the trace multiplied in mixed dtypes. The self-check's call agreed by
    chance and a later call's gradient differed in the last bit, silently (call 3 here)."""
    W = weight()
    f = compile(lambda x: ((x @ W) ** 2).sum())
    f(data(0)).backward()  # float64: fine
    with pytest.raises(CompileError, match="MatMul/float32/float64 in the trace"):
        f(data(1).astype(np.float32))


def test_float32_batches_through_an_nn_linear_match_eager_on_every_call() -> None:
    """nn.Linear makes its input a Tensor itself (no cast): mixed dtypes eagerly too, so the
    compiled step is the eager one and is not refused."""
    mc, me = nn.MLP(3, 1, [5], "tanh", seed=2), nn.MLP(3, 1, [5], "tanh", seed=2)
    f = compile(lambda x, y: mse(mc(x), y))
    for k in range(6):
        x = data(k).astype(np.float32) if k % 2 else data(k)
        same_step(
            f, lambda x, y: mse(me(x), y), mc.parameters, me.parameters, x, data(k + 50, (4, 1))
        )
    assert f.stats["traces"] == 2


def test_a_tensor_argument_the_step_also_reads_through_a_model_rebound() -> None:
    """f(W0, x) also reading model.W inside: the replay read both from the argument, so after
    model.W = new it gave 18.0 where eager gave 66.0 (the slot led to an argument, not a leaf,
    and was not guarded)."""

    class Model:
        def __init__(self) -> None:
            self.W = weight()

    m = Model()
    W0 = m.W

    def step(W: Tensor, x: Any) -> Tensor:
        return ((x @ W) ** 2).sum() + (x @ m.W).sum() * 2.0

    f = compile(step)
    for k in range(4):
        if k == 2:
            m.W = weight(seed=4)
        got, want = f(W0, data(k)), step(W0, data(k))
        assert bits(got) == bits(want)
        got.backward()  # the self-check's gradients: from now on the replay runs unchecked
    assert f.stats["traces"] == 2


def test_parameters_in_a_numpy_array_of_objects_rebound() -> None:
    ps = np.empty(2, dtype=object)
    ps[0], ps[1] = weight(), weight((1,), seed=1)

    def step(x: Any) -> Tensor:
        return ((x @ ps[0] + ps[1]) ** 2).sum()

    f = compile(step)
    for k in range(4):
        if k == 2:
            ps[0] = weight(seed=6)
        got = f(data(k))
        assert bits(got) == bits(step(data(k)))
        got.backward()
    assert f.stats["traces"] == 2


def test_a_refusal_inside_a_loss_names_the_loss_and_the_users_line() -> None:
    """cross_entropy on probabilities reads them (a clip): the refusal named only the user's
    line, as if the user had read .data there."""
    m = nn.MLP(3, 3, [4], "tanh", is_softmax=True, seed=0)

    def step(x: Any, y: Any) -> Tensor:
        return nn.cross_entropy(m(x), y, from_logits=False)

    pattern = r"test_compile_adversary2\.py:\d+ \(in backproplab's cross_entropy, nn/losses\.py"
    with pytest.raises(CompileError, match=pattern):
        compile(step)(data(0), np.array([0, 1, 2, 0]))


STEPS = 0
RUNNING = np.zeros((1,))


def test_a_global_or_a_closure_variable_rebound_inside_the_step_is_refused() -> None:
    """global STEPS; STEPS += 1 (or a nonlocal): each call retraced (the name was rebound), so
    the counter went up by two a call (the trace and the self-check's eager run), not one; a
    global running statistic kept as an array was rebound the same way."""
    W = weight()

    def counted(x: Any) -> Tensor:
        global STEPS
        STEPS += 1
        return ((x @ W) ** 2).sum()

    with pytest.raises(CompileError, match="STEPS was changed by the function"):
        compile(counted)(data(0))

    def running(x: Any) -> Tensor:
        global RUNNING
        RUNNING = 0.9 * RUNNING + 0.1 * np.ones(1)
        return ((x @ W) ** 2).sum()

    with pytest.raises(CompileError, match="RUNNING was changed by the function"):
        compile(running)(data(0))

    calls = 0

    def nonlocal_counted(x: Any) -> Tensor:
        nonlocal calls
        calls += 1
        return ((x @ W) ** 2).sum()

    with pytest.raises(CompileError, match=r"calls \(a closure variable\) was changed"):
        compile(nonlocal_counted)(data(0))


def test_a_weight_shared_as_a_class_attribute_rebound_on_the_class() -> None:
    class Shared(Module):
        W = weight()

        def forward(self, x: Any) -> Tensor:
            return ((x @ self.W) ** 2).sum()

    class Net(Module):
        def __init__(self) -> None:
            self.b = weight((1,), seed=3)
            self.inner = Shared()

        def forward(self, x: Any) -> Tensor:
            return self.inner(x) + self.b.sum()

    net = Net()
    f = compile(lambda x: net(x))
    for k in range(4):
        if k == 2:
            Shared.W = weight(seed=8)
        got = f(data(k))
        assert bits(got) == bits(net(data(k)))
        got.backward()
    assert f.stats["traces"] == 2


def test_a_layer_that_makes_its_weight_on_its_first_call_is_refused() -> None:
    """A lazy layer (Keras' build on first call) made W inside the trace: a constant of the
    trace, so the replays gave W no gradient, silently. Its first call changes the layer."""

    class Lazy(Module):
        def __init__(self) -> None:
            self.W: Tensor | None = None

        def forward(self, x: Any) -> Tensor:
            if self.W is None:
                self.W = Tensor(np.full((x.shape[-1], 1), 0.5), requires_grad=True)
            return x @ self.W

    layer = Lazy()
    f = compile(lambda x: (layer(x) ** 2).sum())
    with pytest.raises(CompileError, match=r"layer\.W was changed by the function"):
        f(data(0))
    layer(data(0))  # built eagerly once: then compiled like any layer
    lc, le = layer, Lazy()
    le.W = Tensor(lc.W.data.copy(), requires_grad=True)
    for k in range(3):
        same_step(f, lambda x: (le(x) ** 2).sum(), lc.parameters, le.parameters, data(k))


def test_numpy_scalars_held_by_a_model_and_a_dict_changed_between_calls() -> None:
    """A number taken from an array is a NumPy scalar (np.float64 is not float's own class,
    np.float32 is no float at all): held by a module or a dict, a change was not seen."""

    class Scaled(Module):
        def __init__(self) -> None:
            self.W = weight()
            self.scale = np.float32(1.0)

        def forward(self, x: Any) -> Tensor:
            return (x @ self.W) * self.scale

    schedule = np.array([1.0, 0.5, 0.25])
    cfg = {"shift": schedule[0]}
    mc, me = Scaled(), Scaled()
    me.W = Tensor(mc.W.data.copy(), requires_grad=True)

    def make(m: Scaled) -> Callable[..., Tensor]:
        return lambda x: ((m(x) + cfg["shift"]) ** 2).sum()

    f, g = compile(make(mc)), make(me)
    for k in range(5):
        if k == 2:
            mc.scale = me.scale = np.float32(3.0)
        if k == 3:
            cfg["shift"] = schedule[2]
        same_step(f, g, mc.parameters, me.parameters, data(k))
    assert f.stats["traces"] == 3


def test_an_inner_compiled_function_replayed_in_a_thread_while_another_traces_through_it() -> None:
    """Thread A traces new outer functions that call ``inner``; thread B replays ``inner`` from
    its hot guard meanwhile. A's traces inline it, B's calls replay it: both equal eager."""
    import threading

    W = Tensor(np.full((3, 3), 0.3), requires_grad=True)
    inner = compile(lambda h: (h @ W).tanh())
    errors: list[str] = []

    def eager_inner(h: Any) -> Tensor:
        return (Tensor(h) @ W).tanh()

    def tracer() -> None:
        for k in range(15):
            outer = compile(lambda x: (inner(Tensor(x) * 2.0) ** 2).sum())
            with no_grad():
                got = outer(data(k))
                want = (eager_inner(Tensor(data(k)) * 2.0) ** 2).sum()
            if bits(got) != bits(want):
                errors.append(f"outer {k}")

    def replayer() -> None:
        for k in range(60):
            with no_grad():
                got, want = inner(data(k % 5)), eager_inner(data(k % 5))
            if bits(got) != bits(want):
                errors.append(f"inner {k}")

    threads = [threading.Thread(target=tracer), threading.Thread(target=replayer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert inner.stats["replays"] >= 60


IDX = np.array([0, 1, 3])
COEF = np.array([1.0, 2.0])


def test_an_index_array_and_a_number_read_from_a_small_global_array_written_in_place() -> None:
    """h[IDX] and COEF[1] with IDX, COEF global arrays written in place between calls: the
    index was a constant of the trace (18.0 where eager gave 22.5), and COEF[1] a number read
    at the trace; neither array was made a Tensor, so neither was compared."""
    Wc, We = weight((3, 2)), weight((3, 2))

    def make(W: Tensor) -> Callable[..., Tensor]:
        return lambda x: (((x @ W)[IDX] * float(COEF[1])) ** 2).sum() + (x @ W)[IDX[0]].sum()

    f, g = compile(make(Wc)), make(We)
    try:
        for k in range(5):
            if k == 2:
                IDX[:] = [2, 2, 0]
            if k == 3:
                COEF[1] = -0.5
            same_step(f, g, lambda: [Wc], lambda: [We], data(k))
    finally:
        IDX[:] = [0, 1, 3]
        COEF[:] = [1.0, 2.0]
    assert f.stats["traces"] == 3


# --- checked sound: steps as users write them, compiled equals eager on every call --------------


def _labels(kind: str, rng: np.random.Generator) -> Any:
    classes = rng.integers(0, 3, 4)
    binary = (rng.random((4, 1)) > 0.5).astype(float)
    return {
        "int64": classes,
        "int32": classes.astype(np.int32),
        "float": classes.astype(float),
        "column": classes.reshape(4, 1),
        "one-hot": np.eye(3)[classes],
        "Tensor": Tensor(classes),
        "binary": binary,
        "binary bool": binary > 0.5,
        "binary 1-d": binary.ravel(),
        "signed": 2.0 * binary - 1.0,
        "signed int": (2 * binary - 1).astype(int).ravel(),
        "targets": rng.standard_normal((4, 3)),
    }[kind]


LOSS_CASES = (
    [
        ("cross_entropy", kind, 3, "tanh")
        for kind in ("int64", "int32", "float", "column", "one-hot", "Tensor")
    ]
    + [
        ("binary_cross_entropy", kind, 1, "none")
        for kind in ("binary", "binary bool", "binary 1-d")
    ]
    + [("hinge", kind, 1, "tanh") for kind in ("signed", "signed int")]
    + [
        ("mse", "targets", 3, "relu"),
        ("sum_squared_error", "targets", 3, "sigmoid"),
    ]
)


@pytest.mark.parametrize(("loss", "kind", "out", "act"), LOSS_CASES)
def test_every_loss_with_every_label_form(loss: str, kind: str, out: int, act: str) -> None:
    fn = getattr(nn.losses, loss)
    mc, me = nn.MLP(3, out, [5], act, seed=3), nn.MLP(3, out, [5], act, seed=3)
    f = compile(lambda x, y: fn(mc(x), y) + mc.penalty())
    for k in range(4):
        y = _labels(kind, np.random.default_rng(k))
        same_step(
            f, lambda x, y: fn(me(x), y) + me.penalty(), mc.parameters, me.parameters, data(k), y
        )
    assert f.stats["traces"] == 1


class Block(Module):
    """A user's residual block: a weight behind a property, a tied weight used twice, a dict
    and a tuple of parameters, a custom forward."""

    def __init__(self, seed: int) -> None:
        self._W = weight((3, 3), seed)
        self.extra = {"b": weight((3,), seed + 1)}
        self.pair = (weight((3,), seed + 2), weight((3,), seed + 3))

    @property
    def W(self) -> Tensor:
        return self._W

    def forward(self, h: Any) -> Tensor:
        z = (h @ self.W + self.extra["b"]).tanh() @ self.W.T
        return h + z * self.pair[0] - self.pair[1].relu()


class Net(Module):
    def __init__(self) -> None:
        self.blocks = [Block(0), Block(10)]
        self.head = nn.Linear(3, 1, "none", seed=5)

    def forward(self, x: Any) -> Tensor:
        h = Tensor(x)
        for b in self.blocks:
            h = b(h)
        return self.head(h)


def test_nested_user_modules_with_tied_and_hidden_parameters_changed_between_calls() -> None:
    nc, ne = Net(), Net()
    f = compile(lambda x, y: mse(nc(x), y))
    changes = {
        2: lambda n: setattr(n.blocks[1], "_W", weight((3, 3), 42)),
        3: lambda n: n.blocks[0].extra.update(b=weight((3,), 43)),
        4: lambda n: setattr(n.blocks[0], "pair", (weight((3,), 44), n.blocks[0].pair[1])),
        5: lambda n: n.blocks.append(Block(20)),
        6: lambda n: n.eval(),
    }
    for k in range(8):
        if k in changes:
            changes[k](nc)
            changes[k](ne)
        same_step(
            f,
            lambda x, y: mse(ne(x), y),
            nc.parameters,
            ne.parameters,
            data(k),
            data(k + 70, (4, 1)),
        )
    assert f.stats["traces"] == 6


@pytest.mark.parametrize(
    "case",
    [
        "consts inside",
        "seeded draw inside",
        "loop over rows",
        "int argument",
        "kwargs",
        "*args",
        "slice argument",
        "index array argument",
        "reshape by shape",
        "float argument",
        "bool argument",
        "generator sum",
        "0-d argument",
    ],
)
def test_inputs_made_inside_and_arguments_of_every_kind(case: str) -> None:
    steps: dict[str, tuple[Callable[..., Callable[..., Tensor]], Callable[[int], tuple[Any, ...]]]]
    steps = {
        "consts inside": (
            lambda W: (
                lambda x: (
                    (x @ W) * Tensor(np.arange(4.0).reshape(4, 1)) + Tensor(np.ones((4, 1)))
                ).sum()
            ),
            lambda k: (data(k),),
        ),
        "seeded draw inside": (
            lambda W: (
                lambda x: ((x @ W) * Tensor(np.random.default_rng(0).standard_normal((4, 1)))).sum()
            ),
            lambda k: (data(k),),
        ),
        "loop over rows": (
            lambda W: lambda x: sum(((x[i] @ W) ** 2).sum() for i in range(x.shape[0])),
            lambda k: (data(k, (2 + k % 3, 3)),),
        ),
        "int argument": (
            lambda W: (
                lambda x, n: sum((((x @ W) * float(j)).tanh().sum() for j in range(n)), Tensor(0.0))
            ),
            lambda k: (data(k), 1 + k % 3),
        ),
        "kwargs": (lambda W: lambda x, scale=2.0: ((x @ W) * scale).sum(), lambda k: (data(k),)),
        "*args": (
            lambda W: lambda *xs: sum(((x @ W) ** 2).sum() for x in xs),
            lambda k: tuple(data(k + j) for j in range(1 + k % 3)),
        ),
        "slice argument": (
            lambda W: lambda x, s: ((x[s] @ W) ** 2).sum(),
            lambda k: (data(k), slice(k % 2, 3)),
        ),
        "index array argument": (
            lambda W: lambda x, i: ((x[i] @ W) ** 2).sum(),
            lambda k: (data(k), np.array([k % 4, 0, -1])),
        ),
        "reshape by shape": (
            lambda W: lambda x: ((x.reshape(x.shape[0] * 3, 1) * W[0]) ** 2).sum(),
            lambda k: (data(k, (1 + k % 3, 3)),),
        ),
        "float argument": (
            lambda W: lambda x, lr: ((x @ W) * lr).sum(),
            lambda k: (data(k), 0.1 * (k + 1)),
        ),
        "bool argument": (
            lambda W: lambda x, neg: ((x @ W) * (-1.0 if neg else 1.0)).sum(),
            lambda k: (data(k), k % 2 == 0),
        ),
        "generator sum": (
            lambda W: (
                lambda x: sum((x[:, j : j + 1] * W[j] for j in range(3)), start=Tensor(0.0)).sum()
            ),
            lambda k: (data(k),),
        ),
        "0-d argument": (
            lambda W: lambda x, s: ((x @ W) * s).sum(),
            lambda k: (data(k), np.array(0.5 + k)),
        ),
    }
    make, args = steps[case]
    Wc, We = weight(), weight()
    f, g = compile(make(Wc)), make(We)
    for k in range(5):
        same_step(f, g, lambda: [Wc], lambda: [We], *args(k))


def _value_batch(k: int, n: int) -> tuple[list[list[Any]], list[Any]]:
    from backproplab.autograd import Value

    rng = np.random.default_rng(k)
    xs = [[Value(float(v)) for v in rng.standard_normal(2)] for _ in range(n)]
    ys = [Value(float(v)) for v in np.where(rng.random(n) > 0.5, 1.0, -1.0)]
    return xs, ys


@pytest.mark.parametrize("style", ["hinge + L2", "every op"])
def test_micrograd_style_value_steps_over_batches_of_changing_length(style: str) -> None:
    from backproplab.autograd import Value
    from backproplab.nn.scalar import MLP as ScalarMLP

    def make(m: Any) -> Callable[..., Value]:
        def hinge(xs: list[list[Value]], ys: list[Value]) -> Value:
            losses = [(1 + -y * m(x)).relu() for x, y in zip(xs, ys, strict=True)]
            reg = 1e-4 * sum(p * p for p in m.parameters())
            return sum(losses) * (1.0 / len(losses)) + reg

        def every_op(xs: list[list[Value]], ys: list[Value]) -> Value:
            total = Value(0.0)
            for x, y in zip(xs, ys, strict=True):
                h = m(x)
                total = total + (h - y) ** 2 / (h * h + 1.0) + (h * h + 1.0).log() - (h * 0.1).exp()
                total = total + h.sigmoid() * 2**h - (y / (h * h + 3.0)) ** -1
            return total / len(xs)

        return hinge if style == "hinge + L2" else every_op

    mc, me = ScalarMLP(2, [6, 6, 1], seed=0), ScalarMLP(2, [6, 6, 1], seed=0)
    f, g = compile(make(mc)), make(me)
    for k in range(6):
        xs, ys = _value_batch(k, 3 + k % 3)
        got, want = f(xs, ys), g(xs, ys)
        assert got.data == want.data
        got.backward()
        want.backward()
        assert [p.grad for p in mc.parameters()] == [p.grad for p in me.parameters()]
        for p, q in zip(mc.parameters(), me.parameters(), strict=True):
            p.data -= 0.05 * p.grad
            q.data -= 0.05 * q.grad
            p.grad = q.grad = 0.0
    assert f.stats["traces"] == 3  # one per batch length


def test_grad_of_a_compiled_value_function_and_no_grad_calls_between() -> None:
    from backproplab.autograd import Value

    w = Value(0.3)
    f = compile(lambda x: (w * x).tanh() * x)
    for k in range(4):
        x = Value(0.2 + k)
        if k % 2:
            with no_grad():
                out = f(x)
            assert out.data == ((w * x).tanh() * x).data and not out.requires_grad
        else:
            assert grad(f)(x).data == grad(f.fn)(x).data


@pytest.mark.parametrize("lossfn", ["cross-entropy", "sq-error", "bce", "hinge"])
def test_the_trainer_compiled_trains_to_the_eager_numbers_and_says_which_ran(lossfn: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 2))
    labels = (x[:, 0] * x[:, 1] > 0).astype(int)
    y = {"cross-entropy": labels, "hinge": 2.0 * labels - 1}.get(lossfn, labels.astype(float))
    out, act, soft = (2, "tanh", True) if lossfn == "cross-entropy" else (1, "none", False)
    runs = []
    for compiled in (True, False):
        model = nn.MLP(2, out, [8], act, soft, seed=0)
        trainer = nn.MLPTrainer(
            model, 0.01, 16, lossfn, optimizer="adam", seed=0, verbose=False, compile=compiled
        )
        history = trainer.train(x, y, x[:10], y[:10], epochs=3)
        runs.append((history, [bits(p) for p in model.parameters()]))
        if compiled:
            assert trainer.compiled
            assert trainer._step is not None and trainer._step.stats["replays"] >= 9
        else:
            assert not trainer.compiled
    assert runs[0] == runs[1]


def test_an_activation_function_held_by_a_layer_or_a_dict_swapped_between_calls() -> None:
    """layer.act = another function (or ACTS["out"] = np.tanh): a function attribute was not
    compared, so the replay kept the first one's ops."""

    class Layer(Module):
        def __init__(self, act: Callable[[Tensor], Tensor]) -> None:
            self.W = weight()
            self.act = act

        def forward(self, x: Any) -> Tensor:
            return self.act(x @ self.W)

    acts: dict[str, Callable[[Tensor], Tensor]] = {"out": Tensor.tanh}
    lc, le = Layer(Tensor.relu), Layer(Tensor.relu)
    le.W = Tensor(lc.W.data.copy(), requires_grad=True)

    def make(layer: Layer) -> Callable[..., Tensor]:
        return lambda x: (acts["out"](layer(x)) ** 2).sum()

    f, g = compile(make(lc)), make(le)
    for k in range(5):
        if k == 2:
            lc.act = le.act = Tensor.sigmoid
        if k == 3:
            acts["out"] = Tensor.relu
        same_step(f, g, lc.parameters, le.parameters, data(k))
    assert f.stats["traces"] == 3


def test_settings_in_a_config_object_a_model_holds_changed_between_calls() -> None:
    """model.config.temperature (a user's config object, or a SimpleNamespace, holding no
    parameter) changed between calls: not compared, replayed stale."""
    import types

    class Config:
        def __init__(self) -> None:
            self.temperature = 1.0

    class Model(Module):
        def __init__(self) -> None:
            self.W = weight()
            self.config = Config()
            self.extra = types.SimpleNamespace(shift=0.0)

        def forward(self, x: Any) -> Tensor:
            return (x @ self.W) / self.config.temperature + self.extra.shift

    mc, me = Model(), Model()
    me.W = Tensor(mc.W.data.copy(), requires_grad=True)
    f = compile(lambda x: (mc(x).tanh() ** 2).sum())
    for k in range(5):
        if k == 2:
            mc.config.temperature = me.config.temperature = 0.25
        if k == 3:
            mc.extra.shift = me.extra.shift = 1.5
        same_step(f, lambda x: (me(x).tanh() ** 2).sum(), mc.parameters, me.parameters, data(k))
    assert f.stats["traces"] == 3


@pytest.mark.parametrize("write", ["p.grad = None", "p.data = ...", "p.requires_grad = False"])
def test_a_parameter_s_grad_data_or_flag_set_inside_the_step_is_refused(write: str) -> None:
    """Set inside the step, these happened at the trace only (p.grad = None at the top of a
    step let gradients pile up over replays, as zero_grad() did)."""
    W = weight()
    W.grad = np.ones((3, 1))

    def step(x: Any) -> Tensor:
        if write == "p.grad = None":
            W.grad = None
        elif write == "p.data = ...":
            W.data = np.zeros((3, 1))
        else:
            W.requires_grad = False
        return ((x @ W) ** 2).sum()

    attribute = write.split()[0].split(".")[1]
    with pytest.raises(CompileError, match=rf"W\.{attribute} was changed by the function"):
        compile(step)(data(0))


def test_a_refused_trace_leaves_what_the_function_changed_as_it_was() -> None:
    """The trace runs the function: refused for a change it made, that change stayed (the
    counter stepped, the loss appended), and with fallback="eager" the eager run made it again:
    two steps a call where eager makes one. Nothing half-written: the trace's changes go."""

    class Counting(Module):
        def __init__(self) -> None:
            self.W = weight()
            self.calls = 0
            self.seen: list[Any] = []

        def forward(self, x: Any) -> Tensor:
            self.calls += 1
            self.seen.append(x.shape)
            return x @ self.W

    model = Counting()
    with pytest.raises(CompileError, match=r"model\.calls was changed"):
        compile(lambda x: model(x).sum())(data(0))
    assert model.calls == 0 and model.seen == []
    with pytest.warns(RuntimeWarning, match="runs eagerly"):
        f = compile(lambda x: model(x).sum(), fallback="eager")
        for k in range(3):
            f(data(k))
    assert model.calls == 3 and model.seen == [(4, 3)] * 3
    history: list[Tensor] = []

    def step(x: Any) -> Tensor:
        loss = (x @ model.W).sum()
        history.append(loss)
        return loss

    with pytest.raises(CompileError, match=r"history\[0\] holds"):
        compile(step)(data(0))
    assert history == []


@pytest.mark.parametrize("write", ["x *= 2.0", "x -= x.mean()", "x[0] = 0.0"])
def test_an_in_place_write_into_an_array_argument_is_refused(write: str) -> None:
    """x *= 2.0 on an array argument doubles the caller's array on every eager call; the trace's
    stand-in made a new Tensor, so a replay left it alone (the self-check's eager run doubled it
    once: the loss then went 12.0, 12.0, ... where eager's went 12.0, 24.0, 48.0)."""
    W = weight()

    def step(x: Any) -> Tensor:
        if write == "x *= 2.0":
            x *= 2.0
        elif write == "x -= x.mean()":
            x -= x.mean()
        else:
            x[0] = 0.0
        return ((x @ W) ** 2).sum()

    x = data(0)
    before = x.copy()
    with pytest.raises(CompileError, match="on an array argument: the eager function writes"):
        compile(step)(x)
    assert np.array_equal(x, before)


RUNNING_MEAN = np.zeros(3)


def test_a_global_array_written_in_place_inside_the_step_is_refused() -> None:
    """RUNNING_MEAN *= 0.9 inside: written at the trace and the self-check's run, and the next
    call saw other numbers and traced again, writing twice a call (eager: once)."""
    W = weight((3, 3))

    def step(x: Any) -> Tensor:
        RUNNING_MEAN[...] *= 0.9
        RUNNING_MEAN[...] += 0.1
        return ((x @ W).tanh() ** 2).sum()

    with pytest.raises(CompileError, match=r"RUNNING_MEAN \(its numbers, written in place\)"):
        compile(step)(data(0))
    assert np.array_equal(RUNNING_MEAN, np.zeros(3))  # the trace's write put back


def test_compile_over_a_staticmethod_in_a_class_body() -> None:
    W = weight()

    class Steps:
        @compile
        @staticmethod
        def loss(x: Any) -> Tensor:
            return ((x @ W) ** 2).sum()

    for k in range(3):
        assert bits(Steps().loss(data(k))) == bits(((data(k) @ W) ** 2).sum())
        assert bits(Steps.loss(data(k))) == bits(((data(k) @ W) ** 2).sum())
