"""scalar_steps: compile time and speed of four structurally different scalar (Value) steps.

- ``mlp``: the micrograd-style MLP(2, [16, 16, 1]) step of ``scalar_mlp`` (a node per ``*`` and
  ``+``, summed squared error; wide and shallow, the same block per sample).
- ``demo``: micrograd's own demo step (demo.ipynb): the same MLP on 100 moons with the inputs as
  ``Value``s, the max-margin loss ``(1 + -yi * scorei).relu()`` averaged, plus the L2 penalty
  ``alpha * sum(p * p)``; timed against the same step on micrograd 0.1.0.
- ``rnn``: a deep narrow chain, a scalar recurrence ``h = tanh(w * h + u * x_t + b)`` over
  ``STEPS`` inputs with a squared error at every step (each op depends on the one before).
- ``random``: no structure, ``RANDOM_OPS`` steps each reading one result from anywhere and one
  of the last 30 (+, *, tanh, sigmoid, ReLU), all summed: wide and deep at once.

Each step is written as a user writes it: ``zero_grad``, the loss, ``loss.backward()``, then
``p.data -= lr * p.grad``. Compile time is the first call and its ``backward()``: the trace,
the scalar program's build and the self-check (the function run eagerly beside the program,
and the engine's gradients beside the program's). A step that compile refuses is printed as
one line for its row; the other rows still run.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from backproplab.autograd import CompileError, Value, compile
from backproplab.autograd.compile.scalar import build_scalar_program as build

from ._timing import (
    Row,
    emit,
    have,
    header,
    info,
    measure,
    measure_interleaved,
    runs_for,
    side,
    speed_text,
    verdict,
)
from .scalar_mlp import ScalarMLP, init_weights, two_moons

NAME = "scalar_steps"
LR = 1e-3
STEPS = 5000  # the recurrence's length
RANDOM_OPS = 40_000  # the random graph's steps (1 or 2 ops each)
WORKLOAD = "one training step of a scalar (Value) graph: zero_grad, loss, backward, update"

Case = tuple[list[Any], Callable[[], Any]]  # (parameters, the loss function)


def mlp_case() -> Case:
    x, y = two_moons()
    xs, ys = x.tolist(), y.tolist()
    model = ScalarMLP(init_weights(), fused=False)
    return model.parameters(), lambda: model.loss(xs, ys)


def demo_loss(model: Any, xs: list[list[float]], ys: list[float], value: type) -> Any:
    """micrograd's demo.ipynb ``loss()``, whole batch (without the accuracy: it reads .data)."""
    inputs = [list(map(value, xrow)) for xrow in xs]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(ys, scores, strict=True)]
    data_loss = sum(losses) * (1.0 / len(losses))
    alpha = 1e-4
    reg_loss = alpha * sum(p * p for p in model.parameters())
    return data_loss + reg_loss


def demo_case() -> Case:
    x, y = two_moons()
    xs, ys = x.tolist(), y.tolist()
    model = ScalarMLP(init_weights(), fused=False)
    return model.parameters(), lambda: demo_loss(model, xs, ys, Value)


def rnn_case() -> Case:
    rng = np.random.default_rng(2)
    xs = rng.uniform(-1.0, 1.0, STEPS).tolist()
    ys = np.sin(np.cumsum(xs)).tolist()
    w, u, b = Value(0.5), Value(0.8), Value(0.1)

    def loss() -> Any:
        h = Value.constant(0.0)
        total = Value.constant(0.0)
        for x_t, y_t in zip(xs, ys, strict=True):
            h = (w * h + u * x_t + b).tanh()
            total = total + (h - y_t) ** 2
        return total

    return [w, u, b], loss


def random_case() -> Case:
    """No shape at all: each op reads one result from anywhere and one of the last 30."""
    from .scalar_compile_150k import random_graph

    return random_graph(RANDOM_OPS)


CASES = {
    "mlp": ("micrograd-style MLP(2, [16, 16, 1]), 100 moons, squared error", mlp_case),
    "demo": ("micrograd's demo step (Value inputs, hinge loss, L2 penalty)", demo_case),
    "rnn": (f"scalar recurrence h = tanh(w*h + u*x + b), {STEPS:,} steps", rnn_case),
    "random": (f"a random graph of {RANDOM_OPS:,} steps of 5 kinds, 50 leaves", random_case),
}


def training_step(params: list[Any], loss_fn: Callable[[], Any]) -> Callable[[], None]:
    def step() -> None:
        for p in params:
            p.grad = 0.0
        loss = loss_fn()
        loss.backward()
        for p in params:
            p.data -= LR * p.grad

    return step


