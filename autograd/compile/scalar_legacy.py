"""Today's scalar back end (forward.py and backward.py's straight-line code, with fold.py's loop
for a repeated block) behind the interface of the scalar back end, ``build_scalar_program``,
until autograd/compile/scalar.py replaces it (see the seam in entry.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..engine import Node
from .program import _Program
from .trace import _Trace


class LegacyScalarProgram:
    """forward(values) -> (outputs, saved); backward(saved, seeds) -> one gradient per input."""

    tolerance = 0.0  # the eager engine's arithmetic in its order: bit for bit

    def __init__(self, program: _Program, backwards: list[Any], n_inputs: int) -> None:
        self._program = program
        self._backwards = backwards  # per output: (from the implied seed 1, from any seed)
        self._n = n_inputs
        self.source: str = program.source

    def forward(self, values: Sequence[float]) -> tuple[list[float], Any]:
        saved: list[Any] = []
        outs = self._program.forward(values, (), saved)  # type: ignore[misc]
        return list(outs), (values, saved)

    def backward(self, state: Any, seeds: Sequence[float]) -> list[Any]:
        """d(sum seeds * outputs)/d(each input); None for an input the outputs do not reach.
        An output whose seed is 0.0 sends nothing (as its node would send nothing)."""
        values, saved = state
        total: list[Any] = [None] * self._n
        for k, seed in enumerate(seeds):
            fns = self._backwards[k]
            if fns is None or (seed == 0.0 and len(seeds) > 1):
                continue
            implied, general = fns
            fn = implied if implied is not None and seed == 1.0 else general
            for i, d in enumerate(fn(seed, saved, values, ())):
                if d is not None:
                    total[i] = d if total[i] is None else total[i] + d
        return total


def build_scalar_program(
    order: list[Node], inputs: list[Node], outputs: list[Node]
) -> LegacyScalarProgram:
    """The program of a scalar trace: ``order`` its nodes, leaves included, in topological
    order; ``inputs`` the leaves the op is handed (its parents, in order); any other leaf a
    constant made inside."""
    from .entry import generate  # entry imports this module: the seam

    trace = _Trace()
    given = {id(n) for n in inputs}
    for n in order:
        if n.op is not None:
            trace.made[id(n)] = (n, n.op, n.parents, n.params)
        elif id(n) not in given:
            trace.inside[id(n)] = n
    # every leaf is an input (read from the values) or a constant: the program reads no other
    program, _, _, backwards, _ = generate(tuple(outputs), trace, list(inputs), {}, True)
    return LegacyScalarProgram(program, backwards, len(inputs))
