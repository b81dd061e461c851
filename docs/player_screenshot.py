"""Make docs/player.png, the README's picture of the player, with headless chromium.

    .venv/bin/python docs/player_screenshot.py [OUT.png]

It plays micrograd's neuron with a learner's gradients, one of them wrong (x1's, the local
derivative alone), steps to the tanh's input, and photographs the page.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for bench.chromium, the one launcher of Debian's chromium

from backproplab.autograd import Value  # noqa: E402
from backproplab.viz import play  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from bench.chromium import launch  # noqa: E402

STEPS = 8


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "player.png"
    values = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}
    v = {k: Value(x, label=k) for k, x in values.items()}
    n = v["x1"] * v["w1"] + v["x2"] * v["w2"] + v["b"]
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    page = play(o, manual={"n": 0.5, "w1": 1.0, "x1": -3.0})
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        path = page.save(Path(tmp) / "neuron.html")
        browser = launch(p)
        view = browser.new_page(viewport={"width": 1400, "height": 520}, device_scale_factor=1)
        view.goto(path.as_uri())
        view.wait_for_selector("body[data-ready=true]")
        for _ in range(STEPS):
            view.keyboard.press("ArrowRight")
        view.screenshot(path=str(out))
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