def micrograd_demo_step() -> Callable[[], None]:
    from micrograd.engine import Value as MgValue
    from micrograd.nn import MLP

    x, y = two_moons()
    xs, ys = x.tolist(), y.tolist()
    model = MLP(2, [16, 16, 1])
    for layer, neurons in zip(model.layers, init_weights(), strict=True):
        for neuron, (ws, b) in zip(layer.neurons, neurons, strict=True):
            for v, w in zip(neuron.w, ws, strict=True):
                v.data = w
            neuron.b.data = b

    def step() -> None:
        loss = demo_loss(model, xs, ys, MgValue)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= LR * p.grad

    return step


def _count_ops(root: Any) -> int:
    seen = {id(root)}
    stack = [root]
    while stack:
        for p in stack.pop().parents:
            if id(p) not in seen and p.op is not None:
                seen.add(id(p))
                stack.append(p)
    return len(seen)


def _case_rows(key: str, about: str, make: Callable[[], Case], n: int) -> list[Row]:
    work = f"{WORKLOAD}; {about}"
    params, loss_fn = make()
    ops = _count_ops(loss_fn())
    eager = measure(training_step(params, loss_fn), n, before=gc.collect)
    side(f"{key}: eager", eager, f"{ops:,} ops")
    params, loss_fn = make()
    compiled = compile(loss_fn)
    for p in params:
        p.grad = 0.0
    gc.collect()
    t0 = time.perf_counter()
    try:
        # what a user waits for: the trace, the program's build and the self-check (the
        # function run eagerly beside the program; at the backward, the engine's gradients)
        compiled().backward()
    except CompileError as e:  # a refusal is this row's result, in one line
        refused = f"refused: {e}"[:120]
        return [emit(Row(NAME, f"{key}: compile", work, ratio_text=refused, status="FAIL"))]
    compile_s = time.perf_counter() - t0
    eager_mode = compiled.source.startswith("# This trace has")
    if eager_mode:
        info(f"{key}: the trace has too many ops to compile: the compiled function runs eagerly")
    out = [
        emit(
            Row(
                NAME,
                f"{key}: compile time",
                work + "; the first call and its backward (trace, build, self-check)",
                ours_s=compile_s,
                ratio=compile_s,
                ratio_text=f"{compile_s:.2f} s ({ops:,} ops)",
                goal="<= 1 s",
                status=verdict(compile_s <= 1.0 and not eager_mode),
                extra={"ops": ops, "runs_eagerly": eager_mode},
            )
        )
    ]
    timed = measure(training_step(params, compiled), n, before=gc.collect)
    side(f"{key}: compiled", timed, f"compile {compile_s:.2f} s")
    speedup = eager.median / timed.median
    out.append(
        emit(
            Row(
                NAME,
                f"{key}: compiled vs eager",
                work,
                ours_s=timed.median,
                peer="eager",
                peer_s=eager.median,
                ratio=speedup,
                ratio_text=speed_text(speedup),
                extra={"ours_runs": timed.runs, "peer_runs": eager.runs},
            )
        )
    )
    if key == "demo" and have("micrograd"):
        gc.collect()
        peer = measure(micrograd_demo_step(), n)
        side("demo: micrograd 0.1.0 (GC on, back to back)", peer)
        speedup = peer.median / timed.median
        out.append(
            emit(
                Row(
                    NAME,
                    "demo: compiled vs micrograd (GC on)",
                    work,
                    ours_s=timed.median,
                    peer="micrograd 0.1.0",
                    peer_s=peer.median,
                    ratio=speedup,
                    ratio_text=speed_text(speedup),
                    extra={"ours_runs": timed.runs, "peer_runs": peer.runs},
                )
            )
        )
    return out


# --- the scalar program (autograd/compile/scalar.py) on its own, before compile uses it ---------


def full_order(root: Any) -> list[Any]:
    """Every node root depends on, leaves included, each after its parents."""
    seen: set[int] = set()
    order: list[Any] = []
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack += [(p, False) for p in reversed(node.parents) if id(p) not in seen]
    return order


def circle_case() -> Case:
    from backproplab.autograd import sum_values
    from backproplab.nn.seed_circle import CircleNet, circle_dataset

    net = CircleNet()
    data = circle_dataset()
    points = [[Value.constant(x), Value.constant(y)] for x, y, _ in data]
    targets = [Value.constant(z) for _, _, z in data]

    def loss() -> Any:
        preds = [net(p) for p in points]
        return sum_values([(y - z) ** 2 for y, z in zip(preds, targets, strict=True)]) / len(data)

    return net.parameters(), loss


