"""``backproplab demo``: the tour, and the three example networks trained and pictured.

    backproplab demo                      a short tour: the engine, the neuron's graph, then
                                          the three example networks
    backproplab demo circle [--engine value|tensor] [--steps N] [--out DIR]
                                          the circle classifier
    backproplab demo relu [--seed S]      the random ReLU regression
    backproplab demo mlp [--data moons|spirals] [--epochs N] [--out DIR]
                                          the MLP classifier

The three networks come from three write-ups (credited in docs/reference.md, "The three example
networks, and where they come from"); what a learner reads names each by what it is.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .argtypes import OutputError, int_from

__all__ = [
    "CIRCLE",
    "CONFIGURABLE_MLP",
    "MLP_SETTINGS",
    "RELU",
    "demo_circle",
    "demo_mlp",
    "demo_relu",
    "register",
]

# What each example network is called wherever a learner reads about it.
CIRCLE = "the circle classifier"
RELU = "the random ReLU regression"
CONFIGURABLE_MLP = "the MLP classifier"

# The tour's circle classifier run: its write-up's full 2000 steps, on the value engine (the
# slowest section of the tour; its time is printed at the end, and bench/README.md has more).
TOUR_CIRCLE_STEPS = 2000

# The MLP classifier on each toy dataset: hyperparameters that reach >= 95% validation accuracy in
# about a second (moons 100%, spirals 98.3% with seed 0; 95% or more for each of 3 model seeds on 4
# data seeds), checked by tests/viz/test_cli_demo.py.
MLP_SETTINGS: dict[str, dict[str, Any]] = {
    "moons": {
        "hid_sizes": [16, 16],
        "activation": "tanh",
        "reg": None,
        "beta": 0.0,
        "learning_rate": 0.01,
        "batch_size": 32,
        "epochs": 100,
    },
    "spirals": {
        "hid_sizes": [64, 64],
        "activation": "relu",
        # A little l2 keeps the scores from growing overconfident on the arms' noisy points,
        # where the validation loss otherwise swings widely late in training.
        "reg": "l2",
        "beta": 1e-3,
        "learning_rate": 0.01,
        "batch_size": 32,
        "epochs": 200,
    },
}


def register(commands: Any) -> None:
    """Register ``demo`` and its named demos (circle, relu, mlp); without a name, the tour."""
    demo = commands.add_parser(
        "demo",
        help=f"train the example networks ({CIRCLE}, {RELU}, {CONFIGURABLE_MLP}); "
        "no NAME: a short tour of everything",
        description="Train the three example networks on the engine. Without a NAME: a short "
        "tour of the engine, the README's neuron as a computation graph, and all three "
        "networks, writing pictures to --out.",
    )
    demo.add_argument(
        "--out",
        dest="tour_out",
        metavar="DIR",
        type=Path,
        default=Path("out"),
        help="where the tour writes its pictures (default: out)",
    )
    demo.set_defaults(run=_run_tour)
    demos = demo.add_subparsers(title="demos", metavar="NAME", dest="demo")
    _add_circle_and_relu(demos)
    _add_mlp(demos)


def _add_circle_and_relu(demos: Any) -> None:
    from backproplab.nn.seed_circle import ENGINES

    circle = demos.add_parser(
        "circle",
        help=f"{CIRCLE}: a 2-4-1 sigmoid network learns which points lie inside the unit circle",
        description=f"{CIRCLE.capitalize()}: a 2-4-1 sigmoid network learns which points of an "
        "11 x 11 grid lie inside the unit circle, printing the loss at step 1 and every 100th "
        "step.",
    )
    circle.add_argument("--engine", choices=ENGINES, default="value", help="default: value")
    circle.add_argument(
        "--steps", type=int_from(1), default=2000, metavar="N", help="default: 2000"
    )
    circle.add_argument(
        "--out", type=Path, metavar="DIR", help="write circle_loss.png and circle_function.png"
    )
    circle.set_defaults(run=lambda a: demo_circle(a.engine, a.steps, a.out))

    relu = demos.add_parser(
        "relu",
        help=f"{RELU}: a two-layer ReLU network fits random targets (1000 -> 100 -> 1)",
        description=f"{RELU.capitalize()}: a two-layer ReLU network (1000 inputs, 100 ReLU "
        "units, 1 output, no biases) fits 128 random targets in 1000 steps of gradient "
        "descent, printing the loss and then the first five prediction errors.",
    )
    relu.add_argument(
        "--seed",
        type=int_from(0, 2**32),
        default=0,
        metavar="S",
        help="the seed of the random data and weights (default: 0)",
    )
    relu.set_defaults(run=lambda a: demo_relu(a.seed))


def _add_mlp(demos: Any) -> None:
    mlp = demos.add_parser(
        "mlp",
        help=f"{CONFIGURABLE_MLP}: trained by MLPTrainer on two moons or spirals",
        description=f"{CONFIGURABLE_MLP.capitalize()}: an MLP with a softmax output, trained "
        "by MLPTrainer (Adam, cross-entropy) on two moons or the CS231n spiral, printing its "
        "history.",
    )
    mlp.add_argument("--data", choices=sorted(MLP_SETTINGS), default="moons")
    mlp.add_argument(
        "--epochs",
        type=int_from(1),
        metavar="N",
        help="default: " + ", ".join(f"{k} {v['epochs']}" for k, v in sorted(MLP_SETTINGS.items())),
    )
    mlp.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write mlp_DATA_loss.png, mlp_DATA_function.png and mlp_DATA_gradcheck.png",
    )
    mlp.set_defaults(run=lambda a: demo_mlp(a.data, a.epochs, a.out))


def _say(line: str = "") -> None:
    # Flushed as it goes: the value engine's circle run prints over several seconds.
    print(line, flush=True)


def _make_folder(out: Path | None) -> None:
    """Create the picture folder now, so a bad ``--out`` fails before any training is done."""
    if out is None:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the picture folder {str(out)!r}: {_reason(e)}") from None


def _picture_dir(out: Path) -> Path | None:
    """``out``, created if need be; None (after saying so) when matplotlib is missing."""
    from .plots import PLOT_HINT, have_matplotlib

    if not have_matplotlib():
        _say(f"pictures skipped: matplotlib is not installed (to get them: {PLOT_HINT})")
        return None
    _make_folder(out)
    return out


def _write(draw: Callable[..., Path], what: str, *args: Any, **kwargs: Any) -> None:
    try:
        path = draw(*args, **kwargs)
    except OSError as e:
        raise OutputError(f"cannot write {_reason(e)}") from None
    _say(f"wrote {path}: {what}")


def _reason(e: OSError) -> str:
    where = f"{e.filename}: " if e.filename else ""
    return f"{where}{e.strerror or e}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 0) -> list[str]:
    """Lines of a table: the header, then the rows, each column as wide as its widest cell;
    the first ``left`` columns (names) aligned left, the rest (numbers) right."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            f"{c:<{w}}" if i < left else f"{c:>{w}}"
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in [header, *rows]
    ]


