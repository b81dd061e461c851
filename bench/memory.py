"""memory_flat: does memory stay flat over many training steps? (tracemalloc, current bytes)

A Tensor MLP 2->16->16->1 (tanh hidden, linear out) trains for 1,000 steps and the scalar MLP of
scalar_mlp for 200; the traced memory after the last step must be within 64 KiB of that after
step 10. Readings are taken after gc.collect(); the raw reading (no collect) is printed too.
"""

from __future__ import annotations

import gc
import itertools
import resource
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
from backproplab.autograd import Tensor, compile

from ._timing import Row, emit, fmt_bytes, fmt_time, header, info, verdict
from .scalar_mlp import ScalarMLP, init_weights, two_moons

NAME = "memory_flat"
GOAL_BYTES = 64 * 1024
CHECKPOINT = 10


def tensor_step_fn(lr: float = 1e-3) -> Callable[[], float]:
    """One SGD step of a Tensor MLP 2->16->16->1 on 100 two-moons samples."""
    x_np, y_np = two_moons()
    x, y = Tensor(x_np), Tensor(y_np.reshape(-1, 1))
    rng = np.random.default_rng(2)
    sizes = (2, 16, 16, 1)
    params = []
    for nin, nout in itertools.pairwise(sizes):
        params.append(Tensor(rng.normal(0.0, nin**-0.5, (nin, nout)), requires_grad=True))
        params.append(Tensor(np.zeros((1, nout)), requires_grad=True))
    w1, b1, w2, b2, w3, b3 = params

    def step() -> float:
        h = (x @ w1 + b1).tanh()
        h = (h @ w2 + b2).tanh()
        loss = ((h @ w3 + b3 - y) ** 2).sum()
        loss.backward()
        for p in params:
            p.data -= lr * p.grad
            p.grad = None
        return loss.item()

    return step


def compiled_step_fn(lr: float = 1e-3) -> Callable[[], float]:
    """tensor_step_fn's step under @compile (issue 12), with the training idiom's zero_grad."""
    x_np, y_np = two_moons()
    y_col = y_np.reshape(-1, 1)
    rng = np.random.default_rng(2)
    sizes = (2, 16, 16, 1)
    params = []
    for nin, nout in itertools.pairwise(sizes):
        params.append(Tensor(rng.normal(0.0, nin**-0.5, (nin, nout)), requires_grad=True))
        params.append(Tensor(np.zeros((1, nout)), requires_grad=True))
    w1, b1, w2, b2, w3, b3 = params

    @compile
    def loss_fn(x: np.ndarray, y: np.ndarray) -> Tensor:
        h = (x @ w1 + b1).tanh()
        h = (h @ w2 + b2).tanh()
        return ((h @ w3 + b3 - y) ** 2).sum()

    def step() -> float:
        loss = loss_fn(x_np, y_col)
        loss.backward(retain_grads=False)
        for p in params:
            p.data -= lr * p.grad
            p.zero_grad()
        return loss.item()

    return step


def scalar_step_fn(lr: float = 1e-3) -> Callable[[], float]:
    """One SGD step of scalar_mlp's Value MLP (fused neurons) on the same 100 samples."""
    x, y = two_moons()
    xs, ys = x.tolist(), y.tolist()
    model = ScalarMLP(init_weights())
    params = model.parameters()

    def step() -> float:
        loss = model.loss(xs, ys)
        loss.backward()
        for p in params:
            p.data -= lr * p.grad
            p.grad = 0.0
        return loss.data

    return step


def flat(make: Callable[[], Callable[[], float]], steps: int) -> dict[str, float]:
    """Build a model and run ``steps`` steps under tracemalloc.

    Reads the current traced memory after step CHECKPOINT and after the last one.
    """
    tracemalloc.start()
    step = make()
    readings: dict[str, float] = {}
    first = last = 0.0
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        loss = step()
        if i == 1:
            first = loss
        if i in (CHECKPOINT, steps):
            raw, _ = tracemalloc.get_traced_memory()
            gc.collect()
            current, _ = tracemalloc.get_traced_memory()
            key = "early" if i == CHECKPOINT else "late"
            readings[key] = current
            readings[f"{key}_raw"] = raw
    elapsed = time.perf_counter() - t0
    last = loss
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        **readings,
        "growth": readings["late"] - readings["early"],
        "growth_raw": readings["late_raw"] - readings["early_raw"],
        "peak": peak,
        "seconds_per_step_traced": elapsed / steps,
        "loss_first": first,
        "loss_last": last,
    }


def faults_per_step(make: Callable[[], Callable[[], float]], steps: int) -> float:
    """Minor page faults (fresh pages touched) per step over ``steps`` steps after 20 warm-up."""
    step = make()
    for _ in range(20):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


def run(quick: bool) -> list[Row]:
    del quick  # the step counts are the test itself; --quick does not shorten them
    header(NAME, "tracemalloc current memory after step 10 vs after the last step, manual SGD")
    out = []
    for case, make, steps in (
        ("Tensor MLP 2-16-16-1 tanh", tensor_step_fn, 1000),
        ("scalar MLP(2, [16, 16, 1]) ReLU", scalar_step_fn, 200),
        ("compiled Tensor MLP 2-16-16-1 tanh", compiled_step_fn, 1000),
    ):
        workload = f"{case}, 100 two-moons samples, {steps} SGD steps"
        r = flat(make, steps)
        info(
            f"{case}: after step {CHECKPOINT} {fmt_bytes(r['early'])}, after step {steps} "
            f"{fmt_bytes(r['late'])}, growth {fmt_bytes(r['growth'])} (without gc.collect: "
            f"{fmt_bytes(r['growth_raw'])}); peak {fmt_bytes(r['peak'])}; loss "
            f"{r['loss_first']:.4g} -> {r['loss_last']:.4g}; "
            f"{fmt_time(r['seconds_per_step_traced'])}/step under tracemalloc"
        )
        out.append(
            emit(
                Row(
                    NAME,
                    case,
                    workload,
                    ratio=r["growth"],
                    ratio_text=f"growth {fmt_bytes(r['growth'])}",
                    goal=f"< {fmt_bytes(GOAL_BYTES)}",
                    status=verdict(r["growth"] < GOAL_BYTES),
                    extra={"steps": steps, **r},
                )
            )
        )
    f_comp = faults_per_step(compiled_step_fn, 1000)
    f_eager = faults_per_step(tensor_step_fn, 1000)
    info(
        f"page faults per step over 1,000 steps (untraced): compiled {f_comp:.2f}, "
        f"eager {f_eager:.2f}"
    )
    out.append(
        emit(
            Row(
                NAME,
                "compiled steps: page faults",
                "compiled Tensor MLP 2-16-16-1 tanh, 100 two-moons samples, 1,000 SGD steps",
                ratio=f_comp,
                ratio_text=f"{f_comp:.2f} faults/step (eager {f_eager:.2f})",
                goal="<= eager's + 1",
                status=verdict(f_comp <= f_eager + 1.0),
                extra={"compiled": f_comp, "eager": f_eager},
            )
        )
    )
    return out