def program_step(prog: Any, params: list[Any], lr: float) -> Callable[[], None]:
    """A training step on the program: forward, backward, ``p.data -= lr * grad``."""

    def step() -> None:
        _, saved = prog.forward([p.data for p in params])
        for p, g in zip(params, prog.backward(saved, [1.0]), strict=True):
            p.data -= lr * g

    return step


def _program_rows(key: str, about: str, make: Callable[[], Case], n: int) -> list[Row]:
    work = f"{WORKLOAD}; {about}; the trace run as compile/scalar.py's program"
    params, loss_fn = make()
    root = loss_fn()
    gc.collect()
    t0 = time.perf_counter()
    prog = build(full_order(root), params, [root])
    build_s = time.perf_counter() - t0
    ops = prog.n_ops
    out = [
        emit(
            Row(
                NAME,
                f"{key}: scalar program build",
                work + "; build_scalar_program on the recorded graph (the trace not included)",
                ours_s=build_s,
                ratio=build_s,
                ratio_text=f"{build_s:.2f} s ({ops:,} ops)",
                goal="<= 1 s",
                status=verdict(build_s <= 1.0),
                extra={"ops": ops},
            )
        )
    ]
    lr = 10.0 if key == "circle" else LR
    sides = {"program": program_step(prog, params, lr), "eager": training_step(*make())}
    t = measure_interleaved(sides, n, before={"program": gc.collect, "eager": gc.collect})
    side(f"{key}: scalar program", t["program"], f"build {build_s:.2f} s")
    side(f"{key}: eager", t["eager"])
    speedup = t["eager"].median / t["program"].median
    out.append(
        _speed_row(
            f"{key}: scalar program vs eager", work, t["program"], t["eager"], "eager", speedup
        )
    )
    return out + _peer_rows(key, work, t["program"], sides["program"], n)


def _speed_row(
    case: str, work: str, ours: Any, peer: Any, peer_name: str, speedup: float, goal: str = "",
    ok: bool | None = None,
) -> Row:  # fmt: skip
    return emit(
        Row(
            NAME,
            case,
            work,
            ours_s=ours.median,
            peer=peer_name,
            peer_s=peer.median,
            ratio=speedup,
            ratio_text=speed_text(speedup) if speedup >= 1 or not goal.startswith("<=") else "",
            goal=goal,
            status="INFO" if ok is None else verdict(ok),
            extra={"ours_runs": ours.runs, "peer_runs": peer.runs},
        )
    )


def _peer_rows(key: str, work: str, ours: Any, step: Callable[[], None], n: int) -> list[Row]:
    if key == "mlp" and have("micrograd"):
        from .scalar_mlp import _micrograd

        x, y = two_moons()
        gc.collect()
        peer = measure(_micrograd(init_weights(), x.tolist(), y.tolist())["step"], n)
        side("mlp: micrograd 0.1.0 (GC on, back to back)", peer)
        speedup = peer.median / ours.median
        case = "mlp: scalar program vs micrograd (GC on)"
        return [
            _speed_row(
                case, work, ours, peer, "micrograd 0.1.0", speedup, ">= 30x faster", speedup >= 30
            )
        ]
    if key == "circle":
        from .seed001_writeup import MyNet, make_dataset, one_step

        random.seed(0)
        net, dataset = MyNet(2, [4]), make_dataset()
        sides = {"program": step, "pure": lambda: one_step(net, dataset, 10.0)}
        t = measure_interleaved(sides, max(n, 50), before={"program": gc.collect})
        side("circle: scalar program (in turn with pure Python)", t["program"])
        side("circle: the write-up's pure Python", t["pure"])
        ratio = t["program"].median / t["pure"].median
        row = Row(
            NAME,
            "circle: scalar program vs pure Python",
            work,
            ours_s=t["program"].median,
            peer="pure Python",
            peer_s=t["pure"].median,
            ratio=ratio,
            ratio_text=f"{ratio:.3f}x pure Python's time",
            goal="<= 0.5x pure Python's time",
            status=verdict(ratio <= 0.5),
            extra={"ours_runs": t["program"].runs, "peer_runs": t["pure"].runs},
        )
        return [emit(row)]
    return []


def run(quick: bool) -> list[Row]:
    header(NAME, WORKLOAD)
    n = runs_for(quick, full=5, fast=2)
    out: list[Row] = []
    for key, (about, make) in CASES.items():
        out += _case_rows(key, about, make, n)
    info("compile/scalar.py's program on the same steps (until compile uses it)")
    cases = {**CASES, "circle": ("seed 001's circle classifier on Values", circle_case)}
    for key, (about, make) in cases.items():
        out += _program_rows(key, about, make, max(n, 20) if key == "circle" else n)
    return out
