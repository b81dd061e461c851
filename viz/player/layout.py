"""Where the boxes go on a page too big for the layered layout.

Up to ``LAYERED_NODES`` nodes the page lays itself out in the browser with dagre (inlined in the
page, MIT, ``dagre-LICENSE.txt`` beside it): layers, crossing reduction, an edge label of its own
that no box or other label covers, and edges routed between the boxes. dagre takes time
quadratic in long edges and recurses along chains, so past that size (a scalar MLP of
thousands of Values) the page is laid out here instead, in plain columns (each node one column
right of its inputs, each column ordered by its neighbours), and the page says that its edges
may cross boxes there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LAYERED_NODES = 300
"""Pages with at most this many nodes get dagre's layered layout, drawn in the browser."""

_GAP_X = 90.0
_GAP_Y = 16.0
_MARGIN = 24.0


@dataclass
class Columns:
    """Boxes' top-left corners and sizes, and the whole picture's size."""

    x: list[float]
    y: list[float]
    w: list[float]
    h: list[float]
    width: float
    height: float


def box(node: dict[str, Any]) -> tuple[float, float]:
    """A box's size in the columns layout (text 12 px there)."""
    return (250.0, 76.0) if "shape" in node else (150.0, 58.0)


def columns(trace: dict[str, Any]) -> Columns:
    """Each node one column right of its deepest input, columns ordered by a few sweeps."""
    nodes = trace["nodes"]
    n = len(nodes)
    parents: list[list[int]] = [[] for _ in range(n)]
    children: list[list[int]] = [[] for _ in range(n)]
    for e in trace["edges"]:
        parents[e["target"]].append(e["source"])
        children[e["source"]].append(e["target"])
    layer = [0] * n
    for i in range(n):  # ids are in topological order, parents first
        if parents[i]:
            layer[i] = 1 + max(layer[p] for p in parents[i])
    for i in range(n):  # a leaf sits in the column just before its first use
        if not parents[i] and children[i]:
            layer[i] = min(layer[c] for c in children[i]) - 1
    sizes = [box(node) for node in nodes]
    by_column: dict[int, list[int]] = {}
    for i in range(n):
        by_column.setdefault(layer[i], []).append(i)
    y = [0.0] * n
    for members in by_column.values():
        top = 0.0
        for i in members:
            y[i] = top
            top += sizes[i][1] + _GAP_Y
    depth = max(by_column) + 1 if by_column else 0
    for _ in range(4):
        for c in range(1, depth):
            _place(by_column.get(c, []), parents, y, sizes)
        for c in range(depth - 2, -1, -1):
            _place(by_column.get(c, []), children, y, sizes)
    return _positions(layer, by_column, y, sizes, depth)


def _place(
    members: list[int], toward: list[list[int]], y: list[float], sizes: list[tuple[float, float]]
) -> None:
    """Move a column's boxes toward their neighbours' mean height, keeping them apart."""
    if not members:
        return
    want = {
        i: (
            sum(y[p] + sizes[p][1] / 2 for p in toward[i]) / len(toward[i]) - sizes[i][1] / 2
            if toward[i]
            else y[i]
        )
        for i in members
    }
    ordered = sorted(members, key=lambda i: (want[i], i))
    pos: list[float] = []
    for k, i in enumerate(ordered):
        lo = pos[-1] + sizes[ordered[k - 1]][1] + _GAP_Y if k else -1e300
        pos.append(max(want[i], lo))
    shift = sum(want[i] for i in ordered) / len(ordered) - sum(pos) / len(pos)
    for i, p in zip(ordered, pos, strict=True):
        y[i] = p + shift


def _positions(
    layer: list[int],
    by_column: dict[int, list[int]],
    y: list[float],
    sizes: list[tuple[float, float]],
    depth: int,
) -> Columns:
    n = len(layer)
    col_w = [max((sizes[i][0] for i in by_column.get(c, [])), default=0.0) for c in range(depth)]
    top = min(y) if y else 0.0
    col_x = [_MARGIN]
    for c in range(1, depth):
        col_x.append(col_x[-1] + col_w[c - 1] + _GAP_X)
    xs = [col_x[layer[i]] + (col_w[layer[i]] - sizes[i][0]) / 2 for i in range(n)]
    ys = [y[i] - top + _MARGIN for i in range(n)]
    width = (col_x[-1] + col_w[-1] + _MARGIN) if depth else 2 * _MARGIN
    height = max((ys[i] + sizes[i][1] for i in range(n)), default=0.0) + _MARGIN
    return Columns(xs, ys, [s[0] for s in sizes], [s[1] for s in sizes], width, height)
