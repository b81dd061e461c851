"""Per-step timing of two sides, taken in turn in fresh interpreters, one interpreter a pair.

The machine's speed drifts by up to 2x over seconds, and flips between a fast and a slow state
about as often as a worker starts: two workers run back to back could each land in a different
state (pair ratios of 0.5x and 1.8x for the same code). So each pair is one fresh interpreter
that builds both sides and times them in turn, a block of steps each, the side that goes first
alternating from block to block and from pair to pair; the ratio is the median of the pairs'
ratios of median step times.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._timing import Row, Timing, emit, have, info, run_worker, side, skip, verdict, worker_reply

WARMUP = 20  # untimed steps at the start of every worker run
BLOCK = 10  # steps one side runs before the other takes its turn

Step = Callable[[], float]  # one training step, returning its loss
Sides = Mapping[str, Callable[[int], Step]]  # worker kind -> (steps to run -> a step)


def first_losses(sides: Sides, kind: str, k: int = WARMUP) -> list[float]:
    """The losses of side ``kind``'s first ``k`` steps, run here, for the agreement check."""
    step = sides[kind](k)
    return [step() for _ in range(k)]


def step_worker(module: str, sides: Sides, argv: list[str]) -> None:
    """A worker's entry point: ``python -m bench.MODULE --worker KIND --iters N``.

    Times one side's steps, or with ``--against KIND2`` two sides in turn (see
    ``time_in_turn``), and replies with the result, per side under its kind when there are two;
    torch is held to one thread.
    """
    parser = argparse.ArgumentParser(prog=f"python -m bench.{module}")
    parser.add_argument("--worker", choices=list(sides), required=True)
    parser.add_argument("--against", choices=list(sides))
    parser.add_argument("--iters", type=int, required=True)
    args = parser.parse_args(argv)
    if args.against == args.worker:
        parser.error(f"--against names the side --worker already times: {args.worker}")
    kinds = [args.worker] if args.against is None else [args.worker, args.against]
    about: dict[str, dict[str, Any]] = {kind: {} for kind in kinds}
    if "torch" in kinds:
        import torch

        torch.set_num_threads(1)
        about["torch"].update(version=torch.__version__, threads=torch.get_num_threads())
    steps = {kind: sides[kind](WARMUP + args.iters) for kind in kinds}
    if args.against is None:
        worker_reply({**about[args.worker], **time_steps(steps[args.worker], args.iters)})
        return
    timed = time_in_turn(steps, args.iters)
    worker_reply({kind: {**about[kind], **timed[kind]} for kind in kinds})


def time_steps(step: Callable[[], float], iters: int, warmup: int = WARMUP) -> dict[str, Any]:
    """Run ``warmup + iters`` calls of ``step`` (one training step, returning its loss).

    Returns the median and total of the timed steps' wall times and the warm-up steps' losses.
    """
    clock = time.perf_counter
    losses = [step() for _ in range(warmup)]
    times = []
    for _ in range(iters):
        t0 = clock()
        step()
        times.append(clock() - t0)
    return {
        "step_median": statistics.median(times) if times else 0.0,
        "total": sum(times),
        "losses": losses,
    }


