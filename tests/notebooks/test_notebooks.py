"""The notebooks in notebooks/ run top to bottom in a fresh kernel, and what they show is right.

Each notebook is executed once per module with nbclient, in a kernel started from a kernelspec
made here in a temporary folder: it runs this interpreter (the project venv's python, where the
library is installed), so the run depends on no kernel registered on the machine. Then each
kind of output a notebook shows is opened and read: the SVG graph parses and names the nodes,
the player's page carries the graph, the figures are PNGs of a sensible size, the checkers'
reports are HTML tables, and every comparison of the makemore exercise agrees.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import struct
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ("lecture", "teacher")
KERNEL = "backproplab-tests"
SVG = "{http://www.w3.org/2000/svg}"

# The makemore exercise's intermediates, each compared once in exercise 1, and the two compared
# again by the one-step derivations of exercises 2 and 3.
MAKEMORE = [
    *("logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits"),
    *("logit_maxes", "logits", "h", "W2", "b2", "hpreact", "bngain", "bnbias", "bnraw"),
    *("bnvar_inv", "bnvar", "bndiff2", "bndiff", "bnmeani", "hprebn", "embcat", "W1", "b1"),
    *("emb", "C"),
    *("logits", "hprebn"),
]
# micrograd's neuron: d o / d node, as the lecture derives them
HAND = {"n": 0.5, "b": 0.5, "x1": -1.5, "w1": 1.0, "x2": 0.5, "w2": 0.0}
COMPARED = re.compile(
    r"^(?P<name>\S+)\s*\|\s*exact:\s*(?P<exact>True|False)\s*\|"
    r"\s*approximate:\s*(?P<approximate>True|False)\s*\|\s*maxdiff:\s*(?P<maxdiff>\S+)",
    re.MULTILINE,
)


def _kernel_manager(folder: Path) -> Any:
    """A kernel manager whose only kernelspec runs this interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = folder / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec_text = {"argv": argv, "display_name": "backproplab tests", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(spec_text), encoding="utf-8")
    return KernelManager(
        kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder)])
    )


