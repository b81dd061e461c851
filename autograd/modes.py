"""Grad mode and anomaly mode, each kept per thread: a no_grad() in one thread is its own."""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np


class AnomalyError(FloatingPointError):
    """Raised in `detect_anomaly()` by the first op whose output or gradient is NaN or infinite."""


class _Mode(threading.local):
    """Grad mode and anomaly mode, one pair per thread: a no_grad() in one thread is its own."""

    grad_enabled = True
    anomaly = False


mode = _Mode()


def is_grad_enabled() -> bool:
    """Return True when new operations are being recorded for backward (in this thread)."""
    return mode.grad_enabled


class GradMode(contextlib.ContextDecorator):
    """Context manager and decorator that sets this thread's grad mode, restoring it on exit."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(mode.grad_enabled)
        mode.grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        mode.grad_enabled = self._previous.pop()


def no_grad() -> GradMode:
    """Record nothing inside (this thread): results are constants and cost no backward work.
    Use as ``with no_grad(): ...`` or as a decorator ``@no_grad()``."""
    return GradMode(False)


def enable_grad() -> GradMode:
    """Turn recording back on inside a ``no_grad()`` block (context manager or decorator)."""
    return GradMode(True)


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise AnomalyError at the first op whose output or gradient is NaN or infinite (in this
    thread). The check costs a pass over each result, so it is off unless asked for."""
    previous, mode.anomaly = mode.anomaly, True
    try:
        yield
    finally:
        mode.anomaly = previous


def check_finite(x: Any, where: str) -> None:
    """Raise AnomalyError naming ``where`` when x (a number, array or node) is not finite."""
    data = getattr(x, "_data", x)  # a node's data, or x itself
    if not (math.isfinite(data) if isinstance(data, float) else np.all(np.isfinite(data))):
        raise AnomalyError(f"{where} produced a non-finite value: {short(data)}")


def short(x: Any) -> str:
    """x as text of at most 120 characters, for an error message."""
    text = repr(x) if isinstance(x, float) else np.array2string(np.asarray(x), threshold=8)
    return text if len(text) < 120 else text[:117] + "..."