def demo_circle(engine: str = "value", steps: int = 2000, out: Path | None = None) -> int:
    """Train the circle classifier and print its loss as a table; with ``out``, draw its loss
    and the function it learned.

    The numbers are those ``nn.seed_circle.circle_lines`` prints as its write-up does (step 1
    and every 100th step), printed as training goes; the loss of every step is kept for the
    curve, so the network is trained only once.
    Returns 0. Raises OutputError when the pictures cannot be written.
    """
    from backproplab.nn.seed_circle import circle_model, predict_grid, train_circle

    _make_folder(out)  # a bad --out fails before a 10-second training run
    _say(
        f"{CIRCLE}: a 2-4-1 sigmoid network learns which of 121 grid points lie inside the "
        "unit circle"
    )
    _say(
        f"  {engine} engine, {steps} full-batch gradient steps at learning rate 10, "
        "loss the mean squared error"
    )
    model = circle_model(engine)
    at_origin = predict_grid(model, engine, [0.0], [0.0])[0, 0]
    _say(f"untrained output at (0, 0): {at_origin:.4f}")
    # Printed as training goes, so the columns are sized ahead: the last step, a 4-decimal loss.
    width = max(len("step"), len(str(steps)))
    _say(f"{'step':>{width}}  {'loss':>6}")
    losses = []
    for step, loss in train_circle(steps, engine=engine, model=model):
        losses.append(loss)
        if step == 1 or step % 100 == 0:  # the write-up's print schedule
            _say(f"{step:>{width}}  {loss:>6.4f}")
    if out is None or (folder := _picture_dir(out)) is None:
        return 0

    from backproplab.nn.datasets import circle_grid

    from .plots import plot_loss_curve, plot_values_2d

    _write(
        plot_loss_curve,
        "the loss at every step",
        losses,
        folder / "circle_loss.png",
        title=f"The circle classifier learning ({engine} engine)",
        ylabel="mean squared error",
    )
    X, z = circle_grid()
    xs = ys = np.linspace(-2.5, 2.5, 101)
    _write(
        plot_values_2d,
        "the trained network's output over the plane",
        xs,
        ys,
        predict_grid(model, engine, xs, ys),
        X,
        z,
        folder / "circle_function.png",
        title=f"The circle classifier after {steps} steps: its output f(x1, x2)",
        value_label="network output: 1 inside, 0 outside",
        class_names=("outside the unit circle (target 0)", "inside (target 1)"),
    )
    return 0


