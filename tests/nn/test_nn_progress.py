"""The training progress bar: a text bar in a terminal, the widget in a Jupyter kernel with
ipywidgets, the text bar and no TqdmWarning in a kernel without it. Each case runs in a fresh
interpreter, since tqdm.auto decides once, when first imported."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

pytest.importorskip("tqdm")

# A Jupyter kernel as tqdm.auto recognises one: ipykernel's shell module is loaded.
KERNEL = (
    "import sys, types\n"
    "sys.modules['ipykernel.zmqshell'] = types.ModuleType('ipykernel.zmqshell')\n"
    "if {fake_ipython}:\n"
    "    fake = types.ModuleType('IPython'); fake.get_ipython = lambda: None\n"
    "    sys.modules['IPython'] = fake\n"
    "else:\n"
    "    import IPython\n"
)
MAKE_BAR = (
    "import warnings\n"
    "from backproplab.nn.progress import progress_bar\n"
    "with warnings.catch_warnings(record=True) as caught:\n"
    # every warning recorded, none turned into an error: tqdm.auto catches errors itself
    "    warnings.simplefilter('always')\n"
    "    bar = progress_bar(3, 'training', 'epoch')\n"
    "shown = [str(w.message) for w in caught if 'experimental' not in str(w.message)]\n"
    "print('WARNINGS', shown)\n"
    "widget = any(c.__module__ == 'tqdm.notebook' for c in type(bar).__mro__)\n"
    "print('BAR', 'widget' if widget else 'text')\n"
)


def run(code: str) -> str:
    """What bar the code made ("BAR text", "BAR widget", "BAR None"); it made no warning."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "WARNINGS []" in lines, out.stdout
    return next(line for line in lines if line.startswith("BAR"))


def test_a_terminal_gets_the_text_bar() -> None:
    assert run(MAKE_BAR) == "BAR text"


def test_a_kernel_without_ipywidgets_gets_the_text_bar_and_no_warning() -> None:
    no_widgets = "sys.modules['ipywidgets'] = None\n"  # as if not installed
    code = KERNEL.format(fake_ipython=True) + no_widgets + MAKE_BAR
    assert run(code) == "BAR text"


def test_a_kernel_with_ipywidgets_gets_the_widget() -> None:
    for name in ("ipywidgets", "IPython"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (the progress and notebook extras)")
    code = KERNEL.format(fake_ipython=False) + MAKE_BAR
    assert run(code) == "BAR widget"


def test_without_tqdm_there_is_no_bar() -> None:
    code = "import sys\nsys.modules['tqdm'] = None\n" + MAKE_BAR.replace(
        MAKE_BAR[MAKE_BAR.index("widget = ") :], "print('BAR', bar)\n"
    )
    assert run(code) == "BAR None"
