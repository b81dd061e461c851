"""The player's page in a real headless Chromium (Debian's, driven by Playwright): loaded from
disk, stepped, stepped back, reset, played; its states and numbers against the engine's; no
request leaving the page; a screenshot that is not blank.

Without chromium these tests fail (they do not skip): ``make setup`` installs it.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backproplab.autograd import Tensor, Value
from backproplab.nn.losses import mse
from backproplab.viz.player import play

from backproplab import nn
from bench.chromium import HINT, executable, launch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright's Python package is missing: run 'make venv' (the dev extra)")
    if executable() is None:
        pytest.fail(f"the player's browser tests need Debian's chromium: {HINT}")
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


class Opened:
    """A page loaded from disk, with every request it made and every script error it hit."""

    def __init__(self, browser: Any, path: Path, width: int = 1300, height: int = 700) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.requests: list[str] = []
        self.errors: list[str] = []
        # Any request but the page itself is recorded and refused, so none can leave the page.
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready=true]")

    def _route(self, route: Any) -> None:
        if route.request.url == self.url:
            route.continue_()
        else:
            route.abort()

    def states(self) -> dict[int, str]:
        pairs = self.page.eval_on_selector_all(
            "[data-node]", "els => els.map(e => [e.dataset.node, e.dataset.state])"
        )
        return {int(i): s for i, s in pairs}

    def shown_grad(self, node: int) -> str | None:
        """The gradient a node shows, or None while it shows none."""
        grad = self.page.locator(f'[data-node="{node}"] .t-grad')
        return grad.text_content() if grad.is_visible() else None

    def counter(self) -> str:
        return str(self.page.text_content("#counter"))

    def close(self) -> None:
        self.context.close()


def _neuron() -> tuple[Value, dict[str, Value]]:
    leaves = {
        k: Value(v, label=k)
        for k, v in {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}.items()
    }
    n = leaves["x1"] * leaves["w1"] + leaves["x2"] * leaves["w2"] + leaves["b"]
    o = n.tanh()
    o.label = "o"
    return o, leaves


def _nodes_in_walk_order(root: Value) -> list[Value]:
    order: list[Value] = []
    seen: set[int] = set()

    def visit(n: Any) -> None:
        if id(n) not in seen:
            seen.add(id(n))
            for p in n.parents:
                visit(p)
            order.append(n)

    visit(root)
    return order


def _number(text: str) -> float:
    return float(text.replace("grad", "").strip())


def test_step_back_reset_and_the_numbers_shown(browser: Any, tmp_path: Path) -> None:
    o, leaves = _neuron()
    page = play(o)
    path = page.save(tmp_path / "neuron.html")
    engine = _nodes_in_walk_order(o)  # the trace's ids are this order
    steps = page.trace["steps"]
    nodes = page.trace["nodes"]
    assert len(steps) == 5  # tanh, two adds, two muls: a leaf takes no step of its own
    view = Opened(browser, path)
    try:
        assert set(view.states().values()) == {"waiting"}
        assert view.counter() == f"step 0 / {len(steps)}"
        assert all(view.shown_grad(i) is None for i in range(len(nodes)))

        for k in range(1, len(steps) + 1):
            if k % 2:
                view.page.click("#step")
            else:
                view.page.keyboard.press("ArrowRight")
            states = view.states()
            assert [i for i, s in states.items() if s == "active"] == [steps[k - 1]]
            assert {i for i in steps if states[i] == "done"} == set(steps[: k - 1])
            for node in nodes:  # a leaf's gradient shows once the rules feeding it have run
                whole = node["complete_at"] is not None and node["complete_at"] <= k
                shown = view.shown_grad(node["id"])
                assert (shown is not None) == whole, (k, node["name"])
                if shown is not None:
                    assert _number(shown) == pytest.approx(
                        engine[node["id"]].grad, rel=5e-4, abs=1e-12
                    )
            assert view.counter() == f"step {k} / {len(steps)}"
        # the side panel, written by the page's own script, shows the rule in the nodes' names
        view.page.click(f'[data-node="{steps[0]}"]')  # click: jump to the root's step
        assert [i for i, s in view.states().items() if s == "active"] == [steps[0]]
        detail = str(view.page.text_content("#detail"))
        assert "Step 1 of 5: o (Tanh)" in detail
        assert "o = tanh(x1*w1 + x2*w2 + b); d(x1*w1 + x2*w2 + b) = g · (1 - o ** 2)" in detail
        assert "d(x1*w1 + x2*w2 + b) = g · (1 - o ** 2) = 1 · (1 - 0.7071 ** 2) = 0.5" in detail
        view.page.keyboard.press("ArrowRight")
        view.page.keyboard.press("ArrowRight")
        view.page.keyboard.press("ArrowRight")  # x1*w1 + x2*w2: its rule feeds both products
        view.page.keyboard.press("ArrowRight")
        view.page.keyboard.press("ArrowRight")
        detail = str(view.page.text_content("#detail"))
        mul = str(nodes[steps[4]]["name"])
        assert f"Step 5 of 5: {mul}" in detail
        w = {"x1*w1": ("w1", "x1", "2", "1"), "x2*w2": ("w2", "x2", "0", "0")}[mul]
        assert f"d({w[0]}) = g · {w[1]} = 0.5 · {w[2]} = {w[3]}" in detail
        assert "db" not in detail and "da" not in detail  # no letters of the rule's own

        view.page.click("#back")
        view.page.click("#reset")
        assert set(view.states().values()) == {"waiting"}
        assert view.counter() == f"step 0 / {len(steps)}"
        assert view.shown_grad(steps[0]) is None

        # space plays to the end at the speed set
        view.page.eval_on_selector(
            "#speed", "e => { e.value = '10'; e.dispatchEvent(new Event('input')); }"
        )
        view.page.keyboard.press(" ")
        from playwright.sync_api import expect

        # expect polls from outside: the page's policy forbids the eval wait_for_function uses
        expect(view.page.locator("#counter")).to_have_text(f"step {len(steps)} / {len(steps)}")
        assert view.page.text_content("#play") == "Play"  # paused itself at the end
        for i, s in view.states().items():
            assert s == ("active" if i == steps[-1] else "arriving" if s == "arriving" else "done")
            assert _number(view.shown_grad(i) or "nan") == pytest.approx(
                engine[i].grad, rel=5e-4, abs=1e-12
            )
        assert leaves["x1"].grad == pytest.approx(-1.5)
        assert view.errors == []
        assert view.requests == [view.url]  # the page itself, and nothing else
    finally:
        view.close()


def test_fan_out_is_shown_as_the_sum_being_built(browser: Any, tmp_path: Path) -> None:
    a, b = Value(0.7, label="a"), Value(-1.3, label="b")
    root = a.tanh() + a * b + a.exp()
    page = play(root)
    node = next(n for n in page.trace["nodes"] if n["label"] == "a")
    view = Opened(browser, page.save(tmp_path / "fan.html"))
    try:
        seen = []
        for _ in range(node["complete_at"]):
            view.page.keyboard.press("ArrowRight")
            text = str(view.page.text_content("#detail"))
            if "a so far:" in text:
                seen.append(text)
                assert view.page.locator(f'[data-node="{node["id"]}"] .t-part').is_visible()
        assert seen  # the sum was seen while it was being built
        sums = view.page.eval_on_selector_all("#detail .sum", "els => els.map(e => e.textContent)")
        found = [
            re.match(r"d\(a\) = (.*) = (\S+) \(from .*\): complete, all 3 uses", t) for t in sums
        ]
        (m,) = [x for x in found if x is not None]
        terms = [float(t.strip("()")) for t in m.group(1).split(" + ")]
        expected = sorted([1 - math.tanh(0.7) ** 2, -1.3, math.exp(0.7)])
        assert sorted(terms) == pytest.approx(expected, rel=5e-4)
        assert float(m.group(2)) == pytest.approx(a.grad, rel=5e-4)
        assert view.errors == [] and view.requests == [view.url]
    finally:
        view.close()


def test_the_learners_first_mistake_is_marked(browser: Any, tmp_path: Path) -> None:
    o, _ = _neuron()
    page = play(o, manual={"w1": 1.0, "x1": -3.0})
    view = Opened(browser, page.save(tmp_path / "manual.html"))
    try:
        summary = str(view.page.text_content("#summary"))
        assert summary.startswith("First wrong gradient in backward order: x1 (step 5)")
        assert "1e-09 + 0.001·|engine|" in str(view.page.text_content("#tolerance"))
        first = page.trace["first_wrong"]
        view.page.click(f'[data-node="{first}"]')
        node = view.page.locator(f'[data-node="{first}"]')
        assert "verdict-wrong" in str(node.get_attribute("class"))
        assert "yours -3 ✗" in str(node.text_content())
        assert "never multiplied by the upstream gradient" in str(view.page.text_content("#detail"))
    finally:
        view.close()


def _mlp_loss() -> tuple[Any, Any]:
    model = nn.MLP(2, 1, [4], "tanh", seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2))
    return mse(model.forward(Tensor(x)), np.ones((5, 1))), model


def test_a_tensor_mlp_page_and_a_screenshot_that_is_not_blank(browser: Any, tmp_path: Path) -> None:
    import matplotlib.image

    loss, model = _mlp_loss()
    page = play(loss, model=model)
    view = Opened(browser, page.save(tmp_path / "mlp.html"))
    try:
        groups = view.page.eval_on_selector_all(".group text", "els => els.map(e => e.textContent)")
        assert groups == ["layers.0", "layers.1"]
        names = [n["name"] for n in page.trace["nodes"]]
        assert "layers.0 · Dense" in names and not any("#" in n for n in names)
        steps = page.trace["steps"]
        for _ in steps:
            view.page.keyboard.press("ArrowRight")
        detail = str(view.page.text_content("#detail"))
        node = page.trace["nodes"][steps[-1]]
        assert f"shape {'×'.join(map(str, node['shape']))} float64" in detail
        # a Tensor edge's label: the contribution's shape and a summary
        labels = view.page.eval_on_selector_all(".e-label", "els => els.map(e => e.textContent)")
        shape = "×".join(map(str, model.layers[0].weight.data.shape))
        assert any(t.startswith(f"shape {shape}mean ") and "max|·|" in t for t in labels), labels
        png = view.page.screenshot()
        image = matplotlib.image.imread(io.BytesIO(png), format="png")
        pixels = image[..., :3].reshape(-1, 3)
        colours = np.unique((pixels * 255).round().astype(np.uint8), axis=0)
        assert len(colours) > 50  # text, boxes, edges: far from one flat colour
        background = np.all(pixels > 0.97, axis=1).mean()
        assert background < 0.97  # a blank white page would be all background
        assert view.errors == [] and view.requests == [view.url]
    finally:
        view.close()


def test_two_thousand_nodes_open_and_step(browser: Any, tmp_path: Path) -> None:
    x = Value(0.1, label="x")
    y = x
    for k in range(1999):  # a chain with a skip every tenth node: 2,000 Values
        y = y.tanh() if k % 10 else y.tanh() + x * 0.01
    page = play(y)
    assert len(page.trace["nodes"]) >= 2000
    view = Opened(browser, page.save(tmp_path / "big.html"))
    try:
        assert view.page.locator("[data-node]").count() == len(page.trace["nodes"])
        for _ in range(3):
            view.page.keyboard.press("ArrowRight")
        assert sum(s != "waiting" for s in view.states().values()) == 3
        assert view.errors == [] and view.requests == [view.url]
    finally:
        view.close()


def test_past_the_limit_the_page_says_so(browser: Any, tmp_path: Path) -> None:
    x = Value(0.1, label="x")
    y = x
    for _ in range(50):
        y = y.tanh()
    view = Opened(browser, play(y, max_nodes=20).save(tmp_path / "too_big.html"))
    try:
        text = str(view.page.text_content("#too-big"))
        assert "This graph has 51 nodes, more than the 20 this page draws" in text
        assert view.errors == []
    finally:
        view.close()


def test_space_pauses_what_the_play_button_started(browser: Any, tmp_path: Path) -> None:
    # The button keeps the focus after a click, and a focused button also acts on space: the
    # page must toggle once, not twice (pause and straight back to play).
    o, _ = _neuron()
    view = Opened(browser, play(o).save(tmp_path / "space.html"))
    try:
        view.page.click("#play")
        assert view.page.text_content("#play") == "Pause"
        view.page.keyboard.press(" ")
        assert view.page.text_content("#play") == "Play"
        shown = view.counter()
        view.page.wait_for_timeout(1200)  # the default speed would have taken two steps
        assert view.counter() == shown
    finally:
        view.close()


# -- what a learner sees, by geometry, at every step --------------------------------------------

_GEOMETRY = """() => {
  const r = (el) => {
    const b = el.getBoundingClientRect();
    return [b.left, b.top, b.right, b.bottom];
  };
  const nodes = [...document.querySelectorAll('[data-node]')].map(
    g => ({id: +g.dataset.node, box: r(g.querySelector('rect'))}));
  const labels = [...document.querySelectorAll('.e-label')]
    .filter(t => getComputedStyle(t).visibility !== 'hidden')
    .map(t => ({id: +t.dataset.label, box: r(t)}));
  const edges = [...document.querySelectorAll('[data-edge]')].map(p => {
    const n = p.getTotalLength(), m = p.getScreenCTM(), pts = [];
    for (let i = 0; i <= 80; i++) {
      const q = p.getPointAtLength(n * i / 80);
      pts.push([m.a * q.x + m.c * q.y + m.e, m.b * q.x + m.d * q.y + m.f]);
    }
    return {id: +p.dataset.edge, pts: pts};
  });
  const t = document.querySelector('.node .t-data');
  const font = parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a;
  return {nodes, labels, edges, canvas: r(document.getElementById('canvas')), font};
}"""


def _overlap(a: list[float], b: list[float], slack: float = 0.5) -> bool:
    return (
        a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack
    )


def _inside(p: list[float], box: list[float], slack: float = 1.0) -> bool:
    return box[0] + slack < p[0] < box[2] - slack and box[1] + slack < p[1] < box[3] - slack


def _check_geometry(page: Any, trace: dict[str, Any], at: str) -> dict[str, Any]:
    g = page.evaluate(_GEOMETRY)
    boxes = {n["id"]: n["box"] for n in g["nodes"]}
    ids = sorted(boxes)
    for i in ids:
        for j in ids:
            if i < j:
                assert not _overlap(boxes[i], boxes[j]), f"{at}: nodes {i} and {j} overlap"
    for k, lab in enumerate(g["labels"]):
        for i in ids:
            assert not _overlap(lab["box"], boxes[i]), (
                f"{at}: label of edge {lab['id']} on node {i}"
            )
        for other in g["labels"][k + 1 :]:
            assert not _overlap(lab["box"], other["box"]), (
                f"{at}: labels of edges {lab['id']} and {other['id']} overlap"
            )
    by_id = {e["id"]: e for e in trace["edges"]}
    for edge in g["edges"]:
        ends = {by_id[edge["id"]]["source"], by_id[edge["id"]]["target"]}
        for p in edge["pts"]:
            for i in ids:
                assert i in ends or not _inside(p, boxes[i]), (
                    f"{at}: edge {edge['id']} {sorted(ends)} passes behind node {i} at {p}"
                )
    return g


def _value_feeding_three() -> Value:
    a, b = Value(0.7, label="a"), Value(-1.3, label="b")
    return a.tanh() + a * b + a.exp()


def _a_times_b_plus_a() -> Value:
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    return a * b + a


def _a_plus_a() -> Value:
    a = Value(2.0, label="a")
    return a + a


@pytest.mark.parametrize(
    "make",
    [_a_times_b_plus_a, _a_plus_a, lambda: _neuron()[0], _value_feeding_three, _mlp_loss],
    ids=["a*b + a", "a + a", "neuron", "fan-out-3", "mlp"],
)
def test_drawn_right_at_every_step(browser: Any, tmp_path: Path, make: Any) -> None:
    made = make()
    root, model = made if isinstance(made, tuple) and not isinstance(made, Value) else (made, None)
    page = play(root, model=model)
    trace = page.trace
    view = Opened(browser, page.save(tmp_path / "geometry.html"), width=1280, height=720)
    try:
        steps = trace["steps"]
        for k in range(len(steps) + 1):
            if k:
                view.page.keyboard.press("ArrowRight")
            g = _check_geometry(view.page, trace, f"step {k}")
            if k:  # the node being stepped is on screen
                box = next(n["box"] for n in g["nodes"] if n["id"] == steps[k - 1])
                c = g["canvas"]
                assert c[0] <= box[0] and box[2] <= c[2] and c[1] <= box[1] and box[3] <= c[3]
            if make is not _mlp_loss:  # a scalar graph this small opens readable at 1280x720
                assert g["font"] >= 14, f"step {k}: node text {g['font']:.1f} px"
        # at the end every edge that carried a gradient shows its label, each in a place of its own
        carried = [e for e in trace["edges"] if e["contribution"] is not None or "summary" in e]
        assert len(g["labels"]) == len(carried)
        assert view.errors == [] and view.requests == [view.url]
    finally:
        view.close()


def test_a_graph_wider_than_the_window_opens_fitted_and_zooms(browser: Any, tmp_path: Path) -> None:
    x = Value(0.3, label="x")
    y = x
    for _ in range(30):  # a chain thirty rules long: far wider than 1280 px at full size
        y = y.tanh()
    view = Opened(browser, play(y).save(tmp_path / "wide.html"), width=1280, height=720)
    try:
        scale = float(view.page.get_attribute("#graph", "data-scale") or "nan")
        assert scale < 1
        g = view.page.evaluate(_GEOMETRY)
        c = g["canvas"]
        for n in g["nodes"]:  # all of it on screen
            assert c[0] - 1 <= n["box"][0] and n["box"][2] <= c[2] + 1
        view.page.click("#zoom-in")
        assert float(view.page.get_attribute("#graph", "data-scale") or "nan") > scale
        view.page.click("#fit")
        assert float(view.page.get_attribute("#graph", "data-scale") or "nan") == scale
        for _ in range(31):  # the view follows the step, readable, to the far left end
            view.page.keyboard.press("ArrowRight")
        _check_geometry(view.page, play(y).trace, "end")
    finally:
        view.close()


def test_a_narrow_notebook_cell_shows_the_whole_page(browser: Any, tmp_path: Path) -> None:
    # the width of a notebook's cell, where the page sits in an iframe of the cell's width
    view = Opened(browser, play(_neuron()[0]).save(tmp_path / "cell.html"), width=700, height=680)
    try:
        width = view.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 700
        g = _check_geometry(view.page, play(_neuron()[0]).trace, "cell")
        c = g["canvas"]
        assert c[2] - c[0] >= 690  # the picture keeps the cell's width; the panel goes under it
        for n in g["nodes"]:
            assert c[0] - 1 <= n["box"][0] and n["box"][2] <= c[2] + 1
    finally:
        view.close()