def demo_relu(seed: int = 0) -> int:
    """Train the random ReLU regression and print its loss and final errors as tables.

    The numbers are ``nn.seed_relu.relu_run(seed)``'s, on the write-up's schedule (every 10th
    step to 100, then every 100th). Returns 0.
    """
    from backproplab.nn.seed_relu import relu_run

    _say(
        f"{RELU}: 128 random inputs of 1000 features -> 100 ReLU units -> 1 output, fitted to "
        "random targets"
    )
    _say(
        f"  no biases, 1000 steps of gradient descent at learning rate 1e-6, loss the sum of "
        f"squared errors, seed {seed}"
    )
    run = relu_run(seed)
    for line in _table(("step", "loss"), [(str(i), f"{loss:.4f}") for i, loss in run.losses]):
        _say(line)
    _say("after training, prediction minus target for the first five samples:")
    errors = [(str(i), f"{e:+.4e}") for i, e in enumerate(run.errors.ravel())]
    for line in _table(("sample", "error"), errors):
        _say(line)
    return 0


def demo_mlp(data: str = "moons", epochs: int | None = None, out: Path | None = None) -> int:
    """Train the MLP classifier with MLPTrainer on two moons or spirals; print its history.

    The data (two_moons(200) or spirals(100, 3), seed 0) is split 80/20 into training and
    validation sets; the settings are ``MLP_SETTINGS[data]``, ``epochs`` overriding theirs.
    With ``out``, writes mlp_<data>_loss.png (both loss curves), mlp_<data>_function.png
    (the decision regions) and mlp_<data>_gradcheck.png (the trained model's gradients by hand
    against the engine's, ``nn.checker.check_model`` on 16 training points).
    Returns 0. Raises OutputError when the pictures cannot be written.
    """
    from backproplab.nn.datasets import spirals, train_val_split, two_moons
    from backproplab.nn.layers import MLP
    from backproplab.nn.trainer import MLPTrainer

    _make_folder(out)  # a bad --out fails before training
    settings = MLP_SETTINGS[data]
    epochs = settings["epochs"] if epochs is None else epochs
    x, y = two_moons(200, noise=0.1, seed=0) if data == "moons" else spirals(100, 3, 0.2, seed=0)
    x_train, y_train, x_val, y_val = train_val_split(x, y, 0.2, seed=0)
    classes = int(y.max()) + 1
    hid, activation = settings["hid_sizes"], settings["activation"]
    reg, beta = settings["reg"], settings["beta"]
    model = MLP(2, classes, hid, activation, True, reg, beta, seed=0)
    trainer = MLPTrainer(
        model,
        settings["learning_rate"],
        settings["batch_size"],
        "cross-entropy",
        optimizer="adam",
        seed=0,
        verbose=False,
    )
    regularised = f", reg={reg!r}, beta={beta:g}" if reg else ""
    dataset = DATASETS[data]
    _say(f"{CONFIGURABLE_MLP} on {dataset}: a classifier trained by MLPTrainer")
    _say(f"  data: {len(x_train)} training and {len(x_val)} validation points, {classes} classes")
    _say(f"  model: MLP(2, {classes}, {hid}, {activation!r}, is_softmax=True{regularised})")
    _say(
        f"  training: Adam, learning rate {settings['learning_rate']:g}, batch "
        f"{settings['batch_size']}, cross-entropy loss, {epochs} epochs"
    )
    start = time.perf_counter()
    history = trainer.train(x_train, y_train, x_val, y_val, epochs)
    elapsed = time.perf_counter() - start
    for line in history_table(history):
        _say(line)
    _say(f"trained {epochs} epochs in {elapsed:.1f} s")
    _say(f"final validation accuracy: {history[-1]['val_acc']:.1%}")
    if out is not None and (folder := _picture_dir(out)) is not None:
        _mlp_pictures(model, history, x, y, x_train, y_train, data, folder)
    return 0


