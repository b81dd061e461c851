"""One seed for every random draw the library makes: ``manual_seed(s)``, as ``torch.manual_seed``.

The engine itself draws nothing; this module only holds the shared generator, here so that ``nn``
(every initialiser and the trainer) and the front door (``backproplab.manual_seed``) reach the
same state without ``autograd`` importing ``nn``.

The rule, as in PyTorch: a model or trainer built without ``seed=`` takes a fresh seed from this
generator, so two models built one after the other differ, and ``manual_seed(s)`` before them
makes the whole run repeat. ``seed=`` on a model or trainer overrides the generator and does not
advance it. Until ``manual_seed`` is called the generator starts from ``DEFAULT_SEED``, so a
fresh interpreter repeats its run too (PyTorch also starts from a fixed seed).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_SEED", "draw_seed", "initial_seed", "manual_seed"]

DEFAULT_SEED = 0
"""The seed the shared generator starts from before any ``manual_seed`` call."""

_SEED_LIMIT = 2**32  # below it, a drawn seed also suits np.random.seed and random.Random


class _Shared:
    seed: int = DEFAULT_SEED
    generator: np.random.Generator = np.random.default_rng(DEFAULT_SEED)


def manual_seed(seed: int) -> None:
    """Seed the generator from which every model and trainer built without ``seed=`` draws.

    Raises ValueError when ``seed`` is not an int in [0, 2**32) (bools refused).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"manual_seed takes an int in [0, 2**32), got {seed!r}")
    if not 0 <= seed < _SEED_LIMIT:
        raise ValueError(f"manual_seed takes an int in [0, 2**32), got {seed}")
    _Shared.seed = int(seed)
    _Shared.generator = np.random.default_rng(int(seed))


def initial_seed() -> int:
    """The seed last given to ``manual_seed`` (``DEFAULT_SEED`` before any call)."""
    return _Shared.seed


def draw_seed() -> int:
    """A fresh seed in [0, 2**32) from the shared generator, for a model or trainer given none."""
    return int(_Shared.generator.integers(_SEED_LIMIT))
