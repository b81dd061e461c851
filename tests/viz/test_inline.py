"""In Jupyter every picture shows itself: each ``*_figure`` function of viz.plots returns a Figure
with a PNG display of its own, with no %matplotlib magic and without pyplot."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import matplotlib.image
from backproplab.autograd import compare_gradients
from backproplab.nn import datasets
from backproplab.viz import plots
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure

PNG = b"\x89PNG\r\n\x1a\n"
X, Y = datasets.two_moons(n=40, seed=0)


def _report() -> Any:
    return compare_gradients(lambda x: (x * x).sum(), lambda x: 2 * x, np.array([1.0, -2.0]))


SAMPLES: dict[str, tuple[tuple, dict]] = {
    "loss_curve_figure": (([1.0, 0.5, 0.25],), {}),
    "function_2d_figure": ((lambda p: p[:, 0] > 0.5, X, Y), {"resolution": 20}),
    "values_2d_figure": (
        (np.linspace(-1, 2, 5), np.linspace(-1, 1, 4), np.zeros((4, 5)), X, Y),
        {},
    ),
    "gradient_check_figure": ((_report(),), {}),
}
FIGURE_FUNCTIONS = sorted(name for name in plots.__all__ if name.endswith("_figure"))


def test_every_figure_function_has_a_sample_here() -> None:
    assert sorted(SAMPLES) == FIGURE_FUNCTIONS


@pytest.mark.parametrize("name", FIGURE_FUNCTIONS)
def test_each_figure_displays_itself_as_a_png(name: str) -> None:
    args, kwargs = SAMPLES[name]
    fig = getattr(plots, name)(*args, **kwargs)
    assert isinstance(fig, Figure)
    png = fig._repr_png_()
    assert png[:8] == PNG
    pixels = matplotlib.image.imread(io.BytesIO(png))
    assert float(np.var(pixels[..., :3])) > 1e-3  # something is drawn


@pytest.mark.parametrize("name", FIGURE_FUNCTIONS)
def test_ipython_shows_each_figure_as_an_image(name: str) -> None:
    formatters = pytest.importorskip("IPython.core.formatters")
    args, kwargs = SAMPLES[name]
    data, _ = formatters.DisplayFormatter().format(getattr(plots, name)(*args, **kwargs))
    assert data["image/png"][:8] == PNG


def test_figures_never_touch_pyplot() -> None:
    # In a fresh interpreter, so that no other test's import of pyplot counts.
    code = (
        "import sys, numpy as np\n"
        "from backproplab.viz import plots\n"
        "plots.loss_curve_figure([1.0, 0.5])._repr_png_()\n"
        "X = np.array([[0.0, 0.0], [1.0, 1.0]])\n"
        "plots.function_2d_figure(lambda p: p[:, 0] > 0.5, X, [0, 1], 5)._repr_png_()\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_decision_regions_figure_fills_the_plane_with_classes() -> None:
    fig = plots.function_2d_figure(lambda p: (p[:, 1] > 0.25).astype(int), X, Y, resolution=30)
    ax = fig.axes[0]
    meshes = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == 1
    assert set(np.unique(meshes[0].get_array())) == {0, 1}
    assert ax.get_legend() is not None and ax.get_title() == "the trained network's function"


def test_the_2d_figure_takes_a_list_of_values_as_micrograds_model_gives() -> None:
    from backproplab import Value

    fig = plots.function_2d_figure(lambda p: [Value(float(a)) for a in p[:, 0]], X, Y, 10)
    assert fig._repr_png_()[:8] == PNG
    with pytest.raises(ValueError, match="returned 3 values for 100 points"):
        plots.function_2d_figure(lambda p: [1, 2, 3], X, Y, 10)
