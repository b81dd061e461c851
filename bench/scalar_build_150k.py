"""Build time of compile/scalar.py's program on scalar graphs of about 150,000 ops, several shapes.

Not a row of ``make bench`` (it has no peer and takes minutes). ``python -m
bench.scalar_build_150k`` prints a Markdown table: the wall and CPU time of
``build_scalar_program`` (best of 3); the eager build of the graph, which compile's trace does
too; one forward and backward of the program; the eager backward; whether the program's results
equal the engine's bit for bit.
"""

from __future__ import annotations

import gc
import os
import random
import time
from collections.abc import Callable
from typing import Any

from backproplab.autograd import Value
from backproplab.autograd.compile.scalar import build_scalar_program

from .scalar_compile_150k import random_graph
from .scalar_mlp import ScalarMLP, init_weights, two_moons
from .scalar_steps import demo_loss, full_order

Graph = tuple[list[Value], Value]


def chain(n: int, step: Callable[[Any], Any]) -> Graph:
    x = Value(0.3)
    y = x
    for _ in range(n):
        y = step(y)
    return [x], y


def wide(n: int) -> Graph:
    rng = random.Random(0)
    ws = [Value(rng.random()) for _ in range(n // 2)]
    s = ws[0]
    for w in ws[1:]:
        s = s + w * w
    return ws, s


def rnn(n: int) -> Graph:
    w, u, b = Value(0.5), Value(0.8), Value(0.1)
    h, total = Value.constant(0.0), Value.constant(0.0)
    rng = random.Random(0)
    for _ in range(n // 8):
        h = (w * h + u * rng.uniform(-1, 1) + b).tanh()
        total = total + (h - 0.5) ** 2
    return [w, u, b], total


def mlp(samples: int, demo: bool) -> Graph:
    x, y = two_moons(samples)
    model = ScalarMLP(init_weights(), fused=False)
    xs, ys = x.tolist(), y.tolist()
    return model.parameters(), demo_loss(model, xs, ys, Value) if demo else model.loss(xs, ys)


def random_dag(n: int) -> Graph:
    leaves, step = random_graph(n)  # the end-to-end table's random step, built once
    return leaves, step()


CASES: dict[str, Callable[[], Graph]] = {
    "`x = x.tanh()` chain": lambda: chain(150_000, lambda y: y.tanh()),
    "`x = x * 1.0000001` chain": lambda: chain(150_000, lambda y: y * 1.0000001),
    "wide sum `s = s + w * w`": lambda: wide(150_000),
    "scalar RNN, 18,750 steps": lambda: rnn(150_000),
    "micrograd-style MLP, 234 samples": lambda: mlp(234, demo=False),
    "micrograd demo step, 230 samples": lambda: mlp(230, demo=True),
    "random DAG (5 ops, 50 leaves, all summed)": lambda: random_dag(100_000),
}


def main() -> None:
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| graph | ops | build, wall | build, CPU | trace | step | eager backward | bits |")
    print("|---|---|---|---|---|---|---|---|")
    for name, make in CASES.items():
        t = time.perf_counter()
        params, root = make()
        trace = time.perf_counter() - t
        order = full_order(root)
        ops = sum(1 for node in order if node.op is not None)
        wall = cpu = float("inf")
        for _ in range(3):
            gc.collect()
            w, c = time.perf_counter(), time.process_time()
            prog = build_scalar_program(order, params, [root])
            wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
        t = time.perf_counter()
        outs, saved = prog.forward([p.data for p in params])
        grads = prog.backward(saved, [1.0])
        step = time.perf_counter() - t
        t = time.perf_counter()
        root.backward()
        eager = time.perf_counter() - t
        same = outs[0] == root.data and grads == [p.grad for p in params]
        print(
            f"| {name} | {ops:,} | {wall:.2f} s | {cpu:.2f} s | {trace:.2f} s | "
            f"{step * 1e3:,.0f} ms | {eager * 1e3:,.0f} ms | {same} |",
            flush=True,
        )
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
