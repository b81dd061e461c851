"""``backproplab check``: hand-derived backprop against the engine, on a small random batch.

    backproplab check [--hidden 16,16] [--activation relu|sigmoid|tanh|none]
                      [--loss sq-error|sum-sq-error|cross-entropy] [--softmax]
                      [--reg l1|l2 [--beta B]] [--no-bias] [--dropout P] [--seed S]
                      [--batch N] [--float32]
    backproplab check my_backprop.py [--seed S]

Without a file it builds an ``nn.MLP`` with those options (``INPUTS`` inputs, ``OUTPUTS``
outputs), draws a batch from the seed, runs ``nn.checker.check_model`` (the library's own
derivation, ``nn.manual``) and prints its table.

With a file it checks the derivation written there (``nn.checker.check_derivation``). The file
defines three functions (``DERIVATION``)::

    def example(rng):          # -> (params, x, y): {name: array} and a batch, drawn from rng
    def loss(params, x, y):    # the loss with backproplab's ops; params holds Tensors
    def grads(params, x, y):   # your backprop in NumPy; params holds arrays; -> {name: gradient}

The file is the user's own program: it is imported and run (as ``python my_backprop.py`` would
run it, but under another module name, so an ``if __name__ == "__main__":`` block does not run),
never read as text and evaluated.

Exit codes: 0 when every gradient agrees, 1 when one does not (the last line names it and says
what is wrong), 2 for bad arguments or a file that cannot be checked (one line, no traceback).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import itertools
import math
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .argtypes import float_where, int_from

__all__ = [
    "DEFAULT_BETA",
    "DERIVATION",
    "INPUTS",
    "MAX_BATCH",
    "MAX_PARAMETERS",
    "OUTPUTS",
    "add_check",
    "build_check",
    "load_derivation",
    "run_check",
]

INPUTS = 4
"""Features of the random batch."""

OUTPUTS = 3
"""Outputs of the network: the classes for cross-entropy, the targets' width otherwise."""

DEFAULT_BETA = 0.01
"""The penalty's β when ``--reg`` is given without ``--beta`` (β = 0 would check nothing)."""

MAX_PARAMETERS = 100_000
"""The largest network the command builds: central differences run two forward passes per
parameter, so a larger one would take minutes (and --hidden 100000,100000 would ask for 75 GiB
before the first of them). Refused before anything is allocated."""

MAX_BATCH = 10_000
"""The largest --batch: the check's cost grows with it and a few rows show every mistake."""

DERIVATION: dict[str, str] = {
    "example": "example(rng) -> (params, x, y)",
    "loss": "loss(params, x, y) -> a scalar Tensor, with backproplab's ops",
    "grads": "grads(params, x, y) -> {name: gradient}, by hand in NumPy",
}
"""The functions a file given to ``backproplab check`` defines, with what each returns."""

_ARITY = {"example": 1, "loss": 3, "grads": 3}

# The options that describe the command's own network: a file brings its own.
_NETWORK_OPTIONS: tuple[str, ...] = ("hidden", "activation", "loss", "softmax", "reg", "beta")
_NETWORK_OPTIONS += ("no_bias", "dropout", "batch", "float32")


class DerivationFileError(Exception):
    """A file given to ``backproplab check`` cannot be checked; the message is one line."""


def _sizes(text: str) -> list[int]:
    """'16,16' -> [16, 16]; '' -> [] (no hidden layer)."""
    if not text.strip():
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of layer widths, such as 16,16"
        ) from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer widths must be positive, got {text!r}")
    return sizes


# NaN fails both checks, as it fails every comparison.
_fraction = float_where(lambda p: 0.0 <= p < 1.0, "a fraction in [0, 1)")
_beta = float_where(lambda b: b >= 0.0 and math.isfinite(b), "a finite number >= 0")


