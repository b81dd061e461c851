"""scalar_mlp: one forward+backward step of MLP(2, [16, 16, 1]) on Values, ours vs micrograd 0.1.0.

micrograd's MLP has ReLU hidden layers and a linear output, so ours uses the same. Both sides
start from identical weights (drawn here with NumPy) and must agree on the loss and gradients.
"""

from __future__ import annotations

import gc
import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from backproplab.autograd import CompileError, Value, compile, dot, sum_values
from backproplab.autograd.compile import MAX_OPS

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
    skip,
    speed_text,
    verdict,
)

NAME = "scalar_mlp"
SIZES = (2, 16, 16, 1)
SAMPLES = 100
LR = 1e-3
WORKLOAD = (
    f"MLP{SIZES[0], list(SIZES[1:])} of scalar Values (ReLU hidden, linear out), "
    f"{SAMPLES} two-moons samples, summed squared error, one training step as a user writes it "
    f"(zero the grads, forward, backward, p.data -= {LR:g} * p.grad)"
)

Weights = list[list[tuple[list[float], float]]]  # layer -> neuron -> (w, b)


def two_moons(n: int = SAMPLES, seed: int = 0, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles, labels -1 and +1 (what sklearn's make_moons draws)."""
    rng = np.random.default_rng(seed)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = np.stack([1.0 - np.cos(t_in), 0.5 - np.sin(t_in)], axis=1)
    x = np.concatenate([outer, inner]) + rng.normal(scale=noise, size=(n, 2))
    y = np.concatenate([-np.ones(n_out), np.ones(n_in)])
    return x, y


def init_weights(sizes: Sequence[int] = SIZES, seed: int = 1) -> Weights:
    """Uniform(-1, 1) weights and zero biases, as micrograd's Neuron draws them."""
    rng = np.random.default_rng(seed)
    return [
        [(rng.uniform(-1.0, 1.0, nin).tolist(), 0.0) for _ in range(nout)]
        for nin, nout in itertools.pairwise(sizes)
    ]


class ScalarMLP:
    """Our MLP on Values: ReLU hidden layers, linear output, each neuron one fused ``dot`` node."""

    def __init__(self, weights: Weights, fused: bool = True) -> None:
        self.fused = fused
        self.layers = [[([Value(w) for w in ws], Value(b)) for ws, b in layer] for layer in weights]

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for ws, b in layer for p in (*ws, b)]

    def __call__(self, x: Sequence[Any]) -> Value:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if self.fused:
                acts = [dot(ws, x) + b for ws, b in layer]
            else:  # micrograd's own form: a chain of 2n nodes per neuron
                acts = [sum((w * xi for w, xi in zip(ws, x, strict=True)), b) for ws, b in layer]
            x = acts if i == last else [a.relu() for a in acts]
        return x[0]  # type: ignore[return-value]

    def loss(self, xs: list[list[float]], ys: list[float]) -> Value:
        if self.fused:
            return sum_values([(self(x) - y) ** 2 for x, y in zip(xs, ys, strict=True)])
        return sum(((self(x) - y) ** 2 for x, y in zip(xs, ys, strict=True)), Value(0.0))


def count_nodes(root: Any, parents: Callable[[Any], Any]) -> int:
    """Every node reachable from root, leaves and constants included."""
    seen = {id(root)}
    stack = [root]
    while stack:
        for p in parents(stack.pop()):
            if id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return len(seen)


def _ours(weights: Weights, xs: list[list[float]], ys: list[float], fused: bool) -> dict[str, Any]:
    model = ScalarMLP(weights, fused)
    params = model.parameters()

    def step() -> None:
        for p in params:
            p.grad = 0.0
        model.loss(xs, ys).backward()
        for p in params:
            p.data -= LR * p.grad

    def zero() -> None:
        for p in params:
            p.grad = 0.0

    zero()
    loss = model.loss(xs, ys)
    loss.backward()
    nodes = count_nodes(loss, lambda v: v.parents)
    return {
        "step": step,
        "zero": zero,
        "loss": loss.data,
        "grads": [p.grad for p in params],
        "nodes": nodes,
    }


def _compiled(weights: Weights, xs: list[list[float]], ys: list[float]) -> dict[str, Any]:
    """Issue 12's side: micrograd-style code (a node per * and +) under @compile."""
    model = ScalarMLP(weights, fused=False)
    params = model.parameters()
    loss_fn = compile(lambda: model.loss(xs, ys))

    def step() -> None:
        for p in params:
            p.grad = 0.0
        loss_fn().backward()
        for p in params:
            p.data -= LR * p.grad

    def zero() -> None:
        for p in params:
            p.grad = 0.0

    zero()
    t0 = time.perf_counter()
    loss = loss_fn()  # the trace, the program's build, the self-check's eager run
    loss.backward()  # the self-check's eager backward, compared with the program's
    compile_s = time.perf_counter() - t0
    return {
        "step": step,
        "zero": zero,
        "loss": loss.data,
        "grads": [p.grad for p in params],
        "compile_s": compile_s,
        "eager": loss_fn.source.startswith("# This trace has"),
    }


def _micrograd(weights: Weights, xs: list[list[float]], ys: list[float]) -> dict[str, Any]:
    from micrograd.nn import MLP

    model = MLP(SIZES[0], list(SIZES[1:]))
    for layer, neurons in zip(model.layers, weights, strict=True):
        for neuron, (ws, b) in zip(layer.neurons, neurons, strict=True):
            for v, w in zip(neuron.w, ws, strict=True):
                v.data = w
            neuron.b.data = b
    params = model.parameters()

    def loss_fn() -> Any:
        return sum((model(x) - y) ** 2 for x, y in zip(xs, ys, strict=True))

    def step() -> None:
        model.zero_grad()
        loss_fn().backward()
        for p in params:
            p.data -= LR * p.grad

    def zero() -> None:
        model.zero_grad()

    loss = loss_fn()
    loss.backward()
    nodes = count_nodes(loss, lambda v: v._prev)
    return {
        "step": step,
        "zero": zero,
        "loss": float(loss.data),
        "grads": [float(p.grad) for p in params],
        "nodes": nodes,
    }


def _gc_off(step: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        gc.disable()
        try:
            step()
        finally:
            gc.enable()

    return run


def _close(a: Sequence[float], b: Sequence[float], rel: float = 1e-9) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=rel, abs_tol=1e-12) for x, y in zip(a, b, strict=False)
    )


