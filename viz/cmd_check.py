"""``backproplab check``: hand-derived backprop against the engine, on a small random batch.

    backproplab check [--hidden 16,16] [--activation relu|sigmoid|tanh|none]
                      [--loss sq-error|sum-sq-error|cross-entropy] [--softmax]
                      [--reg l1|l2 [--beta B]] [--no-bias] [--dropout P] [--seed S]
                      [--batch N] [--float32]

It builds an ``nn.MLP`` with those options (``INPUTS`` inputs, ``OUTPUTS`` outputs), draws a
batch from the seed, runs ``nn.checker.check_model`` and prints its table. Exit codes: 0 when
every gradient agrees, 1 when one does not (the last line names it), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from .argtypes import float_where, int_from

__all__ = ["DEFAULT_BETA", "INPUTS", "OUTPUTS", "add_check", "build_check", "run_check"]

INPUTS = 4
"""Features of the random batch."""

OUTPUTS = 3
"""Outputs of the network: the classes for cross-entropy, the targets' width otherwise."""

DEFAULT_BETA = 0.01
"""The penalty's β when ``--reg`` is given without ``--beta`` (β = 0 would check nothing)."""


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
    from backproplab.nn.functional import ACTIVATIONS

    parser = commands.add_parser(
        "check",
        help="check hand-derived backprop against the engine and central differences",
        description=f"Build an MLP ({INPUTS} inputs, {OUTPUTS} outputs) on a random batch, compute "
        "the gradient of the loss for every parameter by hand (nn.manual), by the engine and "
        "by central differences, and print them side by side. Exit 0 when all agree, 1 when "
        "one does not, 2 for bad arguments.",
    )
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
    parser.add_argument("--seed", type=int_from(0), default=0, metavar="S", help="default: 0")
    parser.add_argument("--batch", type=int_from(1), default=8, metavar="N", help="default: 8")
    parser.add_argument(
        "--float32",
        action="store_true",
        help="a float32 model, at the looser float32 tolerance (central differences stay float64)",
    )
    parser.set_defaults(run=lambda args: run_check(args, parser))


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
    in [0, 1). Raises ValueError for an invalid model.
    """
    from backproplab.nn.layers import MLP

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