def _mlp_pictures(
    model: Any,
    history: list[dict[str, float]],
    x: np.ndarray,
    y: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
    data: str,
    folder: Path,
) -> None:
    """The MLP classifier's loss curves, decision regions and gradient check, as PNGs."""
    from .plots import plot_function_2d, plot_loss_curve

    dataset, classes = DATASETS[data], int(y.max()) + 1
    _write(
        plot_loss_curve,
        "training and validation loss per epoch",
        history,
        folder / f"mlp_{data}_loss.png",
        title=f"The MLP classifier learning {dataset}",
        ylabel="cross-entropy",
    )
    _write(
        plot_function_2d,
        "the class it predicts at each point of the plane",
        model.predict,
        x,
        y,
        folder / f"mlp_{data}_function.png",
        title=f"The MLP classifier on {dataset}: its decision regions\n"
        f"(validation accuracy {history[-1]['val_acc']:.1%})",
        class_names=(
            ["upper moon (class 0)", "lower moon (class 1)"]
            if data == "moons"
            else [f"arm {k} (class {k})" for k in range(classes)]
        ),
    )

    from backproplab.nn.checker import check_model

    from .plots import plot_gradient_check

    # The trained model's gradients three ways (by hand in NumPy, by the engine, by central
    # differences) on a few training points: a small batch keeps the numeric side quick.
    report = check_model(model, x_train[:16], y_train[:16], "cross-entropy")
    _say(f"gradient check on 16 training points: {str(report).splitlines()[-1]}")
    _write(
        plot_gradient_check,
        "each parameter's gradient by hand, by the engine and by central differences",
        report,
        folder / f"mlp_{data}_gradcheck.png",
        title="The MLP classifier's gradients: by hand against the engine, the engine "
        "against central differences",
    )


DATASETS = {"moons": "two moons", "spirals": "three spirals"}
"""What each ``demo mlp --data`` choice is called in what it prints."""