def _collecting(zero: Callable[[], None]) -> Callable[[], None]:
    def hook() -> None:
        zero()
        gc.collect()

    return hook


def run(quick: bool) -> list[Row]:
    header(NAME, WORKLOAD)
    x, y = two_moons()
    xs, ys = x.tolist(), y.tolist()
    weights = init_weights()
    n = runs_for(quick, full=7, fast=3)
    out: list[Row] = []

    ours = _ours(weights, xs, ys, fused=True)
    unfused = _ours(weights, xs, ys, fused=False)
    if not _close([ours["loss"], *ours["grads"]], [unfused["loss"], *unfused["grads"]]):
        raise AssertionError("scalar_mlp: fused and unfused forms disagree on loss or gradients")
    # Our graphs hold no cycles, so the gc.collect() before each of our runs only clears a peer's
    # garbage, which our step would otherwise be charged for. GC stays on in our steps.
    sides: dict[str, Callable[[], None]] = {"ours": ours["step"], "unfused": unfused["step"]}
    hooks = {"ours": _collecting(ours["zero"]), "unfused": _collecting(unfused["zero"])}
    mg: dict[str, Any] = {}
    if have("micrograd"):
        mg = _micrograd(weights, xs, ys)
        agree = _close([ours["loss"], *ours["grads"]], [mg["loss"], *mg["grads"]])
        info(
            f"loss {ours['loss']:.10g} (ours) vs {mg['loss']:.10g} (micrograd); "
            f"loss and all {len(ours['grads'])} gradients agree to 1e-9: {agree}"
        )
        if not agree:
            raise AssertionError("scalar_mlp: ours and micrograd disagree on loss or gradients")
        sides["mg_off"] = _gc_off(mg["step"])
        hooks["mg_off"] = _collecting(mg["zero"])
    # Round-robin, so load from elsewhere on the machine hits every side alike.
    t = measure_interleaved(sides, n, before=hooks)
    t_ours, t_unf = t["ours"], t["unfused"]
    rate = ours["nodes"] / t_ours.median
    side(
        "ours (dot + bias per neuron)",
        t_ours,
        f"{ours['nodes']:,} nodes, {rate / 1e6:.2f} M nodes/s",
    )
    side(
        "ours unfused (sum of w*x, as micrograd)",
        t_unf,
        f"{unfused['nodes']:,} nodes, {unfused['nodes'] / t_unf.median / 1e6:.2f} M nodes/s",
    )
    if not mg:
        out.append(skip(NAME, "vs micrograd (GC on)", WORKLOAD, "micrograd"))
        out.append(skip(NAME, "vs micrograd (GC off)", WORKLOAD, "micrograd"))
        return out

    t_mg_off = t["mg_off"]
    side(
        "micrograd 0.1.0 (gc.disable() in step)",
        t_mg_off,
        f"{mg['nodes']:,} nodes, {mg['nodes'] / t_mg_off.median / 1e6:.2f} M nodes/s",
    )
    # As shipped: GC on and steps back to back, each collecting the cyclic garbage (closures)
    # of the steps before it, as in a training loop. Far slower than us, so timed on its own.
    gc.collect()
    t_mg = measure(mg["step"], n, before=mg["zero"])
    side(
        "micrograd 0.1.0 (GC on, back to back)",
        t_mg,
        f"{mg['nodes']:,} nodes, {mg['nodes'] / t_mg.median / 1e6:.2f} M nodes/s",
    )
    gc.collect()

    # The unfused rows are micrograd-style user code (a node per * and +, as micrograd builds);
    # the fused ones show what fusing the neuron's sum is worth.
    for prefix, t_side, side_nodes, goals in (
        ("", t_ours, ours["nodes"], (10.0, 2.0)),
        # micrograd-style user code: issue 15's goal (8x) is withdrawn; 3x is a floor at
        # the engine's eager speed of the last full run (3.6x), so that it does not fall
        ("unfused ", t_unf, unfused["nodes"], (3.0, None)),
    ):
        for (gc_state, t_peer), goal in zip(
            (("GC on", t_mg), ("GC off", t_mg_off)), goals, strict=True
        ):
            speedup = t_peer.median / t_side.median
            out.append(
                emit(
                    Row(
                        NAME,
                        f"{prefix}vs micrograd ({gc_state})",
                        WORKLOAD,
                        ours_s=t_side.median,
                        peer="micrograd 0.1.0",
                        peer_s=t_peer.median,
                        ratio=speedup,
                        ratio_text=speed_text(speedup),
                        goal="" if goal is None else f">= {goal:g}x faster",
                        status="INFO" if goal is None else verdict(speedup >= goal),
                        extra={
                            "ours_nodes": side_nodes,
                            "peer_nodes": mg["nodes"],
                            "ours_nodes_per_s": side_nodes / t_side.median,
                            "peer_nodes_per_s": mg["nodes"] / t_peer.median,
                            "ours_runs": t_side.runs,
                            "peer_runs": t_peer.runs,
                        },
                    )
                )
            )
    out += _compiled_rows(weights, xs, ys, n, mg, t_mg, t_mg_off, t_unf.median)
    return out


