"""End-to-end compile time of scalar (Value) steps of about 150,000 ops, several shapes.

Not a row of ``make bench`` (it has no peer and takes a minute). ``python -m
bench.scalar_compile_150k`` compiles each shape as a user writes a step (a function of Values,
its parameters read from the closure) and times what a user waits for: the first call (the
trace, the scalar program's build, the self-check's eager run and comparison) and the first
``backward()`` (the program's backward and the self-check's eager backward, compared). It prints
a Markdown table, the time split into its parts, best of ``--runs`` (3) by total: the
engine's part (the user's function run twice, as the trace and as the self-check's eager run,
and the engine's backward pass of the self-check) and compile's own (the traced graph read,
the program built and run forward and backward, the comparisons).
``--profile NAME`` prints cProfile's top functions of one shape's first call and backward.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import random
import time
from collections.abc import Callable
from typing import Any

from backproplab.autograd import Value, compile, sum_values
from backproplab.autograd.compile import entry as entry_module
from backproplab.autograd.compile import op as op_module

from .scalar_mlp import ScalarMLP, init_weights, two_moons
from .scalar_steps import demo_loss

Step = tuple[list[Value], Callable[..., Any]]  # (the arguments of the first call, the step)


def tanh_chain(n: int = 150_000) -> Step:
    def step(x: Value) -> Value:
        for _ in range(n):
            x = x.tanh()
        return x

    return [Value(0.3)], step


def wide_sum(n: int = 150_000) -> Step:
    rng = random.Random(0)
    ws = [Value(rng.random()) for _ in range(n // 2)]

    def step() -> Value:
        s = ws[0]
        for w in ws[1:]:
            s = s + w * w
        return s

    return [], step


def rnn(n: int = 150_000) -> Step:
    w, u, b = Value(0.5), Value(0.8), Value(0.1)
    rng = random.Random(0)
    xs = [rng.uniform(-1, 1) for _ in range(n // 8)]

    def step() -> Value:
        h, total = Value.constant(0.0), Value.constant(0.0)
        for x in xs:
            h = (w * h + u * x + b).tanh()
            total = total + (h - 0.5) ** 2
        return total

    return [], step


def mlp(samples: int = 234, demo: bool = False) -> Step:
    x, y = two_moons(samples)
    model = ScalarMLP(init_weights(), fused=False)
    xs, ys = x.tolist(), y.tolist()
    if demo:
        return [], lambda: demo_loss(model, xs, ys, Value)
    return [], lambda: model.loss(xs, ys)


def random_dag(n: int = 100_000) -> Step:
    return [], random_graph(n)[1]


def random_graph(n: int) -> tuple[list[Value], Callable[[], Value]]:
    """Random structure: each node reads one node from anywhere and one of the last 30. Returns
    the leaves (parameters the step reads) and the step."""
    rng = random.Random(0)
    leaves = [Value(rng.uniform(0.5, 1.5)) for _ in range(50)]
    picks = [(rng.random(), rng.randrange(30), rng.randrange(5)) for _ in range(n)]

    def step() -> Value:
        nodes: list[Any] = list(leaves)
        for a_at, b_back, k in picks:
            a = nodes[int(a_at * len(nodes))]
            b = nodes[-1 - min(b_back, len(nodes) - 1)]
            nodes.append(
                a + b
                if k == 0
                else a * b * 0.5
                if k == 1
                else (a - b).tanh()
                if k == 2
                else a.sigmoid() * b
                if k == 3
                else (a * 0.9).relu()
            )
        return sum_values(nodes[50:])

    return leaves, step


CASES: dict[str, Callable[[], Step]] = {
    "tanh chain `x = x.tanh()`": tanh_chain,
    "wide sum `s = s + w * w`": wide_sum,
    "scalar RNN, 18,750 steps": rnn,
    "micrograd-style MLP, 234 samples": mlp,
    "micrograd demo step, 230 samples": lambda: mlp(230, demo=True),
    "random DAG (5 ops, 50 leaves, all summed)": random_dag,
}


class _Clock:
    """Wraps the stages of compile's first call to time each (the rest of the call: other)."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}

    def wrap(self, module: Any, name: str, label: str) -> None:
        fn = getattr(module, name)
        parts = self.parts

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[label] = parts.get(label, 0.0) + time.perf_counter() - t

        setattr(module, name, timed)


def measure(make: Callable[[], Step]) -> tuple[int, dict[str, float]]:
    args, step = make()
    calls = []
    clock = _Clock()

    def user(*a: Any) -> Any:  # the first run is the trace, the second the self-check's
        t = time.perf_counter()
        out = step(*a)
        calls.append(time.perf_counter() - t)
        return out

    saved = (entry_module.build_scalar_program, entry_module.scalar_graph, op_module.backward_pass)
    clock.wrap(entry_module, "build_scalar_program", "build")
    clock.wrap(entry_module, "scalar_graph", "graph")
    clock.wrap(op_module, "backward_pass", "eager backward")
    try:
        compiled = compile(user)
        gc.collect()
        t = time.perf_counter()
        loss = compiled(*args)
        first = time.perf_counter() - t
        t = time.perf_counter()
        loss.backward()
        backward = time.perf_counter() - t
    finally:
        entry_module.build_scalar_program, entry_module.scalar_graph = saved[:2]
        op_module.backward_pass = saved[2]
    ops = compiled._last.program.scalar.n_ops  # type: ignore[union-attr]
    parts = clock.parts
    out = {
        "total": first + backward,
        "trace": calls[0],
        "graph": parts.get("graph", 0.0),
        "build": parts.get("build", 0.0),
        "eager run": calls[1],
        "first call, other": first - calls[0] - calls[1] - parts["graph"] - parts["build"],
        "eager backward": parts["eager backward"],
        "program backward": backward - parts["eager backward"],
    }
    # the engine's part: the user's function run twice (trace, self-check) and the engine's
    # backward pass (self-check); compile's part: reading the graph, building and running the
    # program, comparing
    out["engine"] = out["trace"] + out["eager run"] + out["eager backward"]
    out["compile"] = out["total"] - out["engine"]
    return ops, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="shapes whose name contains this")
    parser.add_argument("--profile", default="", help="profile the shape whose name has this")
    opts = parser.parse_args()
    if opts.profile:
        make = next(m for name, m in CASES.items() if opts.profile in name)
        args, step = make()
        compiled = compile(step)
        gc.collect()
        with cProfile.Profile() as prof:
            compiled(*args).backward()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    keys = ["engine", "compile", "trace", "graph", "build", "eager run", "first call, other"]
    keys += ["program backward", "eager backward"]
    print(f"| step | ops | compile, end to end | {' | '.join(keys)} |")
    print("|---|---|---|" + "---|" * len(keys))
    for name, make in CASES.items():
        if opts.only not in name:
            continue
        best: dict[str, float] = {}
        for _ in range(opts.runs):
            ops, parts = measure(make)
            if not best or parts["total"] < best["total"]:
                best = parts
        cells = " | ".join(f"{best[k]:.2f}" for k in keys)
        print(f"| {name} | {ops:,} | **{best['total']:.2f} s** | {cells} |", flush=True)
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
