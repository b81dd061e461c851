"""Make the pictures of the player in docs/, with headless chromium, at 1280x720 (a projector).

    .venv/bin/python docs/player_screenshot.py [FOLDER]

It plays micrograd's neuron and photographs the page before the pass (player-step0.png), four
rules into it (player-step4.png) and at its end (player-end.png); then, for the pages that show
the learner's mistake, the same neuron with a wrong x1 (the local derivative alone), at the step
where x1's gradient is whole (player.png).
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

VALUES = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}


def neuron() -> Value:
    """micrograd's neuron, o = tanh(x1*w1 + x2*w2 + b)."""
    v = {k: Value(x, label=k) for k, x in VALUES.items()}
    o = (v["x1"] * v["w1"] + v["x2"] * v["w2"] + v["b"]).tanh()
    o.label = "o"
    return o


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs"
    plain = play(neuron())
    last = len(plain.trace["steps"])
    shots = [(plain, 0, "player-step0.png"), (plain, 4, "player-step4.png")]
    shots.append((plain, last, "player-end.png"))
    wrong = play(neuron(), manual={"w1": 1.0, "x1": -3.0})
    x1 = wrong.trace["first_wrong"]
    shots.append((wrong, wrong.trace["nodes"][x1]["complete_at"], "player.png"))
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = launch(p)
        for k, (page, steps, name) in enumerate(shots):
            path = page.save(Path(tmp) / f"neuron{k}.html")
            view = browser.new_page(viewport={"width": 1280, "height": 720}, device_scale_factor=1)
            view.goto(path.as_uri())
            view.wait_for_selector("body[data-ready=true]")
            for _ in range(steps):
                view.keyboard.press("ArrowRight")
            view.screenshot(path=str(out / name))
            view.close()
            print(f"wrote {out / name}")
        browser.close()


if __name__ == "__main__":
    main()
