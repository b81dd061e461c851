"""chain: a chain of 10^6 Values, built and back-propagated: ``x = x.tanh()`` and
``y = y * 1.0000001`` (a number operand: a param of the op, so one new node per step either way).

Every measurement runs in a fresh subprocess (``python -m bench.chain --worker KIND``) at
Python's default recursion limit, so the chain's memory never touches the other rows.
micrograd 0.1.0 has no tanh; its chain uses relu, which also adds exactly one node per step.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from typing import Any

from backproplab.autograd import Value

from ._timing import (
    Row,
    Timing,
    emit,
    fmt_bytes,
    fmt_time,
    have,
    header,
    info,
    measure,
    run_worker,
    runs_for,
    side,
    skip,
    verdict,
    worker_reply,
)

NAME = "chain"
DEPTH = 10**6
# step -> (the loop's body as text, seconds goal for build + backward)
# Floors at the last full run (7.2 s, 8.0 s; 264 and 312 B/node peak): the eager speed goals
# (2 s, 3.5 s, 200 B/node) are withdrawn, these keep the engine from getting slower.
STEPS = {"tanh": ("x = x.tanh()", 8.0), "mul": ("x = x * 1.0000001", 9.0)}
WORKLOAD = f"x = Value(0.5); {DEPTH:,} times {{}}; x.backward()  (default recursion limit)"
GOAL_BYTES = 340.0
_step = ["tanh"]  # the step this worker builds chains of


def build(depth: int) -> tuple[Value, Value]:
    """Return (leaf, root) of a chain of ``depth`` nodes of the current step."""
    leaf = Value(0.5)
    x = leaf
    if _step[0] == "mul":
        for _ in range(depth):
            x = x * 1.0000001
    else:
        for _ in range(depth):
            x = x.tanh()
    return leaf, x


# --- workers (run in their own interpreter) -------------------------------------------------------


def _time_ours(runs: int) -> dict[str, Any]:
    """build, backward and free times of the full chain; a warm-up chain first."""
    out: dict[str, list[float]] = {"build": [], "backward": [], "free": []}
    for i in range(runs + 1):
        t0 = time.perf_counter()
        leaf, x = build(DEPTH)
        t1 = time.perf_counter()
        x.backward()
        t2 = time.perf_counter()
        grad = leaf.grad
        del x, leaf
        t3 = time.perf_counter()
        expected = 1.0000001**DEPTH if _step[0] == "mul" else None
        if not (0.0 < grad < 1.0 if expected is None else abs(grad - expected) < 1e-6):
            raise AssertionError(f"chain: leaf gradient {grad!r} is wrong")
        if i:  # the first chain is the warm-up
            out["build"].append(t1 - t0)
            out["backward"].append(t2 - t1)
            out["free"].append(t3 - t2)
    # Diagnostic, outside the goal: the same build with the cyclic GC paused, to show its share.
    gc.disable()
    t0 = time.perf_counter()
    leaf, x = build(DEPTH)
    build_gc_off = time.perf_counter() - t0
    gc.enable()
    del x, leaf
    return {
        "recursion_limit": sys.getrecursionlimit(),
        "gc_enabled": gc.isenabled(),
        "build_gc_off": build_gc_off,
        **out,
    }


def _memory_ours() -> dict[str, Any]:
    """tracemalloc figures: retained after build, peak over build+backward, retained after."""
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    leaf, x = build(DEPTH)
    after_build, _ = tracemalloc.get_traced_memory()
    x.backward()
    after_backward, peak = tracemalloc.get_traced_memory()
    del x, leaf
    tracemalloc.stop()
    return {
        "after_build": after_build - base,
        "peak": peak - base,
        "after_backward": after_backward - base,
    }


def _micrograd_depth(runs: int) -> dict[str, Any]:
    """The depth at which micrograd's recursive topological sort first raises RecursionError."""
    from micrograd.engine import Value as MValue

    def chain(depth: int) -> Any:
        x = MValue(0.5)
        for _ in range(depth):
            x = x.relu()
        return x

    def works(depth: int) -> bool:
        try:
            chain(depth).backward()
        except RecursionError:
            return False
        return True

    tried: list[tuple[int, bool]] = []
    depth, ok_at = 500, 0
    while depth <= DEPTH:
        ok = works(depth)
        tried.append((depth, ok))
        if not ok:
            break
        ok_at, depth = depth, depth * 2
    else:
        return {"tried": tried, "fails_at": None}
    fails_at = depth
    lo, hi = ok_at, fails_at  # bisect for the exact first failing depth
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if works(mid) else (lo, mid)
    # Both engines on a chain micrograd manages (a margin for the timing helper's own frames).
    deepest = lo - 50
    ours = measure(lambda: build(deepest)[1].backward(), runs).runs
    theirs = measure(lambda: chain(deepest).backward(), runs).runs
    return {
        "tried": tried,
        "fails_at": fails_at,
        "first_failing_depth": hi,
        "deepest_ok": lo,
        "timed_depth": deepest,
        "recursion_limit": sys.getrecursionlimit(),
        "ours_at_deepest": ours,
        "micrograd_at_deepest": theirs,
    }


