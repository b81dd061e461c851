"""player: a page of a 2,000-Value graph, built by ``viz.play`` and opened in headless chromium.

The issue's goal is that such a page opens in under 5 s: the time from the graph to a page a
reader can step through, that is ``play(loss).save(path)`` in Python plus the browser's load
of the file until the page's script has run (``body[data-ready]``), the browser already running.
The peer, in the same run, is the picture the project drew before: ``draw_graph`` of the same
graph rendered to SVG by Graphviz's ``dot``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from backproplab.autograd import Value, sum_values
from backproplab.nn.scalar import MLP

from ._timing import Row, Timing, emit, fmt_time, header, info, runs_for, side, skip, verdict

NAME = "player"
GOAL_SECONDS = 5.0
DOT_TIMEOUT = 600.0


def graph(values: int = 2_000) -> tuple[Value, int]:
    """A scalar MLP 3-32-32-1 on as many samples as make ``values`` Values; the summed loss
    and its count of Values. A neuron is one ``dot`` node, so most of the page is edges
    (about five an input Value)."""
    from backproplab.autograd.naming import walk as _walk

    model = MLP(3, [32, 32, 1])
    outs: list[Value] = []
    count = 0
    while count < values:
        i = len(outs)
        y = model([0.1 * i, -0.2 * i, 0.3])
        outs.append(y[0] if isinstance(y, list) else y)
        loss = sum_values(outs)
        count = len(_walk(loss))
    return loss, count


def run(quick: bool) -> None:
    from backproplab.viz.player import play

    loss, count = graph()
    workload = f"scalar MLP 3-32-32-1, samples summed: {count:,} Values; play + save + open"
    header(NAME, workload)
    try:
        from playwright.sync_api import sync_playwright

        from .chromium import launch
    except ImportError:
        skip(NAME, "2,000-node page", workload, "playwright")
        return
    runs = runs_for(quick, full=5, fast=2)
    folder = Path(tempfile.mkdtemp(prefix="bench-player-"))
    build: list[float] = []
    opened: list[float] = []
    try:
        with sync_playwright() as p:
            browser = launch(p)
            for i in range(runs + 1):
                t0 = time.perf_counter()
                path = play(loss).save(folder / f"page{i}.html")
                t1 = time.perf_counter()
                page: Any = browser.new_page()
                t2 = time.perf_counter()
                page.goto(path.resolve().as_uri())
                page.wait_for_selector("body[data-ready=true]")
                t3 = time.perf_counter()
                page.close()
                if i:  # the first is the warm-up
                    build.append(t1 - t0)
                    opened.append(t3 - t2)
            browser.close()
        size = path.stat().st_size
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    total = Timing(tuple(b + o for b, o in zip(build, opened, strict=True)))
    side("play + save (Python)", Timing(tuple(build)))
    side("open in chromium until ready", Timing(tuple(opened)))
    side("total", total, f"page {size / 1e6:.1f} MB")

    peer: Timing | None = None
    if shutil.which("dot") is not None:
        from backproplab.viz.graph import draw_graph

        # One run, bounded: dot lays out a graph this size in minutes, not seconds.
        t0 = time.perf_counter()
        source = draw_graph(loss, max_nodes=100_000).source
        try:
            subprocess.run(
                ["dot", "-Tsvg", "-o", os.devnull],
                input=source.encode(),
                check=True,
                timeout=DOT_TIMEOUT,
            )
            peer = Timing((time.perf_counter() - t0,))
            side("peer: draw_graph + dot -Tsvg", peer)
        except subprocess.TimeoutExpired:
            info(f"peer: draw_graph + dot -Tsvg did not finish in {DOT_TIMEOUT:g} s")
    else:
        info("peer skipped: Graphviz's dot is not installed")
    ok = total.median < GOAL_SECONDS
    emit(
        Row(
            NAME,
            "2,000-node page opens",
            workload,
            ours_s=total.median,
            peer="draw_graph + dot" if peer else "",
            peer_s=peer.median if peer else None,
            ratio=(total.median / peer.median) if peer else None,
            ratio_text=f"{fmt_time(total.median)}"
            + (f" ({total.median / peer.median:.2f}x dot's time)" if peer else ""),
            goal=f"< {GOAL_SECONDS:g} s",
            status=verdict(ok),
            extra={"build_s": Timing(tuple(build)).median, "open_s": Timing(tuple(opened)).median},
        )
    )
