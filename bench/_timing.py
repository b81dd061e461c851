"""Shared helpers: timed medians, printing rows, the JSON-lines log, optional peers and workers."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).with_name("results.jsonl")
ROOT = Path(__file__).resolve().parent.parent
RUN_ID = datetime.now(timezone.utc).isoformat(timespec="seconds")

_rows: list[Row] = []


# --- timing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """The wall times (seconds) of the timed runs, warm-up excluded."""

    runs: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the runs were."""
        return (max(self.runs) - min(self.runs)) / self.median if self.median else 0.0


def measure(
    fn: Callable[[], object],
    runs: int,
    *,
    warmup: int = 1,
    before: Callable[[], object] | None = None,
) -> Timing:
    """Time ``fn`` ``runs`` times with time.perf_counter after ``warmup`` untimed calls.

    ``before`` runs untimed ahead of every call (resetting gradients, collecting garbage).
    """
    for _ in range(warmup):
        if before is not None:
            before()
        fn()
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timing(tuple(times))


def measure_interleaved(
    fns: Mapping[str, Callable[[], object]],
    runs: int,
    *,
    warmup: int = 1,
    before: Mapping[str, Callable[[], object]] | None = None,
) -> dict[str, Timing]:
    """Time several sides round-robin (A B A B ...), so drift in the machine's load hits all alike.

    ``before[name]``, when given, runs untimed ahead of each of that side's calls.
    """
    hooks = before or {}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + runs):
        for name, fn in fns.items():
            hook = hooks.get(name)
            if hook is not None:
                hook()
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {name: Timing(tuple(ts)) for name, ts in times.items()}


def runs_for(quick: bool, full: int = 7, fast: int = 3) -> int:
    """How many timed runs a row makes: ``full`` normally, ``fast`` under --quick."""
    return fast if quick else full


# --- formatting -----------------------------------------------------------------------------------


def fmt_time(seconds: float | None) -> str:
    """A duration with a unit that keeps 3-4 significant figures."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return (
                f"{seconds / scale:.3g} {unit}"
                if seconds < 100 * scale
                else f"{seconds / scale:.0f} {unit}"
            )
    return f"{seconds * 1e9:.0f} ns"


def fmt_bytes(n: float) -> str:
    """A byte count in B, KiB or MiB."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n < 1024:
        return f"{sign}{n:.0f} B"
    if n < 1024**2:
        return f"{sign}{n / 1024:.1f} KiB"
    return f"{sign}{n / 1024**2:.1f} MiB"


NOISY = 0.3  # (max - min) / median above which a side's runs are flagged as noisy


def speed_text(speedup: float) -> str:
    """'3.2x faster' for a speedup above 1, '1.46x slower' below."""
    return f"{speedup:.1f}x faster" if speedup >= 1 else f"{1 / speedup:.2f}x slower"


def header(bench: str, workload: str) -> None:
    """Print a benchmark's title line and its workload."""
    print(f"\n== {bench}")
    print(f"   workload: {workload}")


def side(label: str, timing: Timing, note: str = "") -> None:
    """Print one side's median and its spread over the timed runs."""
    runs = len(timing.runs)
    if runs > 1:
        spread = f"{runs} runs, ±{timing.spread / 2:.0%}, best {fmt_time(min(timing.runs))}"
    else:
        spread = "1 run"
    noisy = "  [noisy]" if timing.spread > NOISY else ""
    extra = f"   {note}" if note else ""
    print(f"   {label:<40} median {fmt_time(timing.median):>9}  ({spread}){extra}{noisy}")


def info(text: str) -> None:
    """Print an indented note under the current benchmark."""
    print(f"   {text}")


# --- rows -----------------------------------------------------------------------------------------


@dataclass
class Row:
    """One result line: printed, kept for the summary table, and logged to results.jsonl."""

    bench: str
    case: str
    workload: str
    ours_s: float | None = None
    peer: str = ""
    peer_s: float | None = None
    ratio: float | None = None
    ratio_text: str = ""
    goal: str = ""
    status: str = "INFO"  # PASS, FAIL, INFO, SKIP or ERROR
    extra: dict[str, Any] = field(default_factory=dict)