def _worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chain")
    parser.add_argument("--worker", choices=["time", "memory", "micrograd"], required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--step", choices=list(STEPS), default="tanh")
    args = parser.parse_args(argv)
    _step[0] = args.step
    if args.worker == "time":
        worker_reply(_time_ours(args.runs))
    elif args.worker == "memory":
        worker_reply(_memory_ours())
    else:
        worker_reply(_micrograd_depth(args.runs))


# --- the row --------------------------------------------------------------------------------------


def run(quick: bool) -> list[Row]:
    out: list[Row] = []
    for step in STEPS:
        out += _run_step(quick, step)
    return out


def _run_step(quick: bool, step: str) -> list[Row]:
    body, goal_seconds = STEPS[step]
    workload = WORKLOAD.format(body)
    header(f"{NAME} ({body})", workload)
    n = runs_for(quick, full=5, fast=3)
    out: list[Row] = []

    t = run_worker("chain", "time", "--runs", str(n), "--step", step)
    build_t, backward_t, free_t = (Timing(tuple(t[k])) for k in ("build", "backward", "free"))
    total = Timing(tuple(b + w for b, w in zip(t["build"], t["backward"], strict=True)))
    info(f"subprocess: recursion limit {t['recursion_limit']}, GC enabled {t['gc_enabled']}")
    side("ours build", build_t, f"(one build with gc.disable(): {fmt_time(t['build_gc_off'])})")
    side("ours backward", backward_t)
    side("ours build + backward", total, f"{total.median / DEPTH * 1e9:.0f} ns/node")
    side("ours free (del root, untimed in goal)", free_t)

    m = run_worker("chain", "memory", "--step", step)
    per_node = {k: m[k] / DEPTH for k in ("after_build", "peak", "after_backward")}
    info(
        f"tracemalloc: retained after build {fmt_bytes(m['after_build'])} "
        f"({per_node['after_build']:.1f} B/node), peak during build+backward "
        f"{fmt_bytes(m['peak'])} "
        f"({per_node['peak']:.1f} B/node), retained after backward "
        f"{fmt_bytes(m['after_backward'])} ({per_node['after_backward']:.1f} B/node)"
    )

    out.append(
        emit(
            Row(
                NAME,
                f"{body}: time, build + backward",
                workload,
                ours_s=total.median,
                ratio=total.median,
                ratio_text=f"{fmt_time(total.median)} total",
                goal=f"<= {goal_seconds:g} s",
                status=verdict(total.median <= goal_seconds),
                extra={
                    "build_s": build_t.runs,
                    "backward_s": backward_t.runs,
                    "free_s": free_t.runs,
                    "recursion_limit": t["recursion_limit"],
                },
            )
        )
    )
    out.append(
        emit(
            Row(
                NAME,
                f"{body}: memory, peak per node",
                workload,
                ratio=per_node["peak"],
                ratio_text=f"{per_node['peak']:.1f} B/node peak",
                goal=f"<= {GOAL_BYTES:g} B/node",
                status=verdict(per_node["peak"] <= GOAL_BYTES),
                extra={"bytes": m, "bytes_per_node": per_node},
            )
        )
    )

    case = "vs micrograd (recursive topo sort)"
    if step != "tanh":  # the depth micrograd reaches is the same whatever the step
        return out
    if not have("micrograd"):
        out.append(skip(NAME, case, workload, "micrograd"))
        return out
    mg = run_worker("chain", "micrograd", "--runs", str(runs_for(quick, 7, 5)))
    tried = ", ".join(f"{d}: {'ok' if ok else 'RecursionError'}" for d, ok in mg["tried"])
    info(f"micrograd depth search (recursion limit {mg.get('recursion_limit')}): {tried}")
    if mg["fails_at"] is None:
        out.append(emit(Row(NAME, case, workload, peer="micrograd 0.1.0", ratio_text="no failure")))
        return out
    deepest = mg["timed_depth"]
    ours_d = statistics.median(mg["ours_at_deepest"])
    theirs_d = statistics.median(mg["micrograd_at_deepest"])
    info(
        f"micrograd fails at depth {mg['fails_at']} (first failing depth by bisection: "
        f"{mg['first_failing_depth']}); at depth {deepest}: ours {fmt_time(ours_d)}, "
        f"micrograd {fmt_time(theirs_d)} build + backward"
    )
    out.append(
        emit(
            Row(
                NAME,
                case,
                workload,
                ours_s=total.median,
                peer="micrograd 0.1.0",
                ratio_text=f"micrograd fails at depth {mg['fails_at']}",
                extra={
                    **mg,
                    "speedup_at_deepest": theirs_d / ours_d,
                },
            )
        )
    )
    return out


if __name__ == "__main__":
    _worker(sys.argv[1:])