def _compiled_rows(
    weights: Weights,
    xs: list[list[float]],
    ys: list[float],
    n: int,
    mg: dict[str, Any],
    t_mg: Any,
    t_mg_off: Any,
    eager_step_s: float,
) -> list[Row]:
    """Issue 12's rows: micrograd-style code compiled, against micrograd with GC on and off.

    ``eager_step_s``: the same code's eager step in this run, against which the compile time is
    also given (the machine's speed swings; the ratio to a step timed minutes apart moves less).
    """
    try:
        comp = _compiled(weights, xs, ys)
    except CompileError as e:  # a refusal is this row's result, in one line
        work = WORKLOAD + "; micrograd-style code under @compile"
        return [emit(Row(NAME, "compiled", work, ratio_text=f"refused: {e}"[:120], status="FAIL"))]
    if not _close([comp["loss"], *comp["grads"]], [mg["loss"], *mg["grads"]]):
        raise AssertionError("scalar_mlp: compiled code and micrograd disagree")
    if comp["eager"]:
        info(
            f"the trace has more ops than compile.MAX_OPS ({MAX_OPS:,}): "
            "the compiled function runs eagerly"
        )
    t = measure_interleaved(
        {"compiled": comp["step"], "mg_off": _gc_off(mg["step"])},
        n,
        before={"compiled": _collecting(comp["zero"]), "mg_off": _collecting(mg["zero"])},
    )
    side(
        "ours, micrograd-style code, compiled", t["compiled"], f"compile {comp['compile_s']:.2f} s"
    )
    info(
        f"compile (the first call and its backward) {comp['compile_s']:.2f} s = "
        f"{comp['compile_s'] / eager_step_s:.2f}x the eager step of the same code in this run "
        f"({eager_step_s * 1e3:.0f} ms)"
    )
    out = []
    for gc_state, t_peer, goal in (("GC on", t_mg, 30.0), ("GC off", t["mg_off"], 5.0)):
        speedup = t_peer.median / t["compiled"].median
        out.append(
            emit(
                Row(
                    NAME,
                    f"compiled vs micrograd ({gc_state})",
                    WORKLOAD + "; micrograd-style code under @compile",
                    ours_s=t["compiled"].median,
                    peer="micrograd 0.1.0",
                    peer_s=t_peer.median,
                    ratio=speedup,
                    ratio_text=speed_text(speedup),
                    goal=f">= {goal:g}x faster",
                    status=verdict(speedup >= goal),
                    extra={"ours_runs": t["compiled"].runs, "peer_runs": t_peer.runs},
                )
            )
        )
    out.append(
        emit(
            Row(
                NAME,
                "compile time",
                WORKLOAD + "; the first call (trace) and the first replay",
                ours_s=comp["compile_s"],
                ratio=comp["compile_s"],
                ratio_text=f"{comp['compile_s']:.2f} s",
                goal="<= 1 s",
                status=verdict(comp["compile_s"] <= 1.0 and not comp["eager"]),
                extra={
                    "runs_eagerly": comp["eager"],
                    "eager_step_s": eager_step_s,
                    "compile_per_eager_step": comp["compile_s"] / eager_step_s,
                },
            )
        )
    )
    return out