def _execute(name: str, folder: Path) -> Any:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    # The notebook's own folder as the working directory, as Jupyter runs it.
    client = nbclient.NotebookClient(
        nb,
        km=_kernel_manager(folder),
        timeout=300,
        startup_timeout=180,  # a busy CI machine can be slow to start a kernel
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    return nb


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return {name: _execute(name, tmp_path_factory.mktemp(f"kernel-{name}")) for name in NAMES}


def _outputs(nb: Any) -> list[tuple[int, Any]]:
    return [
        (i, out)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.outputs
    ]


def _shown(nb: Any, mime: str) -> list[str]:
    """Every output of the notebook in that MIME type, in order."""
    return [out.data[mime] for _, out in _outputs(nb) if mime in out.get("data", {})]


def _stdout(nb: Any) -> str:
    return "".join(out.text for _, out in _outputs(nb) if out.get("name") == "stdout")


def _svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def _png_size(data: str) -> tuple[int, int]:
    raw = base64.b64decode(data)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    return width, height


def _player_trace(shown_html: str) -> dict[str, Any]:
    """The backward pass the player's page carries, read from the page inside its iframe."""
    found = re.search(r'<iframe\b[^>]*\bsrcdoc="([^"]*)"', shown_html)
    assert found, f"no iframe with a srcdoc in {shown_html[:200]!r}"
    page = html.unescape(found.group(1))
    assert page.startswith("<!DOCTYPE html>")
    data = re.search(
        r'<script type="application/json" id="backprop-trace">(.*?)</script>', page, re.S
    )
    assert data, "the player's page carries no trace"
    trace: dict[str, Any] = json.loads(data.group(1))
    return trace


def _players(nb: Any) -> list[dict[str, Any]]:
    return [_player_trace(h) for h in _shown(nb, "text/html") if "<iframe" in h]


# ---------------------------------------------------------------- the committed files


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_stripped_and_has_no_magic(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{name}.ipynb has no code"
    assert "widgets" not in nb.metadata, f"{name}.ipynb was saved with its widgets' state"
    for i, cell in enumerate(code):
        assert cell.outputs == [], (
            f"{name}.ipynb: code cell {i} was committed with its outputs (in Jupyter: Edit > "
            "Clear Outputs of All Cells, then save)"
        )
        assert cell.execution_count is None, f"{name}.ipynb: code cell {i} has an execution count"
        assert "execution" not in cell.metadata, f"{name}.ipynb: code cell {i} has run times"
        for line in cell.source.splitlines():
            assert not re.match(r"\s*[%!]", line), f"{name}.ipynb: a magic command: {line!r}"
            assert "get_ipython" not in line, f"{name}.ipynb: a magic command: {line!r}"


def test_every_notebook_is_tested() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


# ---------------------------------------------------------------- executed


@pytest.mark.parametrize("name", NAMES)
def test_runs_without_errors_or_warnings(executed: dict[str, Any], name: str) -> None:
    for i, out in _outputs(executed[name]):
        assert out.output_type != "error", f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
        if out.get("name") == "stderr":
            pytest.fail(f"{name}.ipynb cell {i} wrote to stderr: {out.text[:500]}")


def test_lecture_shows_the_neurons_graph_as_svg(executed: dict[str, Any]) -> None:
    graphs = _shown(executed["lecture"], "image/svg+xml")
    assert graphs, "the lecture shows no SVG graph"
    texts = _svg_texts(graphs[0])
    for label in ("x1", "x2", "w1", "w2", "b", "x1*w1", "x2*w2", "x1*w1 + x2*w2", "n", "o"):
        assert label in texts, f"the neuron's graph lacks the node {label!r}: {texts}"
    assert "data 0.7071" in texts  # o = tanh(n), drawn with its value


def test_lecture_plays_the_backward_pass(executed: dict[str, Any]) -> None:
    traces = _players(executed["lecture"])
    assert len(traces) == 2, "the lecture plays the neuron's pass, then checks the hand derivation"
    for trace in traces:
        grads = {node["label"]: node["grad"] for node in trace["nodes"]}
        assert grads == pytest.approx(
            {**HAND, "o": 1.0, "x1*w1": 0.5, "x2*w2": 0.5, "x1*w1 + x2*w2": 0.5}
        )
        assert 0 < len(trace["steps"]) <= len(trace["nodes"])  # a step per node that has one
    # the hand derivation, given as manual=, is right at every node it names
    verdicts = {node["label"]: node.get("verdict") for node in traces[1]["nodes"]}
    assert {k: verdicts[k] for k in HAND} == dict.fromkeys(HAND, "right")
    assert traces[1]["first_wrong"] is None


def test_lecture_reproduces_micrograds_numbers(executed: dict[str, Any]) -> None:
    out = _stdout(executed["lecture"])
    assert "g = 24.7041, dg/da = 138.8338, dg/db = 645.5773" in out


def test_lecture_help_shows_the_formula(executed: dict[str, Any]) -> None:
    out = _stdout(executed["lecture"])
    assert "Help on function tanh" in out
    assert "dx = g * (1 - out ** 2)" in out.split("Help on function tanh")[1]


def test_lecture_hand_derivation_matches(executed: dict[str, Any]) -> None:
    rows = re.findall(
        r"d o / d (\S+)\s+by hand\s+(\S+)\s+engine\s+(\S+)", _stdout(executed["lecture"])
    )
    assert [r[0] for r in rows] == ["n", "b", "x1", "w1", "x2", "w2"]
    expected = {"n": 0.5, "b": 0.5, "x1": -1.5, "w1": 1.0, "x2": 0.5, "w2": 0.0}  # micrograd's
    for name, hand, engine in rows:
        assert float(hand) == pytest.approx(expected[name], abs=1e-4)
        assert float(engine) == pytest.approx(expected[name], abs=1e-4)


def test_lecture_trains_both_networks(executed: dict[str, Any]) -> None:
    out = _stdout(executed["lecture"])
    found = re.search(r"after 20 steps: loss (\S+), accuracy (\d+)%", out)
    assert found, out
    assert float(found.group(1)) < 0.5 and int(found.group(2)) >= 85
    # the same network on Tensors, from the same weights, takes the same steps
    found = re.search(r"largest difference from the Values' losses: (\S+)", out)
    assert found and float(found.group(1)) < 1e-12, out
    found = re.search(r"validation accuracy: (\d+)%", out)
    assert found and int(found.group(1)) >= 95, out


def test_lecture_progress_bar_is_a_widget(executed: dict[str, Any]) -> None:
    widgets = _shown(executed["lecture"], "application/vnd.jupyter.widget-view+json")
    assert widgets and all("model_id" in w for w in widgets)


def test_lecture_shows_png_figures(executed: dict[str, Any]) -> None:
    figures = _shown(executed["lecture"], "image/png")
    assert len(figures) == 3, "two loss curves and micrograd's network's decision regions"
    from PIL import Image  # matplotlib's own dependency

    for data in figures:
        width, height = _png_size(data)
        assert 300 <= width <= 4000 and 200 <= height <= 4000, (width, height)
        with Image.open(io.BytesIO(base64.b64decode(data))) as picture:
            picture.load()  # decodes every pixel: a truncated PNG fails here
            assert picture.size == (width, height)
            colours = picture.convert("RGB").getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 10, "a figure with lines, text and regions, not a blank picture"


def test_makemore_exercise_compares_every_intermediate(executed: dict[str, Any]) -> None:
    rows = [m.groupdict() for m in COMPARED.finditer(_stdout(executed["lecture"]))]
    assert [r["name"] for r in rows] == MAKEMORE
    for r in rows:
        assert r["approximate"] == "True", f"{r['name']}: the hand gradient disagrees: {r}"
        assert float(r["maxdiff"]) < 1e-12, r
    # exercise 1 follows the engine's arithmetic step by step: the same numbers to the bit
    assert all(r["exact"] == "True" for r in rows[:26])
    assert "bnvar is the batch's variance: True" in _stdout(executed["lecture"])
    # the slip shown on its own, as a table: a gradient not summed over its broadcast axis
    (slip,) = [t for t in _tables(executed["lecture"]) if "what is wrong" in t[0]]
    heading, row = slip
    cells = dict(zip(heading, row, strict=True))
    assert (cells["gradient"], cells["shape"], cells["approximate"]) == (
        "counts_sum_inv",
        "32×1",
        "False",
    )
    assert "(32, 27)" in row[-1] and "(32, 1)" in row[-1], row
    last = executed["lecture"].cells[-1].outputs
    assert [o.data["text/plain"] for o in last if o.output_type == "execute_result"] == ["True"]


def _tables(nb: Any) -> list[list[list[str]]]:
    """Every HTML table the notebook shows, as rows of cell texts (heading rows included)."""
    tables = []
    for shown in _shown(nb, "text/html"):
        if "<table" not in shown:
            continue
        reader = _TableReader()
        reader.feed(shown)
        tables.extend(reader.tables)
    return tables


class _TableReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _report_rows(table: list[list[str]]) -> dict[str, list[str]]:
    """A gradient report's rows by input name: [name, shape, 4 differences, verdict, why]."""
    return {row[0]: row for row in table if len(row) == 8 and row[0] not in ("input", "parameter")}


def test_lecture_gradient_reports_are_html_tables(executed: dict[str, Any]) -> None:
    reports = [_report_rows(t) for t in _tables(executed["lecture"]) if _report_rows(t)]
    right, wrong = reports
    assert list(right) == list(wrong) == ["logits"]
    assert right["logits"][6] == "ok" and right["logits"][7] == ""
    assert wrong["logits"][6] == "FAIL"
    assert "[2]" in wrong["logits"][7], "the reason names the wrong element: the label's"
    assert float(wrong["logits"][2]) == pytest.approx(1.0)  # off by the one-hot's 1


def test_teacher_shows_the_exercise_and_the_wrong_answer(executed: dict[str, Any]) -> None:
    nb = executed["teacher"]
    texts = _svg_texts(_shown(nb, "image/svg+xml")[0])
    for label in ("x", "w", "b", "y", "z", "t", "L"):
        assert label in texts, f"the exercise's graph lacks {label!r}: {texts}"
    neuron, batch = (_report_rows(t) for t in _tables(nb))
    assert list(neuron) == ["w", "b"]
    for row in neuron.values():
        assert row[6] == "FAIL" and row[7], f"a failed row says why: {row}"
    # the batch exercise: W is right; b was averaged over the batch of 8 where it is summed
    assert list(batch) == ["W", "b"]
    assert batch["W"][6] == "ok" and batch["b"][6] == "FAIL"
    assert "1/8" in batch["b"][7] and "batch size" in batch["b"][7], batch["b"]
    (trace,) = _players(nb)
    # the student forgot tanh's derivative: the player says z is the first wrong step, and why
    verdicts = {node["label"]: node.get("verdict") for node in trace["nodes"]}
    assert verdicts["t"] == "right" and verdicts["z"] == "wrong", verdicts
    assert trace["nodes"][trace["first_wrong"]]["label"] == "z"
    diagnosis = _stdout(nb)
    # the factor left out is tanh's local derivative at z, 1 - tanh(-0.3)² = 0.915137
    assert re.search(r"local (factor|derivative)", diagnosis) and "0.915" in diagnosis, diagnosis
