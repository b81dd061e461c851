"""The wheel installs beside HIPS autograd: one top-level name, `backproplab`, and uninstalling
either package leaves the other working (issue 11: ours used to overwrite HIPS's
`autograd/__init__.py`, and `pip uninstall backproplab` deleted it).

This builds the wheel from the working tree and installs it into a fresh venv next to
`autograd` from PyPI, so it needs the package index (pip's cache makes later runs quick) and
takes some seconds: marked slow, and part of `make test` all the same.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# What the build reads: pyproject's package-dir mapping, the readme and the licence.
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "backproplab", "autograd", "nn", "viz"]

USE_HIPS = """
import os, numpy as np
import autograd, autograd.numpy as anp
from autograd import elementwise_grad, grad
x = np.linspace(-2.0, 2.0, 9)
assert np.allclose(elementwise_grad(anp.tanh)(x), 1.0 - np.tanh(x) ** 2)
assert abs(grad(lambda t: t ** 3)(2.0) - 12.0) < 1e-12
assert os.sep + "site-packages" + os.sep + "autograd" in autograd.__file__, autograd.__file__
print("hips ok")
"""

USE_OURS = """
import os, sys, tempfile
import numpy as np
from backproplab import Tensor, Value, __version__, grad
import backproplab.nn as nn
x = Value(2.0)
y = x * x * x
y.backward()
assert x.grad == 12.0, x.grad
assert grad(lambda t: t ** 3)(2.0) == 12.0
model = nn.MLP(2, 1, [3], "tanh")
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "m.safetensors")
    model.save(path)
    nn.MLP(2, 1, [3], "tanh", seed=5).load(path)
assert "torch" not in sys.modules
from backproplab.viz import play
assert "dagre" in play(Value(3.0, label="a") * 2.0).html  # the page's files were installed
print("backproplab", __version__, "ok")
"""


def run_in(*command: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    # Run from a temporary folder: from the repository, `python -c` would find its autograd/
    # folder on sys.path before anything installed.
    done = subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=cwd,
    )
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} failed:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our wheel, built from a copy of the sources (a build in place would leave build/)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    run_in(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "-w",
        work / "dist",
        source,
        cwd=work,
    )
    (built,) = (work / "dist").glob("backproplab-*.whl")
    return built


def test_the_wheel_holds_backproplab_alone(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        tops = {name.split("/")[0] for name in names}
        (info,) = [t for t in tops if t.endswith(".dist-info")]
        metadata = z.read(f"{info}/METADATA").decode()
    assert tops == {"backproplab", info}
    assert {"backproplab/autograd/engine.py", "backproplab/nn/module.py"} <= set(names)
    # the player's page is built from files beside its modules, dagre's license with them
    page = ["player.html", "player.css", "player.js", "dagre.min.js", "dagre-LICENSE.txt"]
    assert {f"backproplab/viz/player/{name}" for name in page} <= set(names)
    assert f"{info}/licenses/LICENSE" in names
    assert "License-Expression: MIT" in metadata
    assert "Requires-Dist: safetensors" in metadata
    assert 'Requires-Dist: torch==2.13.0; extra == "torch"' in metadata


def test_installs_beside_hips_autograd_and_uninstalls_cleanly(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"

    def run(*command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_in(*command, cwd=tmp_path, check=check)

    # No pip inside: the test's own pip installs into it (pip --python), which saves seconds.
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    script = venv / "bin" / "backproplab"

    def pip(*args: str | Path) -> None:
        run(sys.executable, "-m", "pip", "--python", python, *args, "-q")

    # HIPS first, then ours: the order in which ours used to overwrite HIPS's files.
    pip("install", "autograd")
    pip("install", wheel)
    assert run(python, "-c", USE_HIPS).stdout == "hips ok\n"
    assert run(python, "-c", USE_OURS).stdout.endswith(" ok\n")
    helped = run(script, "--help")
    assert helped.stdout.startswith("usage: backproplab") and helped.stderr == ""
    version = run(
        python, "-c", "from importlib.metadata import version; print(version('backproplab'))"
    )
    assert run(script, "--version").stdout == f"backproplab {version.stdout}"

    # Uninstalling ours leaves HIPS whole.
    pip("uninstall", "-y", "backproplab")
    assert run(python, "-c", USE_HIPS).stdout == "hips ok\n"
    gone = run(python, "-c", "import backproplab", check=False)
    assert gone.returncode != 0 and "No module named 'backproplab'" in gone.stderr
    assert not script.exists()

    # And the other way round: uninstalling HIPS leaves ours whole.
    pip("install", "--no-deps", wheel)
    pip("uninstall", "-y", "autograd")
    assert run(python, "-c", USE_OURS).stdout.endswith(" ok\n")
    assert run(script, "--help").returncode == 0
    hips_gone = run(python, "-c", "import autograd", check=False)
    assert "No module named 'autograd'" in hips_gone.stderr
