"""Entry point: ``python -m bench [--quick] [NAME...]``."""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import time
import traceback

import numpy as np

from . import _timing

ROWS = {
    "scalar_mlp": "scalar_mlp",
    "chain": "chain",
    "circle": "circle",
    "relu_net": "relu_net",
    "small_mlp": "small_mlp",
    "mnist": "mnist",
    "scalar_steps": "scalar_steps",
    "memory_flat": "memory",
    "player": "player",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"rows to run: {', '.join(ROWS)}")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and iterations")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    _timing.QUICK[0] = args.quick
    names = args.names or list(ROWS)

    print(
        f"backproplab bench  {_timing.RUN_ID}  Python {platform.python_version()}, "
        f"NumPy {np.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"autograd {_timing.environment()['autograd']}, "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
        f"{'  (--quick)' if args.quick else ''}"
    )
    t0 = time.perf_counter()
    for name in names:
        try:
            module = importlib.import_module(f"bench.{ROWS[name]}")
            module.run(args.quick)
        except Exception as e:  # one broken row must not hide the others' results
            traceback.print_exc()
            _timing.emit(
                _timing.Row(
                    name, "error", "", ratio_text=f"{type(e).__name__}: {e}"[:60], status="ERROR"
                )
            )
    elapsed = time.perf_counter() - t0
    _timing.summary()
    failed = [r for r in _timing.rows() if r.status in ("FAIL", "ERROR")]
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"\n{len(_timing.rows())} rows, {len(failed)} FAIL or ERROR; took {elapsed:.0f} s; "
        f"load average {load}; appended to {_timing.RESULTS}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