def demo_neuron_graph(out: Path) -> int:
    """Draw the README's neuron, tanh(x1*w1 + x2*w2 + b), as a computation graph in ``out``.

    x1 and x2 are inputs, w1, w2 and b parameters, as ``backproplab graph`` draws them with
    --var and --param. Writes neuron.svg (or, without Graphviz's dot, neuron.gv and one line
    saying how to get dot). Returns 0. Raises OutputError when the file cannot be written.
    """
    from backproplab.autograd import Value, parse

    from .graph import draw_graph, render

    _make_folder(out)
    inputs = {"x1": 2.0, "x2": 0.0}
    params = {"w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}
    leaves = {k: Value(v, label=k) for k, v in {**inputs, **params}.items()}
    o = parse(NEURON, **leaves)
    o.label = "o"
    o.backward()
    _say(f"o = {NEURON}, with inputs x1 = 2, x2 = 0 and parameters w1 = -3, w2 = 1, b = 6.8814")
    _say(f"o = {o.data:.4f}; its gradient with respect to each input and parameter:")
    grads = [(k, f"{v.grad + 0.0:.4g}") for k, v in leaves.items()]
    for line in _table(("name", "gradient"), grads, left=1):
        _say(line)
    picture = draw_graph(o, inputs=[leaves[k] for k in inputs])
    try:
        path = render(picture, out / "neuron.svg")
    except OSError as e:
        raise OutputError(f"cannot write {_reason(e)}") from None
    except RuntimeError as e:  # dot is there but failed
        raise OutputError(str(e)) from None
    _say(f"wrote {path}: the neuron's computation graph, every node with its value and gradient")
    return 0


NEURON = "tanh(x1*w1 + x2*w2 + b)"
"""The README's neuron, which the tour draws."""


def history_table(history: Sequence[dict[str, float]], rows: int = 10) -> list[str]:
    """A compact table of an MLPTrainer history: about ``rows`` evenly spaced epochs, always
    the first and the last, one line each, under a header line."""
    if not history:
        return ["(no epochs)"]
    keys = [k for k in ("train_loss", "train_acc", "val_loss", "val_acc") if k in history[0]]
    every = max(1, len(history) // rows)
    shown = [r for i, r in enumerate(history) if i == 0 or (i + 1) % every == 0]
    if shown[-1] is not history[-1]:
        shown.append(history[-1])
    lines = ["epoch " + " ".join(f"{k.replace('_', ' '):>10}" for k in keys)]
    for r in shown:
        cells = [f"{r[k]:>10.1%}" if k.endswith("acc") else f"{r[k]:>10.4f}" for k in keys]
        lines.append(f"{int(r['epoch']):>5} " + " ".join(cells))
    return lines


def _run_tour(args: argparse.Namespace) -> int:
    """The tour: the engine's own demo, the neuron's graph, then the three example networks,
    pictures in --out; at the end, each section's time and where each picture is."""
    import backproplab.autograd.demo

    from .cmd_play import write_demo_page

    out: Path = args.tour_out
    start = time.perf_counter()
    sections: list[tuple[str, str, Callable[[], object]]] = [
        (
            "the engine",
            "the engine: a neuron, a layer, derivatives and a gradient check "
            "(python -m backproplab.autograd.demo)",
            backproplab.autograd.demo.main,
        ),
        (
            "the neuron's graph",
            "the neuron from the README as a computation graph (backproplab graph)",
            lambda: demo_neuron_graph(out),
        ),
        (
            "the neuron's backward pass",
            "the same neuron's backward pass, played step by step (backproplab play)",
            lambda: _write(write_demo_page, "the neuron's backward pass, played", out),
        ),
        (
            CIRCLE,
            f"{CIRCLE}, value engine, {TOUR_CIRCLE_STEPS} steps (backproplab demo circle)",
            lambda: demo_circle("value", TOUR_CIRCLE_STEPS, out),
        ),
        (RELU, f"{RELU}, Tensor engine (backproplab demo relu)", lambda: demo_relu(0)),
        (
            CONFIGURABLE_MLP,
            f"{CONFIGURABLE_MLP} on two moons (backproplab demo mlp)",
            lambda: demo_mlp("moons", None, out),
        ),
    ]
    took: list[tuple[str, float]] = []
    for i, (name, title, run) in enumerate(sections, 1):
        _say(f"{'' if i == 1 else chr(10)}== {i}/{len(sections)} {title}")
        began = time.perf_counter()
        run()
        took.append((name, time.perf_counter() - began))
    _say(f"\ntour done in {time.perf_counter() - start:.1f} s")
    for line in _table(("section", "seconds"), [(n, f"{t:.1f}") for n, t in took], left=1):
        _say(f"  {line}")
    pictures = [(out / name, what) for name, what in TOUR_PICTURES if (out / name).exists()]
    if not (out / "neuron.svg").exists() and (out / "neuron.gv").exists():
        pictures.insert(0, (out / "neuron.gv", "the neuron's graph as DOT source (no dot)"))
    if pictures:
        _say("pictures:")
        for line in _table(("file", "what it shows"), [(str(p), w) for p, w in pictures], 2):
            _say(f"  {line}")
    return 0


TOUR_PICTURES: list[tuple[str, str]] = [
    ("neuron.svg", "the README's neuron as a computation graph"),
    ("backward.html", "the neuron's backward pass, played step by step (open it in a browser)"),
    ("circle_loss.png", f"{CIRCLE}: its loss while training"),
    ("circle_function.png", f"{CIRCLE}: its output over the plane, with the grid's classes"),
    ("mlp_moons_loss.png", f"{CONFIGURABLE_MLP}: training and validation loss"),
    ("mlp_moons_function.png", f"{CONFIGURABLE_MLP}: its decision regions on two moons"),
    ("mlp_moons_gradcheck.png", f"{CONFIGURABLE_MLP}: gradients by hand against the engine's"),
]
"""The pictures the tour writes into --out, in order, and what each one shows."""
