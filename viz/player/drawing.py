"""The page's picture: one SVG element a node, one path an edge, written here; placed either by
the page's script (dagre, the layered layout) or, for a big page, by ``layout.columns``."""

from __future__ import annotations

import html
from typing import Any

from .layout import Columns
from .trace import num

SVGNS = "http://www.w3.org/2000/svg"


def svg(trace: dict[str, Any], placed: Columns | None) -> str:
    """The SVG of the graph. Without ``placed`` the boxes and paths wait for the page's layout."""
    parts = [f'<svg id="graph" xmlns="{SVGNS}"><g id="viewport">']
    for k, g in enumerate(trace["groups"]):
        parts.append(
            f'<g class="group" data-group="{k}"><rect rx="8"/>'
            f'<text class="g-title">{html.escape(g["name"])}</text></g>'
        )
    for e in trace["edges"]:
        # The page draws each edge label once its edge has carried a gradient: a scalar MLP's page
        # has 15,000 edges, and every element costs load time.
        parts.append(f'<path class="edge" data-edge="{e["id"]}" data-state="waiting"/>')
    parts.append('<g id="edge-labels"></g>')
    for node in trace["nodes"]:
        parts.append(_node(node))
    parts.append("</g></svg>")
    text = "".join(parts)
    return text if placed is None else _place(text, trace, placed)


def _node(node: dict[str, Any]) -> str:
    """A node's box: its name, its value, its gradient (hidden until its step) and, where the
    learner gave one, their gradient with a mark."""
    esc = html.escape
    head = node["shown"] or ""
    if node["op"] and node["label"] and " · " not in head:
        head = f"{head} = {node['op']}"  # a labelled result says which op made it
    lines = [f'<text class="t-head">{esc(head)}</text>']
    if "shape" in node:
        shape = "×".join(map(str, node["shape"])) or "scalar"
        lines.append(f'<text class="t-data">{shape} {esc(node["dtype"])}</text>')
        value = brief_json(node["value"], node["summary"]["value"], 34)
        lines.append(f'<text class="t-data">data {esc(value)}</text>')
        grad = brief_json(node["grad"], node["summary"]["grad"], 34)
    else:
        lines.append(f'<text class="t-data">data {num(node["value"])}</text>')
        grad = num(node["grad"]) if node["grad"] is not None else ""
    if node["grad"] is not None or (node.get("summary") or {}).get("grad"):
        lines.append(
            f'<text class="t-grad">grad {esc(grad)}</text>'
            '<text class="t-wait">grad ?</text>'
            '<text class="t-part"></text>'
        )
    if "verdict" in node:
        mark = "✓" if node["verdict"] == "right" else "✗"
        lines.append(
            f'<text class="t-manual">yours {esc(brief_json(node.get("manual"), None, 14))} '
            f"{mark}</text>"
        )
    verdict = f" verdict-{node['verdict']}" if "verdict" in node else ""
    return (
        f'<g class="node kind-{node["kind"]}{verdict}" data-node="{node["id"]}" '
        f'data-state="waiting"><rect rx="6"/>' + "".join(lines) + "</g>"
    )


def _place(text: str, trace: dict[str, Any], at: Columns) -> str:
    """Write the columns layout's positions into the picture, as attributes the script reads."""
    boxes = ";".join(
        f"{at.x[i]:.1f},{at.y[i]:.1f},{at.w[i]:.0f},{at.h[i]:.0f}"
        for i in range(len(trace["nodes"]))
    )
    return text.replace(
        '<svg id="graph" ',
        f'<svg id="graph" data-boxes="{boxes}" data-size="{at.width:.0f},{at.height:.0f}" ',
        1,
    )


def brief_json(value: Any, summary: dict[str, Any] | None, room: int = 1_000) -> str:
    """A value as a box shows it: whole when it fits in ``room`` characters, else summarised."""
    if value is not None:
        text = _brief_list(value)
        if len(text) <= room or not summary:
            return text if len(text) <= room else text[: room - 1] + "…"
    if summary:
        text = f"norm {num(summary['norm'])} in [{num(summary['min'])}, {num(summary['max'])}]"
        return text if len(text) <= room else f"norm {num(summary['norm'])}"  # the panel has all
    return "—"


def _brief_list(x: Any) -> str:
    if isinstance(x, list):
        return "[" + ", ".join(_brief_list(y) for y in x) + "]"
    return num(x) if not isinstance(x, str) else x