def add_check(commands: Any) -> None:
    """Register ``check`` on the ``backproplab`` subcommands (a ``viz.cli.COMMANDS`` entry)."""
    parser = commands.add_parser(
        "check",
        help="check hand-derived backprop (the library's, or yours in a file) against the engine",
        description="Check backprop derived by hand against the engine and central differences. "
        f"Without FILE.py: build an MLP ({INPUTS} inputs, {OUTPUTS} outputs) on a random batch and "
        "check the library's own derivation (nn.manual) for every parameter. With FILE.py: check "
        "YOUR derivation, written in that file (see FILE.py below and docs/reference.md, "
        "'Checking a network's backprop by hand'). Exit 0 when all agree, 1 when one does not "
        "(the last line says what is wrong), 2 for bad arguments or a file that cannot be "
        "checked.",
    )
    parser.add_argument(
        "file",
        nargs="?",
        metavar="FILE.py",
        help="check YOUR derivation: a Python file that defines "
        + "; ".join(DERIVATION.values())
        + " (the network options below then do not apply; --seed seeds example's rng)",
    )
    _add_network_options(parser)
    _add_run_options(parser)
    parser.set_defaults(run=lambda args: run_check(args, parser))


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    """Add the options that shape the command's own network (--hidden to --dropout) to the
    ``check`` parser."""
    from backproplab.nn.functional import ACTIVATIONS

    parser.add_argument(
        "--hidden",
        type=_sizes,
        default=[16, 16],
        metavar="W,W",
        help="hidden layer widths, comma-separated ('' for none; default: 16,16)",
    )
    parser.add_argument("--activation", choices=ACTIVATIONS, default="sigmoid")
    parser.add_argument(
        "--loss",
        choices=("sq-error", "sum-sq-error", "cross-entropy"),
        default="sq-error",
        help="default: sq-error (mean squared error)",
    )
    parser.add_argument(
        "--softmax", action="store_true", help="a softmax output (cross-entropy then on logits)"
    )
    parser.add_argument("--reg", choices=("l1", "l2"), help="penalise the weights")
    parser.add_argument(
        "--beta",
        type=_beta,
        metavar="B",
        help=f"the penalty's constant (needs --reg; default {DEFAULT_BETA:g})",
    )
    parser.add_argument("--no-bias", action="store_true", help="layers without a bias")
    parser.add_argument(
        "--dropout",
        type=_fraction,
        default=0.0,
        metavar="P",
        help="dropout fraction of the hidden layers (default: 0)",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add --seed, --batch and --float32 (the run's random draw, batch size and precision) to
    the ``check`` parser."""
    parser.add_argument("--seed", type=int_from(0), default=0, metavar="S", help="default: 0")
    parser.add_argument(
        "--batch",
        type=int_from(1, MAX_BATCH + 1),
        default=8,
        metavar="N",
        help=f"default: 8 (at most {MAX_BATCH:,})",
    )
    parser.add_argument(
        "--float32",
        action="store_true",
        help="a float32 model, at the looser float32 tolerance (central differences stay float64)",
    )


def build_check(
    hidden: list[int],
    activation: str = "sigmoid",
    loss: str = "sq-error",
    softmax: bool = False,
    reg: str | None = None,
    beta: float = 0.0,
    use_bias: bool = True,
    dropout: float = 0.0,
    seed: int = 0,
    batch: int = 8,
    float32: bool = False,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """The command's model and batch: (nn.MLP, x of shape (batch, INPUTS), targets).

    The model is seeded with ``seed``. A generator of its own (seeded with (seed, 1)) then
    draws the biases (normal, standard deviation 0.1, rather than nn.Linear's zeros), standard
    normal inputs and, for cross-entropy, class labels in [0, OUTPUTS), else targets uniform
    in [0, 1). Raises ValueError for an invalid model, or one of more than ``MAX_PARAMETERS``
    parameters (before allocating it).
    """
    from backproplab.nn.layers import MLP

    widths = [INPUTS, *hidden, OUTPUTS]
    count = sum(a * b + (b if use_bias else 0) for a, b in itertools.pairwise(widths))
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"--hidden {','.join(map(str, hidden))} gives a network of {count:,} parameters; "
            f"the check takes at most {MAX_PARAMETERS:,} (central differences run two forward "
            "passes per parameter)"
        )
    model = MLP(
        INPUTS, OUTPUTS, hidden, activation, softmax, reg, beta, dropout, use_bias, seed=seed
    )
    rng = np.random.default_rng([seed, 1])
    # Biases start at zero in nn.Linear; here they get small random values, so that a forward
    # pass that forgot "+ b" cannot pass, and no relu sits at its kink (z = 0 exactly, where
    # central differences fail) under an input row that dropout or relu zeroed entirely.
    for layer in model.layers:
        if layer.bias is not None:
            layer.bias.data = rng.normal(0.0, 0.1, layer.bias.shape)
    x = rng.standard_normal((batch, INPUTS))
    y: np.ndarray
    if loss == "cross-entropy":
        y = rng.integers(0, OUTPUTS, batch)
    else:
        y = rng.uniform(0.0, 1.0, (batch, OUTPUTS))
    if float32:
        for p in model.parameters():
            p.data = p.data.astype(np.float32)
        x = x.astype(np.float32)
        if y.dtype.kind == "f":
            y = y.astype(np.float32)
    return model, x, y


def run_check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the check the arguments describe and print the report: 0 if it agrees, else 1."""
    from backproplab.nn.checker import check_model

    if args.file is not None:
        return _run_file(args, parser)
    if args.beta is not None and args.reg is None:
        parser.error("--beta needs --reg l1 or --reg l2")
    beta = (DEFAULT_BETA if args.beta is None else args.beta) if args.reg else 0.0
    if args.dropout and not args.hidden:
        parser.error("--dropout applies to hidden layers, and --hidden gives none")
    try:
        model, x, y = build_check(
            args.hidden,
            args.activation,
            args.loss,
            args.softmax,
            args.reg,
            beta,
            not args.no_bias,
            args.dropout,
            args.seed,
            args.batch,
            args.float32,
        )
    except ValueError as e:
        parser.error(str(e))
    report = check_model(model, x, y, args.loss, seed=args.seed)
    print(report, flush=True)
    return 0 if report.ok else 1


def load_derivation(path: str | Path) -> ModuleType:
    """Import the file ``path`` as a module and check it defines ``DERIVATION``'s functions.

    The file is the user's own program, run as Python runs a script (its folder first on
    ``sys.path`` meanwhile, so it can import files beside it). Raises DerivationFileError, in
    one line naming the file, when it is missing, not Python, does not run, or lacks a
    function or gives one the wrong parameters.
    """
    file = Path(path)
    if not file.exists():
        raise DerivationFileError(f"{path}: no such file")
    if not file.is_file():
        raise DerivationFileError(f"{path}: not a file")
    if file.suffix != ".py":
        raise DerivationFileError(f"{path}: not a Python file (.py)")
    spec = importlib.util.spec_from_file_location(f"_backproplab_check_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise DerivationFileError(f"{path}: Python cannot load it")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise DerivationFileError(f"{path}, line {e.lineno}: {e.msg}") from None
    except Exception as e:  # their program failed as it ran: say where, in one line
        raise DerivationFileError(f"{path}: running it raised {_in_file(e, file)}") from None
    finally:
        sys.path.remove(str(file.resolve().parent))
    missing = [DERIVATION[n] for n in DERIVATION if not callable(getattr(module, n, None))]
    if missing:
        raise DerivationFileError(f"{path} defines no {'; no '.join(missing)}")
    for name, arity in _ARITY.items():
        try:
            inspect.signature(getattr(module, name)).bind(*range(arity))
        except TypeError:
            raise DerivationFileError(
                f"{path}: {name} must take {arity} argument{'s' if arity > 1 else ''}, as "
                f"{DERIVATION[name].split(' ->')[0]}; it is {name}"
                f"{inspect.signature(getattr(module, name))}"
            ) from None
        except ValueError:
            pass  # a builtin or C function without a signature: let the call tell
    return module


def _in_file(e: BaseException, file: Path) -> str:
    """'KeyError: 'W3' (line 12, in grads)': the exception and the deepest line of ``file``."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if _same(f.filename, file)]
    where = ""
    if frames:
        inside = "" if frames[-1].name == "<module>" else f", in {frames[-1].name}"
        where = f" (line {frames[-1].lineno}{inside})"
    text = " ".join(str(e).split())  # one line, whatever the message
    return f"{type(e).__name__}: {text}{where}" if text else f"{type(e).__name__}{where}"


def _run_file(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Check the derivation in ``args.file``: print the report, 0 if it agrees, else 1."""
    from backproplab.nn.checker import DerivationError, check_derivation

    given = [
        f"--{dest.replace('_', '-')}"
        for dest in _NETWORK_OPTIONS
        if getattr(args, dest) != parser.get_default(dest)
    ]
    if given:
        parser.error(
            f"{', '.join(given)} {'describes' if len(given) == 1 else 'describe'} the command's "
            f"own network; {args.file} brings its own "
            "(only --seed applies: it seeds example's rng)"
        )
    try:
        module = load_derivation(args.file)
        file = Path(args.file).resolve()
        try:
            example = module.example(np.random.default_rng(args.seed))
        except Exception as e:  # their code: one line, where it failed in their file
            raise DerivationFileError(
                f"{args.file}: example(rng) raised {_in_file(e, file)}"
            ) from None
        if not isinstance(example, tuple) or len(example) != 3:
            what = (
                f"a tuple of {len(example)}"
                if isinstance(example, tuple)
                else "a " + type(example).__name__
            )
            raise DerivationFileError(
                f"{args.file}: example(rng) returned {what}; it must return (params, x, y)"
            )
        params, x, y = example
        try:
            report = check_derivation(
                module.loss, module.grads, params, x, y, title=f"{args.file}: {_title(params, x)}"
            )
        except DerivationError as e:
            raise DerivationFileError(f"{args.file}: {e}") from None
        except Exception as e:  # raised in their loss or grads, or by an op their loss misused
            if not any(_same(f.filename, file) for f in traceback.extract_tb(e.__traceback__)):
                raise  # not from their file: a fault of ours, shown in full
            raise DerivationFileError(f"{args.file}: {_in_file(e, file)}") from None
    except DerivationFileError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    print(report, flush=True)
    return 0 if report.ok else 1


def _same(filename: str, file: Path) -> bool:
    return Path(filename).resolve() == file.resolve()


def _title(params: Any, x: Any) -> str:
    """'4 parameters (W1, b1, W2, b2), batch 8' when params is a dict, else what it is."""
    if not isinstance(params, dict):
        return "your derivation"
    batch = f", batch {len(x)}" if np.ndim(x) >= 1 else ""
    return f"{len(params)} parameters ({', '.join(map(str, params))}){batch}"