def time_in_turn(
    steps: Mapping[str, Callable[[], float]], iters: int, warmup: int = WARMUP
) -> dict[str, dict[str, Any]]:
    """``time_steps`` for several sides in one interpreter, taking turns a ``BLOCK`` of steps
    each (the first to go changing every block), so that a change in the machine's speed falls
    on all of them alike. Per side: the median and total of its timed steps' wall times and its
    warm-up steps' losses."""
    clock = time.perf_counter
    losses = {kind: [step() for _ in range(warmup)] for kind, step in steps.items()}
    times: dict[str, list[float]] = {kind: [] for kind in steps}
    order = list(steps)
    for block in range(-(-iters // BLOCK)):
        for kind in order if block % 2 == 0 else order[::-1]:
            step, mine = steps[kind], times[kind]
            for _ in range(min(BLOCK, iters - block * BLOCK)):
                t0 = clock()
                step()
                mine.append(clock() - t0)
    return {
        kind: {
            "step_median": statistics.median(ts) if ts else 0.0,
            "total": sum(ts),
            "losses": losses[kind],
        }
        for kind, ts in times.items()
    }


def max_rel_diff(a: Sequence[float], b: Sequence[float]) -> float:
    return max(abs(p - q) / max(abs(q), 1e-300) for p, q in zip(a, b, strict=True))


def paired_row(
    *,
    bench: str,
    case: str,
    workload: str,
    module: str,
    ours: tuple[str, str],
    peer: tuple[str, str],
    peer_name: str,
    goal: float,
    pairs: int,
    iters: int,
    losses_agree: bool,
    extra: dict[str, Any] | None = None,
) -> Row:
    """Time ``ours`` against ``peer`` ((worker kind, label) each) in ``pairs`` alternating pairs.

    Prints each side's median step time (the median over runs of each run's median step) and
    emits a row whose ratio is the median of the per-pair ratios, PASS when it is <= ``goal``
    and the two sides' losses agreed.
    """
    (a, a_label), (b, b_label) = ours, peer
    results: list[dict[str, dict[str, Any]]] = []
    for k in range(pairs):
        first, second = (a, b) if k % 2 == 0 else (b, a)
        results.append(run_worker(module, first, "--against", second, "--iters", str(iters)))
    ratios = [p[a]["step_median"] / p[b]["step_median"] for p in results]
    steps = {s: Timing(tuple(p[s]["step_median"] for p in results)) for s in (a, b)}
    info(
        f"{pairs} pairs, each a fresh interpreter timing both sides in turn, {BLOCK} steps at "
        f"a time, {iters} timed steps each (after {WARMUP} warm-up steps); pair ratios "
        + " ".join(f"{r:.3f}" for r in ratios)
    )
    side(a_label, steps[a], "per step")
    note = "per step"
    if "version" in results[0][b]:
        note += f"; {b} {results[0][b]['version']}, {results[0][b]['threads']} thread(s)"
    side(b_label, steps[b], note)
    ratio = statistics.median(ratios)
    return emit(
        Row(
            bench,
            case,
            workload,
            ours_s=steps[a].median,
            peer=peer_name,
            peer_s=steps[b].median,
            ratio=ratio,
            ratio_text=f"{ratio:.3f}x {peer_name}'s time",
            goal=f"<= {goal:g}x {peer_name}'s time",
            status=verdict(ratio <= goal and losses_agree),
            extra={
                "iters": iters,
                "warmup": WARMUP,
                "pairs": pairs,
                "pair_ratios": ratios,
                "ours_step_medians": steps[a].runs,
                "peer_step_medians": steps[b].runs,
                "losses_agree": losses_agree,
                **(extra or {}),
            },
        )
    )


def agreement(label: str, ours: Sequence[float], peer: Sequence[float], tol: float = 1e-9) -> bool:
    """Print and return whether two loss sequences agree to ``tol`` relative."""
    diff = max_rel_diff(ours, peer)
    ok = diff <= tol
    info(
        f"{label}: first {len(ours)} losses agree to {tol:g} relative: {ok} "
        f"(max relative difference {diff:.2e}; step 1 {ours[0]:.10g} vs {peer[0]:.10g}, "
        f"step {len(ours)} {ours[-1]:.10g} vs {peer[-1]:.10g})"
    )
    return ok


def torch_row(
    *,
    bench: str,
    case: str,
    workload: str,
    ours: tuple[str, str],
    ours_losses: Sequence[float],
    goal: float,
    pairs: int,
    iters: int,
) -> Row:
    """The row against torch CPU eager (float64, one thread), or a skip when torch is missing.

    The torch worker's first losses must agree with ``ours_losses`` for the row to pass.
    """
    work = f"{workload}; {case} eager (float64, 1 thread)"
    if not have("torch"):
        return skip(bench, case, work, "torch")
    torch_losses = run_worker(bench, "torch", "--iters", "0")["losses"]
    return paired_row(
        bench=bench,
        case=case,
        workload=work,
        module=bench,
        ours=ours,
        peer=("torch", "torch CPU eager"),
        peer_name="torch",
        goal=goal,
        pairs=pairs,
        iters=iters,
        losses_agree=agreement(case, ours_losses, torch_losses),
    )
