"""``backproplab graph``: an expression's value, gradients and rendered graph; its errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from backproplab.viz.cli import main

NEURON = [
    "graph",
    "tanh(x1*w1 + x2*w2 + b)",
    "--var",
    "x1=2",
    "--var",
    "x2=0",
    "--var",
    "w1=-3",
    "--var",
    "w2=1",
    "--var",
    "b=6.8813735870195432",
]
HAVE_DOT = shutil.which("dot") is not None
SVG = "{http://www.w3.org/2000/svg}"


def test_the_classic_neuron(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(NEURON) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "value = 0.7071",
        "d/dx1 = -1.5",
        "d/dw1 = 1",
        "d/dx2 = 0.5",
        "d/dw2 = 0",
        "d/db = 0.5",
        "wrote graph.svg" if HAVE_DOT else "wrote graph.gv",
    ]
    source = (tmp_path / "graph.gv").read_text()  # the DOT source, always written
    for label in ("x1", "w1", "x2", "w2", "b", "0.7071", "rankdir=LR"):
        assert label in source
    if not HAVE_DOT:
        pytest.skip("Graphviz's dot is not installed: the SVG is not rendered")
    assert captured.err == ""
    root = ET.parse(tmp_path / "graph.svg").getroot()
    assert root.tag == f"{SVG}svg"
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {"x1", "w1", "x2", "w2", "b", "data 0.7071", "grad -1.5"} <= texts


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("suffix", ["png", "pdf"])
def test_other_formats_and_top_to_bottom(
    suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "sub" / f"neuron.{suffix}"
    assert main([*NEURON, "-o", str(target), "--rankdir", "TB"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {target}"
    magic = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF"}[suffix]
    assert target.read_bytes().startswith(magic)
    assert "rankdir=TB" in target.with_suffix(".gv").read_text()


def test_without_dot_the_source_is_written_and_one_line_says_how_to_get_dot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # dot cannot be found
    assert main([*NEURON, "-o", str(tmp_path / "g.svg")]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == f"wrote {tmp_path / 'g.gv'}"
    assert not (tmp_path / "g.svg").exists()
    assert "digraph" in (tmp_path / "g.gv").read_text()
    assert captured.err.count("\n") == 1 and "apt-get install graphviz" in captured.err


def test_numbers_alone_and_a_name_used_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["graph", "2 * 3 - 1", "-o", str(tmp_path / "c.gv")]) == 0
    assert capsys.readouterr().out.splitlines()[:1] == ["value = 5"]
    assert main(["graph", "x*x + exp(x)", "--var", "x=0.5", "-o", str(tmp_path / "d.gv")]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["value = 1.899", "d/dx = 2.649"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # a name without a value: unknown to the command line
        (["x + y", "--var", "x=1"], "no value for y: give --var y=NUMBER"),
        (["a*b", "--var", "q=1"], "no value for a, b: give --var a=NUMBER --var b=NUMBER"),
        # a --var the expression does not use
        (
            ["x", "--var", "x=1", "--var", "z=2"],
            "--var z: the expression does not use it (it uses x)",
        ),
        (["x", "--var", "x=1", "--var", "x=2"], "--var x is given twice"),
        # malformed --var
        (["x", "--var", "x"], "argument --var: expected NAME=NUMBER, got 'x'"),
        (["x", "--var", "x=abc"], "argument --var: 'abc' is not a number (in 'x=abc')"),
        (["x", "--var", "=1"], "argument --var: expected NAME=NUMBER, got '=1'"),
        (["x", "--var", "1x=1"], "argument --var: '1x' is not a name"),
        (["x", "--var", "if=1"], "argument --var: 'if' is not a name"),
        (["x", "--var"], "argument --var: expected one argument"),
        # domain errors
        (
            ["log(x)", "--var", "x=-1"],
            "cannot compute the expression: log of a non-positive number",
        ),
        (["sqrt(x)", "--var", "x=-4"], "square root of a negative number: sqrt(-4.0)"),
        (["x / y", "--var", "x=1", "--var", "y=0"], "division by zero: 1.0 / 0.0"),
        # refused text
        (["x.__class__", "--var", "x=1"], "attribute access is not allowed (column 3)"),
        (["__import__('os').system('echo hi')"], "attribute access is not allowed (column 18)"),
        (["open('f')"], "calling 'open' is not allowed"),
        (["(" * 101 + "x" + ")" * 101], "nesting deeper than 100 levels"),
        (["x" * 20_000], "text longer than 10,000 characters is not allowed"),
        (["x +"], "'+' needs an operand on its right (column 3)"),
        ([""], "the expression is empty"),
        # the picture
        (["x", "--var", "x=1", "-o", "out.txt"], "argument -o/--output: 'out.txt' must end in"),
        (["x", "--var", "x=1", "--rankdir", "RL"], "argument --rankdir: invalid choice: 'RL'"),
        (["x*x*x", "--var", "x=1", "--max-nodes", "3"], "more than max_nodes=3"),
        (["x", "--var", "x=1", "--max-nodes", "0"], "--max-nodes: must be an integer >= 1, got 0"),
    ],
)
def test_errors_print_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never.svg"
    argv = ["graph", *args] if "-o" in args else ["graph", *args, "-o", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("backproplab graph: error: ")
    assert message in captured.err
    assert list(tmp_path.iterdir()) == []


def test_a_picture_that_cannot_be_written_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a folder")
    assert main([*NEURON, "-o", str(tmp_path / "file" / "g.svg")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("backproplab graph: error: cannot write")


def test_the_exit_code_reaches_the_shell(tmp_path: Path) -> None:
    # Under `python -m backproplab.viz.cli` the CLI module is __main__: the error must still be
    # one line.
    done = subprocess.run(
        [sys.executable, "-m", "backproplab.viz.cli", "graph", "log(x)", "--var", "x=-1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PYTHONPATH": str(Path(__file__).parents[2]), "PATH": ""},
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        "backproplab graph: error: cannot compute the expression: log of a non-positive "
        "number: log(-1.0)"
    ]


def test_help_lists_graph(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--var NAME=VALUE" in out and "--rankdir {LR,TB}" in out


# -- inputs, parameters, digits, legend -----------------------------------------------------------

NEURON_WITH_PARAMS = [
    "graph",
    "tanh(x1*w1 + x2*w2 + b)",
    "--var",
    "x1=2",
    "--var",
    "x2=0",
    "--param",
    "w1=-3",
    "--param",
    "w2=1",
    "--param",
    "b=6.8813735870195432",
]


def _node(source: str, name: str) -> str:
    lines = [ln for ln in source.splitlines() if f'label="{{ {name} |' in ln]
    assert len(lines) == 1, lines
    return lines[0]


def test_var_names_inputs_and_param_names_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*NEURON_WITH_PARAMS, "-o", str(tmp_path / "g.gv")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:6] == [
        "value = 0.7071",
        "d/dx1 = -1.5",
        "d/dw1 = 1",
        "d/dx2 = 0.5",
        "d/dw2 = 0",
        "d/db = 0.5",
    ]
    source = (tmp_path / "g.gv").read_text()
    for name in ("x1", "x2"):
        assert "fillcolor=gray92" in _node(source, name)  # the input style
    for name in ("w1", "w2", "b"):
        assert "fillcolor=lightblue" in _node(source, name)  # the parameter style
    assert "x1*w1 | data -6 | grad 0.5" in source  # an intermediate node: its subexpression
    assert "legend_input" in source and "legend_parameter" in source


def test_without_param_every_name_is_an_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*NEURON, "-o", str(tmp_path / "g.gv")]) == 0
    source = (tmp_path / "g.gv").read_text()
    assert "legend_parameter" not in source
    assert "fillcolor=gray92" in _node(source, "w1")


def test_decimals_and_no_legend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*NEURON_WITH_PARAMS, "--decimals", "7", "--no-legend", "-o", str(tmp_path / "g.gv")]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "value = 0.7071068"
    source = (tmp_path / "g.gv").read_text()
    assert "data 6.881374 " in source and "data 0.7071068 " in source
    assert "legend" not in source


def test_never_minus_zero_in_print_or_picture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["graph", "x * w", "--var", "x=-0.0", "--param", "w=0", "-o", str(tmp_path / "g.gv")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == ["value = 0", "d/dx = 0", "d/dw = 0"]
    assert "-0" not in (tmp_path / "g.gv").read_text()


def test_a_typo_in_a_function_suggests_the_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "tahn(x)", "--var", "x=1"]) == 2
    assert "did you mean 'tanh'?" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "--var", "x=1", "--param", "x=2"], "--param x is given as --var too"),
        (["x", "--param", "x=1", "--param", "x=2"], "--param x is given twice"),
        (["x", "--var", "x=1", "--param", "w=2"], "--param w: the expression does not use it"),
        (["x", "--var", "x=1", "--decimals", "0"], "--decimals: must be an integer in [1, 18)"),
    ],
)
def test_param_and_decimals_errors(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["graph", *args, "-o", str(tmp_path / "g.gv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