def emit(row: Row) -> Row:
    """Print the row's verdict line, keep it for the summary and append it to results.jsonl."""
    goal = f"goal {row.goal}" if row.goal else ""
    print(f"   -> {row.case}: {row.ratio_text:<28} {goal:<30} {row.status}")
    _rows.append(row)
    record = {"run": RUN_ID, "quick": QUICK[0], **asdict(row), "env": environment()}
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=float) + "\n")
    return row


def skip(bench: str, case: str, workload: str, missing: str) -> Row:
    """Emit a SKIP row for a peer that is not installed."""
    return emit(
        Row(
            bench,
            case,
            workload,
            peer=missing,
            ratio_text=f"skipped: {missing} not installed",
            status="SKIP",
        )
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def rows() -> list[Row]:
    """Every row emitted in this process so far."""
    return list(_rows)


QUICK = [False]  # set once by __main__; a list so the helpers read the live value


def summary() -> None:
    """Print every emitted row as one table."""
    cols = ("bench", "case", "ours", "peer", "ratio / figure", "goal", "result")
    table = [
        (
            r.bench,
            r.case,
            fmt_time(r.ours_s),
            fmt_time(r.peer_s),
            r.ratio_text,
            r.goal,
            r.status,
        )
        for r in _rows
    ]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)] if table else []
    print("\n" + "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))


# --- environment ----------------------------------------------------------------------------------


def have(module: str) -> bool:
    """True when ``module`` can be imported (a peer such as micrograd or torch)."""
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def numpy_threads() -> int:
    """The thread count NumPy's BLAS uses by default, read from OpenBLAS when possible."""
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            libs = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
    except OSError:
        libs = set()
    for lib in sorted(libs):
        handle = ctypes.CDLL(lib)
        for name in (
            "scipy_openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_",
            "openblas_get_num_threads",
        ):
            fn = getattr(handle, name, None)
            if fn is not None:
                return int(fn())
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def autograd_state() -> str:
    """The git commit plus a hash of autograd/*.py as they are now (they change under us)."""
    digest = hashlib.sha1()
    for path in sorted((ROOT / "autograd").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = "unknown"
    return f"{head}+{digest.hexdigest()[:10]}"


_ENV: dict[str, str] = {}


def environment() -> dict[str, str]:
    """Versions, machine facts and the autograd sources' state, logged with each row."""
    if not _ENV:
        _ENV.update(
            python=platform.python_version(),
            numpy=np.__version__,
            machine=platform.machine(),
            cpus=str(os.cpu_count()),
            autograd=autograd_state(),
        )
    return _ENV


# --- subprocess workers ---------------------------------------------------------------------------


def run_worker(module: str, kind: str, *args: str, timeout: float = 600) -> dict[str, Any]:
    """Run ``python -m bench.<module> --worker KIND ARGS``; return the JSON object it prints last.

    A worker runs in a fresh interpreter, so its memory and thread pools touch no other row.
    """
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--worker", kind, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"worker bench.{module} {kind} {' '.join(args)} failed:\n{proc.stderr[-2000:]}"
        )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    check_same_autograd(result)
    return result


def worker_reply(result: dict[str, Any]) -> None:
    """Print a worker's result as the last line of its stdout, for run_worker to read.

    The worker's view of autograd's sources goes with it: they may change between processes.
    """
    print(json.dumps({**result, "autograd": autograd_state()}, default=float))


def check_same_autograd(result: dict[str, Any]) -> None:
    """Warn when a worker ran against different autograd sources than this process."""
    theirs, ours = str(result.get("autograd")), environment()["autograd"]
    if theirs.split("+")[-1] != ours.split("+")[-1]:  # the sources, not the commit, matter
        info(f"WARNING: the worker saw autograd {theirs}, this run started with {ours}")
