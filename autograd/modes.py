"""Grad mode and anomaly mode, each a context variable: a no_grad() in one thread (or one
asyncio task) is its own, and a new thread starts with recording on and anomaly checks off."""

from __future__ import annotations

import contextlib
import contextvars
import gc
import math
from collections.abc import Iterator
from typing import Any

import numpy as np


class AnomalyError(FloatingPointError):
    """Raised in `detect_anomaly()` by the first op whose output or gradient is NaN or infinite."""


# Context variables rather than module globals, so that two threads training at once never see
# each other's no_grad(); rather than threading.local, because every op reads grad_enabled and a
# context variable is the cheaper read.
grad_enabled = contextvars.ContextVar("grad_enabled", default=True)
anomaly = contextvars.ContextVar("anomaly", default=False)
# The trace compile is recording in this context, or None (autograd/compile/trace.py). While one
# is set, reading a node's data refuses (the function sees stand-ins, never numbers) and every op
# and leaf is reported to it; any other thread runs as if no trace existed.
tracing: contextvars.ContextVar[Any] = contextvars.ContextVar("tracing", default=None)


def is_grad_enabled() -> bool:
    """Return True when new operations are being recorded for backward (in this thread)."""
    return grad_enabled.get()


class GradMode(contextlib.ContextDecorator):
    """Context manager and decorator that sets this thread's grad mode, restoring it on exit."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        # A stack, as the decorator may re-enter. The value is restored rather than the
        # variable reset by token, which would refuse an exit in another context (a generator
        # resumed elsewhere).
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(grad_enabled.get())
        grad_enabled.set(self.enabled)

    def __exit__(self, *exc: object) -> None:
        grad_enabled.set(self._previous.pop())


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
    previous = anomaly.get()
    anomaly.set(True)
    try:
        yield
    finally:
        anomaly.set(previous)


class cycle_collector_paused:  # named as the function it replaced: with cycle_collector_paused()
    """Keep Python's cycle collector from running inside, for work that makes no reference
    cycles (a backward pass, a trace): there it would only walk the graph, freeing nothing.
    Restores the collector as it was (left off if it was off). A class rather than a
    generator: every backward pass enters it, and a generator's set-up costs more than this."""

    __slots__ = ("collecting",)

    def __enter__(self) -> None:
        self.collecting = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.collecting:
            gc.enable()


def check_finite(x: Any, where: str) -> None:
    """Raise AnomalyError naming ``where`` when x (a number, array or node) is not finite."""
    data = getattr(x, "_data", x)  # a node's data, or x itself
    if not (math.isfinite(data) if isinstance(data, float) else np.all(np.isfinite(data))):
        raise AnomalyError(f"{where} produced a non-finite value: {short(data)}")


def short(x: Any) -> str:
    """x as text of at most 120 characters, for an error message."""
    text = repr(x) if isinstance(x, float) else np.array2string(np.asarray(x), threshold=8)
    return text if len(text) < 120 else text[:117] + "..."
